"""Refusals and interruptions: a clear message, a non-zero exit, and nothing at the destination."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.convert.conftest import Tiny, assert_refused, ozfig
from tests.support import tiny_checkpoint as tc


def _partials(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ozfig-partial-*"))


def _convert_refused(tiny: Tiny, args: list[str], *fragments: str, env: dict[str, str] | None = None) -> None:
    out = tiny.root / "refused" / "out.gguf"
    out.parent.mkdir(exist_ok=True)
    proc = ozfig("convert", *args, "--out", str(out), "--no-progress", env=env)
    assert_refused(proc, *fragments)
    assert not out.exists()
    assert not _partials(out.parent)


def _adapter_variant(tiny: Tiny, name: str, **config) -> Path:
    return tiny.make_adapter(
        name, tc.adapter_config(**config), tc.adapter_weights(tiny.shape), tokenizer=False
    )


def test_dora_is_refused(tiny: Tiny) -> None:
    adapter = _adapter_variant(tiny, "dora", use_dora=True)
    _convert_refused(tiny, ["--base", str(tiny.base), "--adapter", str(adapter)], "DoRA")


def test_dora_magnitude_tensors_are_refused_even_without_the_flag(tiny: Tiny) -> None:
    weights = tc.adapter_weights(tiny.shape)
    weights["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = np.ones(
        256, np.float32
    )
    adapter = tiny.make_adapter("dora-tensors", tc.adapter_config(), weights, tokenizer=False)
    _convert_refused(tiny, ["--base", str(tiny.base), "--adapter", str(adapter)], "DoRA")


def test_other_peft_methods_are_refused(tiny: Tiny) -> None:
    adapter = _adapter_variant(tiny, "ia3", peft_type="IA3")
    _convert_refused(tiny, ["--base", str(tiny.base), "--adapter", str(adapter)], "IA3", "LoRA adapters only")


def test_a_base_of_another_architecture_is_refused(tiny: Tiny) -> None:
    folder = tiny.root / "gpt2-base"
    if not folder.exists():
        shutil.copytree(tiny.base, folder)
        cfg = dict(tiny.config, architectures=["GPT2LMHeadModel"], model_type="gpt2")
        (folder / "config.json").write_text(json.dumps(cfg))
    _convert_refused(
        tiny, ["--base", str(folder), "--adapter", str(tiny.adapter)], "GPT2LMHeadModel", "llama"
    )


def test_an_adapter_for_another_architecture_is_refused(tiny: Tiny) -> None:
    weights = {
        "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": np.zeros((16, 256), np.float32),
        "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": np.zeros((768, 16), np.float32),
    }
    cfg = tc.adapter_config(target_modules=["c_attn"], base_model_name_or_path="gpt2")
    adapter = tiny.make_adapter("gpt2-adapter", cfg, weights, tokenizer=False)
    _convert_refused(
        tiny,
        ["--base", str(tiny.base), "--adapter", str(adapter)],
        "does not have",
        "transformer.h.0.attn.c_attn",
    )


def test_an_adapter_for_another_model_size_is_refused(tiny: Tiny) -> None:
    other = tc.Shape(hidden=128, intermediate=256, heads=2, kv_heads=1)
    adapter = tiny.make_adapter("other-size", tc.adapter_config(), tc.adapter_weights(other), tokenizer=False)
    _convert_refused(
        tiny, ["--base", str(tiny.base), "--adapter", str(adapter)], "does not fit", "differ in shape"
    )
    out = tiny.root / "refused" / "lora.gguf"
    proc = ozfig(
        "convert", "--base", str(tiny.base), "--adapter", str(adapter), "--adapter-only", "--out", str(out)
    )
    assert_refused(proc, "does not fit")
    assert not out.exists()


def test_a_rank_that_contradicts_the_config_is_refused(tiny: Tiny) -> None:
    adapter = _adapter_variant(tiny, "rank-mismatch", r=8)
    _convert_refused(tiny, ["--base", str(tiny.base), "--adapter", str(adapter)], "rank 16", "8")


def test_a_quantized_base_is_refused(tiny: Tiny) -> None:
    folder = tiny.root / "bnb-base"
    if not folder.exists():
        shutil.copytree(tiny.base, folder)
        cfg = dict(tiny.config, quantization_config={"quant_method": "bitsandbytes", "load_in_4bit": True})
        (folder / "config.json").write_text(json.dumps(cfg))
    _convert_refused(tiny, ["--base", str(folder), "--adapter", str(tiny.adapter)], "bitsandbytes", "16-bit")


def test_pickled_adapters_are_refused(tiny: Tiny) -> None:
    folder = tiny.root / "bin-adapter"
    folder.mkdir(exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps(tc.adapter_config()))
    (folder / "adapter_model.bin").write_bytes(b"not really a pickle")
    _convert_refused(tiny, ["--base", str(tiny.base), "--adapter", str(folder)], "safetensors")


def test_a_missing_folder_is_a_clear_error(tiny: Tiny) -> None:
    _convert_refused(tiny, ["--base", str(tiny.root / "nope")], "neither an existing folder nor")


def test_a_hub_id_offline_is_a_clear_error(tiny: Tiny, tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    _convert_refused(tiny, ["--base", "ozfig-tests/no-such-model"], "cannot be reached", "offline", env=env)


def test_adapter_only_refuses_quantized_types(tiny: Tiny) -> None:
    args = ["--base", str(tiny.base), "--adapter", str(tiny.adapter), "--adapter-only", "--quant", "Q4_K_M"]
    _convert_refused(tiny, args, "--adapter-only")


def test_an_existing_destination_needs_force(tiny: Tiny, tmp_path: Path) -> None:
    out = tmp_path / "model.gguf"
    out.write_bytes(b"precious")
    args = ["convert", "--base", str(tiny.base), "--quant", "F16", "--out", str(out), "--no-progress"]
    assert_refused(ozfig(*args), "already exists", "--force")
    assert out.read_bytes() == b"precious"
    proc = ozfig(*args, "--force")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"GGUF"
    assert not _partials(tmp_path)


def test_too_little_disk_space_is_refused_before_writing(tiny: Tiny) -> None:
    env = {"OZFIG_CONVERT_TEST_FREE_BYTES": "1000000"}
    _convert_refused(
        tiny, ["--base", str(tiny.base), "--quant", "Q8_0"], "not enough free disk space", env=env
    )


def test_the_4bit_training_base_is_warned_about(tiny: Tiny, tmp_path: Path) -> None:
    out = tmp_path / "warned.gguf"
    proc = ozfig(
        "convert",
        "--base",
        str(tiny.base),
        "--adapter",
        str(tiny.adapter),
        "--quant",
        "F16",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "warning: the adapter was trained on a quantized base (unsloth/meta-llama-3.1-8b-bnb-4bit)"
        in proc.stderr
    )
    assert out.is_file()


def _start_slow_convert(tiny: Tiny, out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(
                sys.executable,
                "-m",
                "ozfig",
                "convert",
                "--base",
                str(tiny.base),
                "--adapter",
                str(tiny.adapter),
            ),
            *("--quant", "Q8_0", "--out", str(out), "--no-progress"),
        ],
        env={**os.environ, "OZFIG_CONVERT_TEST_DELAY": "0.5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_partial(folder: Path, proc: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [p for p in _partials(folder) if p.stat().st_size > 0]
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no partial file appeared")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_a_run_killed_mid_write_leaves_nothing_at_the_destination(
    tiny: Tiny, tmp_path: Path, sig: int
) -> None:
    out = tmp_path / "killed.gguf"
    proc = _start_slow_convert(tiny, out)
    _wait_for_partial(tmp_path, proc)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert not out.exists()
    if sig != signal.SIGKILL:
        assert not _partials(tmp_path)  # cleaned up on the way out
        return
    assert _partials(tmp_path)  # a hard kill cannot clean up; the next run for this destination does
    done = ozfig("convert", "--base", str(tiny.base), "--quant", "F16", "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    assert not _partials(tmp_path)


def test_inspect_refuses_what_is_not_gguf(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"definitely not a gguf file")
    assert_refused(ozfig("inspect", str(junk)), "not a GGUF file")
    assert_refused(ozfig("inspect", str(tmp_path / "absent.gguf")), "does not exist")
