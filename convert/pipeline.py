"""`ozfig convert` from start to end: check, plan, write, quantize, verify, move into place.

Every refusal (bad input, DoRA, another architecture, shapes that do not fit, existing
destination, too little disk) happens before the first byte is written. The output is
built under temporary names beside the destination and renamed there only once it has
been written, quantized and verified.
"""

from __future__ import annotations

import time
from pathlib import Path

from .adapter import Adapter, open_adapter
from .adapter_pairs import adapter_pairs
from .errors import ConvertError, UnsupportedError
from .hub import ADAPTER_FILES, BASE_FILES, TOKENIZER_FILES, is_hub_id, resolve
from .llama import params_from_config
from .merge import plan_tensors, vocab_rows
from .options import ConvertOptions
from .output import SafeOutput, human, sigterm_as_interrupt
from .quantize import QUANT_TYPES, quantize
from .read import BaseCheckpoint, TensorStore, checkpoint_files, read_json
from .report import Reporter, Result
from .tokenizer import has_chat_files, has_tokenizer, load_vocab
from .verify import verify_adapter, verify_model
from .write import FLOAT_TYPES, ModelMeta, Q, model_tensors, write_adapter, write_model

OUT_TYPES = (*QUANT_TYPES, *FLOAT_TYPES)
ADAPTER_OUT_TYPES = tuple(FLOAT_TYPES)


def _display_name(opts: ConvertOptions, base_dir: Path, adapter_dir: Path | None) -> str:
    if opts.name:
        return opts.name
    source = opts.adapter or opts.base
    return source if is_hub_id(source) and not Path(source).exists() else (adapter_dir or base_dir).name


def convert(opts: ConvertOptions, report: Reporter) -> Result:
    started = time.monotonic()
    quant = (opts.quant or ("F16" if opts.adapter_only else "Q4_K_M")).upper()
    if opts.adapter_only:
        if not opts.adapter:
            raise UnsupportedError("--adapter-only needs --adapter.")
        if quant not in ADAPTER_OUT_TYPES:
            raise UnsupportedError(
                f"an adapter GGUF holds float tensors: --quant must be one of {', '.join(ADAPTER_OUT_TYPES)} "
                f"with --adapter-only, not {quant}."
            )
    elif quant not in OUT_TYPES:
        raise UnsupportedError(f"--quant {quant} is not one of {', '.join(OUT_TYPES)}.")
    output = SafeOutput(opts.out, opts.force)
    output.check()

    with output, sigterm_as_interrupt():
        if opts.adapter_only:
            result = _convert_adapter(opts, quant, output, report)
        else:
            result = _convert_model(opts, quant, output, report)
    result.seconds = time.monotonic() - started
    return result


def _open_adapter(opts: ConvertOptions, report: Reporter) -> Adapter | None:
    if not opts.adapter:
        return None
    folder = resolve(opts.adapter, "adapter", ADAPTER_FILES, None)
    adapter = open_adapter(folder)
    if adapter.folder != folder:
        report.say(f"adapter: the one named {adapter.folder.name!r}, in {adapter.folder}")
    for warning in adapter.warnings:
        report.warn(warning)
    report.say(f"adapter: {adapter.describe()}")
    return adapter


def _convert_model(opts: ConvertOptions, quant: str, output: SafeOutput, report: Reporter) -> Result:
    base_dir = resolve(opts.base, "base model", BASE_FILES, opts.revision)
    base = BaseCheckpoint.open(base_dir)
    params = params_from_config(base.config, str(base_dir))
    adapter = _open_adapter(opts, report)
    jobs = plan_tensors(base.tensors, params, adapter)
    n_vocab = vocab_rows(jobs)

    settings_dir: Path | None = None
    if opts.tokenizer:
        tok_dir = resolve(opts.tokenizer, "tokenizer", TOKENIZER_FILES, None)
    elif adapter is not None and has_tokenizer(adapter.folder):
        tok_dir = adapter.folder
    else:
        tok_dir = base_dir
        if adapter is not None and has_chat_files(adapter.folder):
            settings_dir = adapter.folder  # the adapter's chat template and special tokens, base's vocabulary
    vocab = load_vocab(tok_dir, n_vocab, base.config, settings_dir)
    if adapter is not None and n_vocab > params.vocab_size and tok_dir == base_dir:
        report.warn(
            f"the adapter grows the vocabulary to {n_vocab} rows (the base has {params.vocab_size}) but holds no "
            "tokenizer.json, so the base's tokenizer is used and the new rows stay unused. If the fine-tune added "
            "tokens, pass --tokenizer with the tokenizer it was trained with."
        )
    report.say(
        f"tokenizer: {len(vocab.tokens)} tokens from {tok_dir.name}"
        + (f", settings from {settings_dir.name}" if settings_dir else "")
        + (", with its chat template" if vocab.chat_template else ", no chat template")
    )
    gen_config = base.generation_config
    if adapter is not None and (adapter.folder / "generation_config.json").is_file():
        gen_config = read_json(adapter.folder / "generation_config.json")
    meta = ModelMeta(_display_name(opts, base_dir, adapter.folder if adapter else None), gen_config)

    quantized = quant in QUANT_TYPES
    write_type = Q.F16 if quantized else FLOAT_TYPES[quant]
    planned = model_tensors(jobs, params, write_type)
    float_bytes = sum(t.nbytes for t in planned)
    n_params = sum(int(t.nbytes // (4 if t.qtype == Q.F32 else 2)) for t in planned)
    needed = float_bytes + (int(n_params * QUANT_TYPES[quant][1] / 8) if quantized else 0)
    output.check_space(int(needed * 1.02) + (16 << 20))

    merged = f", merging {len(adapter.modules)} LoRA modules" if adapter else ""
    report.say(f"writing {len(planned)} tensors ({human(float_bytes)} as {write_type.name}){merged}")
    first = output.temp(write_type.name.lower())
    with report.bar(float_bytes, "write", "B") as bar:
        write_model(first, jobs, params, vocab, meta, write_type, progress=bar.update)
    final = first
    if quantized:
        final = output.temp(quant.lower())
        report.say(f"quantizing to {quant} with llama.cpp")
        with report.bar(len(planned), "quantize", "tensor") as bar:

            def on_tensor(i: int, n: int) -> None:
                bar.total = n
                bar.n = i
                bar.refresh()

            quantize(first, final, quant, opts.threads, on_tensor)
        first.unlink()
    facts: list[str] = []
    if opts.verify:
        facts = verify_model(final, vocab, {t.name: t.shape for t in planned})
        report.say("verified: " + ", ".join(facts))
    size = final.stat().st_size
    output.commit(final)
    return Result(output.dest, size, "model", quant, len(planned), 0.0, facts)


def _convert_adapter(opts: ConvertOptions, quant: str, output: SafeOutput, report: Reporter) -> Result:
    base_dir = resolve(opts.base, "base model", ["config.json"], opts.revision)
    config = read_json(base_dir / "config.json")
    params = params_from_config(config, str(base_dir))
    adapter = _open_adapter(opts, report)
    assert adapter is not None
    base_tensors: TensorStore | None = None
    try:
        base_tensors = TensorStore(checkpoint_files(base_dir))
    except ConvertError:  # the base's weights are optional here: its config is enough
        base_tensors = None
    pairs = adapter_pairs(adapter, params, base_tensors)
    qtype = FLOAT_TYPES[quant]
    size = sum((p.module.a.numel + p.module.b.numel) * (4 if qtype == Q.F32 else 2) for p in pairs)
    output.check_space(size + (16 << 20))
    temp = output.temp("lora")
    name = _display_name(opts, base_dir, adapter.folder)
    report.say(f"writing {len(pairs)} LoRA pairs ({human(size)} as {quant})")
    with report.bar(size, "write", "B") as bar:
        alpha = write_adapter(temp, pairs, adapter.tensors, name, qtype, progress=bar.update)
    facts = verify_adapter(temp, len(pairs), alpha) if opts.verify else []
    if facts:
        report.say("verified: " + ", ".join(facts))
    written = temp.stat().st_size
    output.commit(temp)
    return Result(output.dest, written, "adapter", quant, 2 * len(pairs), 0.0, facts)
