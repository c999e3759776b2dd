"""Checks on a written GGUF before it is moved to the destination.

gguf's reader reads the file back: every planned tensor is there with its shape, and the
data of the last one ends inside the file (not truncated). llama.cpp opens its metadata and
vocabulary (`vocab_only`: a full load would map and read the whole model, gigabytes of
resident memory for a check), which is compared with what was meant to be written: size,
BOS/EOS ids, chat template, and a tokenize/detokenize round trip of a mixed text (code,
numbers, unicode, ChatML markers). An adapter GGUF is read back the same way: type, alpha,
and every A/B pair.
"""

import logging
from pathlib import Path

import gguf

from ozfig.errors import StartupError
from ozfig.llama.backend import recent_errors
from ozfig.llama.model import LlamaModel

from .errors import VerifyError
from .gguf_index import read_tensor_index
from .tokenizer import Vocab

log = logging.getLogger(__name__)

CHECK_TEXT = (
    "def add(a, b):\n    return a + b  # 3.14159 1234567\n"
    "Ünïcödé: naïve café, 日本語, emoji 🦙✅ — done.\t\n"
    "<|im_start|>user\nHello!<|im_end|>\n"
)


def check_tensors(path: Path, shapes: dict[str, tuple[int, ...]]) -> str:
    """Every planned tensor, with its shape (numpy order), and nothing else; data inside the file."""
    try:
        index = read_tensor_index(path)  # not gguf.GGUFReader: it takes minutes over Llama 3's vocabulary
    except (ValueError, OSError) as exc:
        raise VerifyError(f"gguf cannot read back the file written: {exc}") from None
    found = {t.name: t.shape for t in index}
    if set(found) != set(shapes):
        missing = sorted(set(shapes) - set(found))[:3]
        extra = sorted(set(found) - set(shapes))[:3]
        raise VerifyError(f"the GGUF's tensors differ from the plan (missing {missing}, unexpected {extra}).")
    for name, shape in shapes.items():
        if found[name] != tuple(shape):
            raise VerifyError(f"{name} has shape {found[name]} in the GGUF, {tuple(shape)} was planned.")
    end = max((t.offset + t.nbytes for t in index), default=0)
    if end > path.stat().st_size:
        raise VerifyError("the GGUF is truncated: tensor data ends past the end of the file.")
    return f"{len(found)} tensors"


def verify_model(path: Path, expected: Vocab, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Read `path` back and open it with llama.cpp; returns what was checked."""
    checks = [check_tensors(path, shapes)]
    try:
        model = LlamaModel(str(path), gpu_layers=0, vocab_only=True)
    except StartupError:
        raise VerifyError(f"llama.cpp cannot load the GGUF it was given: {recent_errors()}") from None
    try:
        if model.n_vocab != len(expected.tokens):
            raise VerifyError(f"llama.cpp sees {model.n_vocab} tokens, {len(expected.tokens)} were written.")
        checks.append(f"llama.cpp reads its vocabulary ({model.n_vocab} tokens)")
        for kind, got in (("bos", model.bos), ("eos", model.eos)):
            want = expected.special_ids.get(kind)
            if want is not None and got != want:
                raise VerifyError(f"llama.cpp reads {kind} token id {got}, {want} was written.")
        if model.chat_template != expected.chat_template:
            raise VerifyError("llama.cpp reads a different chat template from the one written.")
        if expected.chat_template:
            checks.append("chat template")
        text = CHECK_TEXT
        tokens = model.tokenize(text, parse_special=True)
        back = model.detokenize(tokens, unparse_special=True)
        if back != text:
            raise VerifyError(f"tokenize/detokenize round trip changed the check text: {back!r}")
        checks.append(f"tokenizer round trip ({len(tokens)} tokens)")
        return checks
    finally:
        model.close()


def verify_adapter(path: Path, pairs: int, alpha: float) -> list[str]:
    reader = gguf.GGUFReader(path)
    fields = {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    if fields.get("general.type") != "adapter" or fields.get("adapter.type") != "lora":
        raise VerifyError("the adapter GGUF does not say general.type=adapter, adapter.type=lora.")
    if abs(float(fields.get("adapter.lora.alpha", -1.0)) - alpha) > 1e-6 * max(1.0, abs(alpha)):
        raise VerifyError("the adapter GGUF's alpha is not the one written.")
    names = [t.name for t in reader.tensors]
    if len(names) != 2 * pairs or any(not n.endswith((".lora_a", ".lora_b")) for n in names):
        raise VerifyError(f"the adapter GGUF holds {len(names)} tensors, {2 * pairs} were written.")
    return [f"{pairs} LoRA pairs, alpha {alpha:g}"]
