"""`ozfig eval kld`: zero against itself, small and positive against another quantization."""

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ozfig.eval.chunks import ChunkSettings
from ozfig.eval.data import read_text
from ozfig.eval.kld import compare_rows, kl_divergence
from ozfig.eval.perplexity import perplexity
from ozfig.llama.model import LlamaModel
from tests.support.processes import ozfig_command

CTX = 128


def test_kl_divergence_of_two_distributions_by_hand() -> None:
    base = np.array([[0.0, 0.0], [0.0, 0.0]], dtype=np.float32)  # p = (1/2, 1/2)
    model = np.array([[math.log(3.0), 0.0], [0.0, 0.0]], dtype=np.float32)  # q = (3/4, 1/4), then equal
    out = compare_rows(base, model, np.array([1, 0]))
    # KL(p||q) = 1/2 ln(2/3) + 1/2 ln(2) = 1/2 ln(4/3)
    assert out.kld.tolist() == pytest.approx([0.5 * math.log(4 / 3), 0.0])
    assert out.nll_base.tolist() == pytest.approx([math.log(2), math.log(2)])
    assert out.nll_model.tolist() == pytest.approx([math.log(4), math.log(2)])
    assert out.same_top.tolist() == [True, True]  # ties: both argmax 0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ozfig_command("eval", "kld", *args), capture_output=True, text=True, timeout=300)


def test_a_model_against_itself_is_zero_with_full_agreement(model_path: Path, prose_path: Path) -> None:
    args = ["--base", str(model_path), "--model", str(model_path), "--file", str(prose_path)]
    proc = run_cli(*args, "--ctx", str(CTX), "--chunks", "2", "--threads", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["scored_tokens"] == 2 * (CTX // 2 - 1)
    assert data["kld_mean"] == {"value": 0.0, "error": 0.0}
    assert data["kld_max"] == 0.0
    assert data["same_top"]["value"] == 1.0
    assert data["ppl_ratio"]["value"] == 1.0
    assert data["ppl_model"] == data["ppl_base"]


def test_another_quantization_is_small_and_positive(
    model: LlamaModel, q8_0_path: Path, prose_path: Path
) -> None:
    text = read_text(prose_path)
    q8_0 = LlamaModel(str(q8_0_path), gpu_layers=0)
    try:
        seen: list[tuple[int, float, float]] = []
        settings = ChunkSettings(ctx=CTX, chunks=3, batch=3 * CTX, threads=2)
        result = kl_divergence(model, q8_0, text, settings, on_chunk=lambda *a: seen.append(a))
        ppl_q8_0 = perplexity(q8_0, text, settings).ppl
    finally:
        q8_0.close()
    s = result.summary()
    assert 0.0 < s["kld_mean"]["value"] < 0.05
    assert s["kld_mean"]["error"] > 0.0
    assert s["kld_min"] >= 0.0
    assert s["kld_min"] <= s["kld_percentiles"]["50"] <= s["kld_percentiles"]["99"] <= s["kld_max"]
    assert 0.85 < s["same_top"]["value"] < 1.0
    assert s["ppl_model"]["value"] == pytest.approx(ppl_q8_0, rel=1e-7)
    ratio = s["ppl_model"]["value"] / s["ppl_base"]["value"]
    assert s["ppl_ratio"]["value"] == pytest.approx(ratio)
    assert [n for n, _, _ in seen] == [1, 2, 3]
    assert seen[-1][1] == pytest.approx(s["kld_mean"]["value"])


def test_cli_report(model_path: Path, q8_0_path: Path, prose_path: Path) -> None:
    args = ["--base", str(model_path), "--model", str(q8_0_path), "--file", str(prose_path)]
    proc = run_cli(*args, "--ctx", str(CTX), "--chunks", "1", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in (
        "Mean PPL(Q)",
        "Mean PPL(Q)/PPL(base)",
        "Mean    KLD:",
        "99.0%   KLD:",
        "Median  KLD:",
        "Same top p:",
    ):
        assert label in out


def test_text_too_short_for_two_chunks(model_path: Path, prose_path: Path) -> None:
    args = ["--base", str(model_path), "--model", str(model_path), "--file", str(prose_path)]
    proc = run_cli(*args, "--ctx", "1024")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("ozfig: error: the text tokenizes to")
    assert len(proc.stderr.strip().splitlines()) == 1
