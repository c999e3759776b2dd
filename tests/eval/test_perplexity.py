"""`ozfig eval perplexity` against an independent computation over llama.cpp's logits for every position."""

import llama_cpp as lc  # noqa: I001

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ozfig.eval.chunks import ChunkSettings
from ozfig.eval.data import read_text
from ozfig.eval.perplexity import perplexity
from ozfig.llama.model import LlamaModel
from tests.support.processes import ozfig_command

CTX = 256
CHUNKS = 3


def ppl_and_error(nll: list[float]) -> tuple[float, float]:
    """PPL = exp(mean NLL); error = PPL x standard error of the mean NLL."""
    v = np.array(nll)
    ppl = math.exp(v.mean())
    return ppl, ppl * math.sqrt(v.var() / (len(v) - 1))


def reference_nll(model: LlamaModel, text: str, ctx: int, n_chunk: int) -> list[list[float]]:
    """Straight from the definition: each chunk alone in a fresh context, logits for every position;
    per chunk, -log p of the tokens after positions ctx/2 .. ctx-2."""
    vocab = model.vocab
    add_bos = bool(lc.llama_vocab_get_add_bos(vocab))
    data = text.encode()
    buf = (lc.llama_token * (len(data) + 8))()
    n = lc.llama_tokenize(vocab, data, len(data), buf, len(buf), True, False)
    tokens = list(buf[:n])
    n_vocab = lc.llama_vocab_n_tokens(vocab)
    nlls: list[list[float]] = []
    for c in range(n_chunk):
        chunk = tokens[c * ctx : (c + 1) * ctx]
        if add_bos:
            chunk = [lc.llama_vocab_bos(vocab), *chunk[1:]]
        params = lc.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = ctx
        params.n_threads = params.n_threads_batch = 2
        context = lc.llama_init_from_model(model.ptr, params)
        batch = lc.llama_batch_init(ctx, 0, 1)
        for i, tok in enumerate(chunk):
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = tok, i, 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = True
        batch.n_tokens = ctx
        assert lc.llama_decode(context, batch) == 0
        logits = np.ctypeslib.as_array(lc.llama_get_logits(context), shape=(ctx, n_vocab)).astype(np.float64)
        lc.llama_batch_free(batch)
        lc.llama_free(context)
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        nlls.append([-logp[pos, tokens[c * ctx + pos + 1]] for pos in range(ctx // 2, ctx - 1)])
    return nlls


@pytest.fixture(scope="module")
def text(prose_path: Path) -> str:
    return read_text(prose_path)


@pytest.fixture(scope="module")
def reference(model: LlamaModel, text: str) -> list[list[float]]:
    return reference_nll(model, text, CTX, CHUNKS)


def flat(chunks: list[list[float]]) -> list[float]:
    return [x for c in chunks for x in c]


@pytest.mark.parametrize(
    ("batch", "chunks"),
    [
        pytest.param(CTX, 2, id="one-chunk-per-decode"),
        pytest.param(CHUNKS * CTX, CHUNKS, id="all-chunks-in-one-decode"),
        # 4 decodes per chunk, logits from the last two; llama.cpp's own kernels differ for batches
        # under 64 tokens (its ubatch split too), so the comparison holds from 64 up
        pytest.param(64, 1, id="four-decodes-per-chunk"),
    ],
)
def test_equals_numpy_over_all_logits(
    model: LlamaModel, text: str, reference, batch: int, chunks: int
) -> None:
    ppl, error = ppl_and_error(flat(reference[:chunks]))
    running = [ppl_and_error(flat(reference[: i + 1]))[0] for i in range(chunks)]
    result = perplexity(model, text, ChunkSettings(ctx=CTX, chunks=chunks, batch=batch, threads=2))
    assert result.n_chunk == chunks
    assert result.scored_tokens == chunks * (CTX // 2 - 1)
    assert result.ppl == pytest.approx(ppl, rel=1e-5)
    assert result.ppl_error == pytest.approx(error, rel=1e-4)
    assert result.running == pytest.approx(running, rel=1e-5)
    assert 5.0 < result.ppl < 200.0  # a 135M model on plain English prose


def test_bos_replaces_the_first_token_of_each_chunk(
    bos_model_path: Path, text: str, model: LlamaModel
) -> None:
    ctx = 128
    with_bos = LlamaModel(str(bos_model_path), gpu_layers=0)
    try:
        assert with_bos.add_bos and not model.add_bos
        ppl, error = ppl_and_error(flat(reference_nll(with_bos, text, ctx, 2)))
        result = perplexity(with_bos, text, ChunkSettings(ctx=ctx, chunks=2, batch=2 * ctx, threads=2))
    finally:
        with_bos.close()
    assert result.n_tokens == len(model.tokenize(text)) + 1  # the text got a BOS once, in front
    assert result.ppl == pytest.approx(ppl, rel=1e-5)
    assert result.ppl_error == pytest.approx(error, rel=1e-4)
    # the BOS shifts every chunk by one token: a different number than without it
    plain = perplexity(model, text, ChunkSettings(ctx=ctx, chunks=2, batch=2 * ctx, threads=2))
    assert abs(plain.ppl - result.ppl) > 1e-3


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ozfig_command("eval", *args), capture_output=True, text=True, timeout=300)


def test_cli_prints_running_ppl_and_final_estimate(model_path: Path, prose_path: Path, reference) -> None:
    args = ["perplexity", "--model", str(model_path), "--file", str(prose_path), "--ctx", str(CTX)]
    args += ["--threads", "2"]
    proc = run_cli(*args, "--chunks", "2", "--batch", str(CTX))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "tokens, 2 chunks of 256" in lines[0]
    one, two = ppl_and_error(flat(reference[:1]))[0], ppl_and_error(flat(reference[:2]))
    assert lines[1:] == [f"[1]{one:.4f}", f"[2]{two[0]:.4f}", f"PPL = {two[0]:.4f} +/- {two[1]:.5f}"]

    proc = run_cli(*args, "--chunks", "2", "--json", "--batch", str(2 * CTX))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ppl"] == pytest.approx(two[0], rel=1e-5)
    assert data["ppl_error"] == pytest.approx(two[1], rel=1e-4)
    assert data["chunks"] == 2 and data["sequences_per_decode"] == 2
    assert data["running_ppl"] == pytest.approx([one, two[0]], rel=1e-5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param("\n  \n", "is empty", id="blank"),
        pytest.param(
            "A short text. " * 10, f"needs at least {2 * CTX} (two chunks)", id="shorter-than-two-chunks"
        ),
        pytest.param(b"caf\xe9 latin-1", "is not UTF-8", id="not-utf8"),
    ],
)
def test_cli_refuses_unusable_texts(
    model_path: Path, tmp_path: Path, content: str | bytes, message: str
) -> None:
    path = tmp_path / "text.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    proc = run_cli("perplexity", "--model", str(model_path), "--file", str(path), "--ctx", str(CTX))
    assert proc.returncode == 2
    assert proc.stderr.startswith("ozfig: error: ")
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_missing_inputs(model_path: Path, prose_path: Path, tmp_path: Path) -> None:
    proc = run_cli("perplexity", "--model", str(model_path), "--file", str(tmp_path / "nope.txt"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = run_cli("perplexity", "--model", str(tmp_path / "nope.gguf"), "--file", str(prose_path))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = run_cli("perplexity", "--model", str(model_path), "--file", str(prose_path), "--ctx", "2")
    assert proc.returncode == 2 and "--ctx" in proc.stderr  # argparse's own error
