#!/usr/bin/env python3
"""`ozfig convert` against llama.cpp's own converter + quantizer: peak RSS and wall time.

Builds a Llama-shaped bf16 checkpoint with random weights (sharded safetensors, a synthetic
128k-token byte-level BPE tokenizer with Llama 3's pre-tokenizer) and an r=16 rsLoRA adapter
on the 7 projections, once, under --workdir. Then, each step as its own process, measured
with wait4 (peak RSS of that process, wall time):

  ours:    ozfig convert --base B --adapter A --quant Q4_K_M   (merge + F16 write + quantize, one process)
  ours16:  ozfig convert --base B --adapter A --quant F16      (merge + F16 write only)
  theirs:  convert_hf_to_gguf.py B --outtype f16, then llama-quantize F16 -> Q4_K_M
           (llama.cpp cannot merge a LoRA: its converter gets the base alone, so it does less work)

`llama-quantize` is the prebuilt binary when --llama-quantize (or ~/.cache/ozfig-llama.cpp/build/bin/
llama-quantize) exists, else the same library call (`llama_model_quantize`) in a separate process.

    python bench/convert_bench.py --shape 1b [--workdir bench/out/convert] [--threads 2] [--skip-theirs]

Shapes: 8b (Llama 3.1 8B: ~16 GB of bf16), 3b, 1b (Llama 3.2), tiny (a smoke test).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import tiny_checkpoint as tc  # noqa: E402
from tests.support.llama_cpp_converter import converter_command  # noqa: E402


@dataclass(frozen=True)
class BenchShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool


SHAPES = {
    "8b": BenchShape(4096, 14336, 32, 32, 8, 128256, False),
    "3b": BenchShape(3072, 8192, 28, 24, 8, 128256, True),
    "1b": BenchShape(2048, 8192, 16, 32, 8, 128256, True),
    "tiny": BenchShape(256, 512, 2, 4, 2, 2048, False),
}
SHARD_BYTES = 2 * 1000**3


def synthetic_tokenizer(vocab: int, seed: int = 0) -> dict[str, Any]:
    """A valid byte-level BPE tokenizer.json with `vocab` rows: 256 bytes, merges, 256 special tokens."""
    base = tc.build_tokenizer_json(300)  # Llama 3 pre-tokenizer, decoder, post-processor
    alphabet = [t for t, i in sorted(base["model"]["vocab"].items(), key=lambda kv: kv[1])][:256]
    tokens = list(alphabet)
    seen = set(tokens)
    merges: list[list[str]] = []
    rng = np.random.default_rng(seed)
    n_specials = 256
    while len(tokens) < vocab - n_specials:
        pool = min(len(tokens), 4096)
        a, b = tokens[int(rng.integers(pool))], tokens[int(rng.integers(len(tokens)))]
        if len(a) + len(b) > 16 or (a + b) in seen:
            continue
        tokens.append(a + b)
        seen.add(a + b)
        merges.append([a, b])
    data = dict(base)
    data["model"] = dict(base["model"], vocab={t: i for i, t in enumerate(tokens)}, merges=merges)
    specials = ["<|begin_of_text|>", "<|end_of_text|>"] + [
        f"<|reserved_special_token_{i}|>" for i in range(254)
    ]
    data["added_tokens"] = [
        {
            "id": len(tokens) + i,
            "content": s,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, s in enumerate(specials)
    ]
    bos_id = len(tokens)
    for proc in data["post_processor"]["processors"]:
        if proc["type"] == "TemplateProcessing":
            proc["special_tokens"] = {
                "<|begin_of_text|>": {
                    "id": "<|begin_of_text|>",
                    "ids": [bos_id],
                    "tokens": ["<|begin_of_text|>"],
                }
            }
    return data


def build_inputs(shape: BenchShape, work: Path) -> tuple[Path, Path]:
    base, adapter = work / "base", work / "adapter"
    if (base / "done").exists() and (adapter / "done").exists():
        return base, adapter
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(adapter, ignore_errors=True)
    base.mkdir(parents=True)
    tok = synthetic_tokenizer(shape.vocab)
    s = tc.Shape(
        hidden=shape.hidden,
        intermediate=shape.intermediate,
        layers=shape.layers,
        heads=shape.heads,
        kv_heads=shape.kv_heads,
        vocab=shape.vocab,
        max_positions=131072,
        rope_scaling=dict(tc.LLAMA31_ROPE),
    )
    config = tc.base_config(s, tok)
    config["tie_word_embeddings"] = shape.tied
    (base / "config.json").write_text(json.dumps(config, indent=2))
    tc.write_tokenizer(base, tok, eos="<|end_of_text|>", template=None)
    rng = np.random.default_rng(0)
    hd = shape.hidden // shape.heads
    names: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (shape.vocab, shape.hidden))]
    for i in range(shape.layers):
        p = f"model.layers.{i}."
        names += [
            (p + "input_layernorm.weight", (shape.hidden,)),
            (p + "post_attention_layernorm.weight", (shape.hidden,)),
            (p + "self_attn.q_proj.weight", (shape.heads * hd, shape.hidden)),
            (p + "self_attn.k_proj.weight", (shape.kv_heads * hd, shape.hidden)),
            (p + "self_attn.v_proj.weight", (shape.kv_heads * hd, shape.hidden)),
            (p + "self_attn.o_proj.weight", (shape.hidden, shape.heads * hd)),
            (p + "mlp.gate_proj.weight", (shape.intermediate, shape.hidden)),
            (p + "mlp.up_proj.weight", (shape.intermediate, shape.hidden)),
            (p + "mlp.down_proj.weight", (shape.hidden, shape.intermediate)),
        ]
    names.append(("model.norm.weight", (shape.hidden,)))
    if not shape.tied:
        names.append(("lm_head.weight", (shape.vocab, shape.hidden)))
    # shards of about SHARD_BYTES, generated one tensor at a time
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, dims in names:
        nbytes = 2 * math.prod(dims)
        if shards[-1] and size + nbytes > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append((name, dims))
        size += nbytes
    weight_map = {}
    for k, shard in enumerate(shards):
        fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        tensors = {}
        for name, dims in shard:
            values = rng.standard_normal(dims, dtype=np.float32) * np.float32(0.02)
            if len(dims) == 1:
                values += np.float32(1.0)
            tensors[name] = ("BF16", tc.to_bf16_bits(values))
        tc.save_safetensors(base / fname, tensors)
        del tensors
        weight_map.update({name: fname for name, _ in shard})
        print(f"  wrote {fname}", flush=True)
    (base / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (base / "done").touch()

    weights = tc.adapter_weights(s, rank=16, seed=3, std=0.001)
    tc.write_adapter(adapter, tc.adapter_config(), weights)
    (adapter / "done").touch()
    return base, adapter


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in GB, exit code) of one process."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        print(err[-3000:], file=sys.stderr)
    return wall, usage.ru_maxrss / 1024 / 1024, proc.returncode


def record(results: dict[str, tuple[float, float]], name: str, wall: float, rss: float) -> None:
    results[name] = (wall, rss)
    print(f"  {name}: {wall:.1f} s, {rss:.2f} GB", flush=True)


def warm(folder: Path) -> None:
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


QUANTIZE_PY = """
import sys, ctypes, llama_cpp as lc
p = lc.llama_model_quantize_default_params()
p.ftype = lc.LLAMA_FTYPE_MOSTLY_Q4_K_M
p.nthread = int(sys.argv[3])
sys.exit(lc.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="1b")
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "convert")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip-theirs", action="store_true")
    ap.add_argument(
        "--llama-quantize", type=Path, default=Path.home() / ".cache/ozfig-llama.cpp/build/bin/llama-quantize"
    )
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    shape = SHAPES[args.shape]
    work = args.workdir / args.shape
    work.mkdir(parents=True, exist_ok=True)
    if args.build_only:
        build_inputs(shape, work)
        return 0
    # inputs are built in a child: a forked child's peak RSS starts at its parent's, so this
    # process must stay small for the measurements below to be the tools' own
    print(f"building inputs in {work} ...", flush=True)
    build = [sys.executable, __file__, "--shape", args.shape, "--workdir", str(args.workdir), "--build-only"]
    subprocess.run(build, check=True)
    base, adapter = work / "base", work / "adapter"
    size = sum(f.stat().st_size for f in base.glob("*.safetensors"))
    print(f"base: {size / 1e9:.2f} GB bf16; adapter r=16 rsLoRA", flush=True)
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    results: dict[str, tuple[float, float]] = {}
    ozfig = [sys.executable, "-m", "ozfig", "convert", "--base", str(base), "--adapter", str(adapter)]

    warm(base)
    wall, rss, rc = measure([*ozfig, "--quant", "F16", "--out", str(out / "ours.f16.gguf"), "--no-progress"])
    assert rc == 0
    record(results, "ozfig merge + F16 write", wall, rss)
    (out / "ours.f16.gguf").unlink()
    warm(base)
    cmd = [*ozfig, "--quant", "Q4_K_M", "--threads", str(args.threads), "--out", str(out / "ours.q4km.gguf")]
    wall, rss, rc = measure([*cmd, "--no-progress"])
    assert rc == 0
    record(results, "ozfig merge + F16 write + Q4_K_M", wall, rss)

    if not args.skip_theirs:
        warm(base)
        wall1, rss1, rc = measure(converter_command(base, out / "theirs.f16.gguf", "f16"))
        assert rc == 0
        record(results, "llama.cpp convert_hf_to_gguf.py F16 (no merge)", wall1, rss1)
        if args.llama_quantize.is_file():
            qcmd = [
                str(args.llama_quantize),
                str(out / "theirs.f16.gguf"),
                str(out / "theirs.q4km.gguf"),
                "Q4_K_M",
                str(args.threads),
            ]
            quantizer = "llama-quantize"
        else:
            qcmd = [
                sys.executable,
                "-c",
                QUANTIZE_PY,
                str(out / "theirs.f16.gguf"),
                str(out / "theirs.q4km.gguf"),
                str(args.threads),
            ]
            quantizer = "llama_model_quantize (llama-quantize not built)"
        wall2, rss2, rc = measure(qcmd)
        assert rc == 0
        record(results, f"{quantizer} Q4_K_M", wall2, rss2)
        results["llama.cpp total (convert + quantize)"] = (wall1 + wall2, max(rss1, rss2))

    lines = [
        f"shape {args.shape}: {json.dumps(shape.__dict__)}; {size / 1e9:.2f} GB bf16 input",
        f"machine: {platform.machine()}, {os.cpu_count()} cores, threads={args.threads}, load {os.getloadavg()[0]:.1f}",
        "| step | wall (s) | peak RSS (GB) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {wall:.1f} | {rss:.2f} |" for name, (wall, rss) in results.items()]
    report = "\n".join(lines)
    print("\n" + report, flush=True)
    (work / "results.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
