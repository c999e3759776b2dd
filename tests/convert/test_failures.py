"""Refusals and interruptions: a clear message, a non-zero exit, and nothing at the destination."""

import json
import os
import shutil
import signal
import struct
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


def test_use_dora_without_magnitude_vectors_is_refused(tiny: Tiny) -> None:
    adapter = _adapter_variant(tiny, "dora-no-magnitudes", use_dora=True)
    _convert_refused(
        tiny, ["--base", str(tiny.base), "--adapter", str(adapter)], "use_dora", "no DoRA magnitude vectors"
    )


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
        # the run waits after its first tensor until the test's signal ends it (or 120 s pass):
        # the signal cannot arrive after the run finished (it once exited 0 on a busy machine)
        env={**os.environ, "OZFIG_CONVERT_TEST_HOLD": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C's default action even when this test runs where SIGINT is ignored (a background
        # job of a non-interactive shell): Python installs its KeyboardInterrupt handler only then
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


# --- hostile or damaged inputs (issue 9): one-line errors, never a traceback -----------------


def _rewrite_header(src: Path, dst: Path, edit) -> None:
    """Copy a safetensors file with its JSON header changed by `edit(header) -> new header`."""
    raw = src.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    text = json.dumps(edit(header)).encode()
    text += b" " * (-len(text) % 8)
    dst.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def _damaged_adapter(tiny: Tiny, name: str, edit) -> Path:
    folder = tiny.root / name
    if not folder.exists():
        folder.mkdir()
        shutil.copy(tiny.adapter / "adapter_config.json", folder / "adapter_config.json")
        _rewrite_header(
            tiny.adapter / "adapter_model.safetensors", folder / "adapter_model.safetensors", edit
        )
    return folder


def _first_tensor(header: dict) -> str:
    return sorted(k for k in header if k != "__metadata__")[0]


def _negative_offsets(header: dict) -> dict:
    entry = header[_first_tensor(header)]
    begin, end = entry["data_offsets"]
    size = end - begin
    entry["data_offsets"] = [-size, 0]  # same length, but it would point into the header
    return header


def _negative_dims(header: dict) -> dict:
    entry = header[_first_tensor(header)]
    entry["shape"] = [-d for d in entry["shape"]]  # same element count
    return header


def _missing_offsets(header: dict) -> dict:
    del header[_first_tensor(header)]["data_offsets"]
    return header


def _missing_shape(header: dict) -> dict:
    del header[_first_tensor(header)]["shape"]
    return header


def _entry_not_object(header: dict) -> dict:
    header[_first_tensor(header)] = "F32"
    return header


_DAMAGES = {
    "list": (lambda h: [1, 2, 3], "not a JSON object"),
    "string": (lambda h: "a string", "not a JSON object"),
    "negative-offsets": (_negative_offsets, "data_offsets"),
    "negative-dims": (_negative_dims, "shape"),
    "no-offsets": (_missing_offsets, "data_offsets"),
    "no-shape": (_missing_shape, "shape"),
    "entry-not-object": (_entry_not_object, "not described by a JSON object"),
}


@pytest.mark.parametrize("damage", sorted(_DAMAGES))
def test_a_damaged_safetensors_header_is_a_one_line_error(tiny: Tiny, damage: str) -> None:
    edit, fragment = _DAMAGES[damage]
    adapter = _damaged_adapter(tiny, f"damaged-{damage}", edit)
    _convert_refused(
        tiny,
        ["--base", str(tiny.base), "--adapter", str(adapter), "--quant", "F16"],
        "damaged safetensors header",
        fragment,
    )


@pytest.mark.parametrize("rslora", [False, True])
def test_rank_zero_is_refused_not_a_division_by_zero(tiny: Tiny, rslora: bool) -> None:
    # rank-0 tensors agree with r: 0, so only the rank's own check stands between them and alpha / 0
    adapter = tiny.make_adapter(
        f"rank-zero-{rslora}",
        tc.adapter_config(r=0, use_rslora=rslora),
        tc.adapter_weights(tiny.shape, rank=0),
        tokenizer=False,
    )
    _convert_refused(
        tiny, ["--base", str(tiny.base), "--adapter", str(adapter), "--quant", "F16"], "r is 0", "at least 1"
    )


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_a_non_finite_lora_alpha_is_refused(tiny: Tiny, alpha: float) -> None:
    adapter = tiny.make_adapter(
        f"alpha-{alpha}", tc.adapter_config(lora_alpha=alpha), tc.adapter_weights(tiny.shape), tokenizer=False
    )
    _convert_refused(
        tiny, ["--base", str(tiny.base), "--adapter", str(adapter), "--quant", "F16"], "lora_alpha", "finite"
    )


def test_a_non_finite_alpha_pattern_is_refused(tiny: Tiny) -> None:
    cfg = tc.adapter_config(alpha_pattern={"q_proj": float("nan")})
    adapter = tiny.make_adapter("alpha-pattern-nan", cfg, tc.adapter_weights(tiny.shape), tokenizer=False)
    _convert_refused(
        tiny, ["--base", str(tiny.base), "--adapter", str(adapter), "--quant", "F16"], "q_proj", "finite"
    )


def test_temporary_files_cannot_be_planted_in_advance(tiny: Tiny, tmp_path: Path) -> None:
    """The old names (`.NAME.f32.ozfig-partial-PID`) could be guessed: a link planted there was written through."""
    from convert.options import ConvertOptions
    from convert.pipeline import convert
    from convert.report import Reporter

    out = tmp_path / "model.gguf"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = [
        tmp_path / f".{out.name}.{step}.ozfig-partial-{os.getpid()}" for step in ("f32", "f16", "q8_0")
    ]
    for link in planted:
        link.symlink_to(victim)
    convert(
        ConvertOptions(base=str(tiny.base), out=out, quant="F32", verify=False),
        Reporter(progress=False, say=lambda msg: None),
    )
    assert victim.read_text() == "precious"
    assert out.read_bytes()[:4] == b"GGUF"
    assert all(link.is_symlink() for link in planted)  # another's files are left alone
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # the usual permissions, not 0600


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_temporary_names_are_fresh_each_time(tmp_path: Path) -> None:
    from convert.output import SafeOutput

    output = SafeOutput(tmp_path / "x.gguf")
    first, second = output.temp("f16"), output.temp("f16")
    assert first != second and first.is_file() and second.is_file()
    assert first.parent == tmp_path and first.name.startswith(f".x.gguf.f16.ozfig-partial-{os.getpid()}-")
    output.cleanup()
    assert not list(tmp_path.iterdir())
