"""Messages → prompt tokens with the model's own chat template, untrusted text kept as text.

The tokens are those of the whole render (`ChatTemplate`, exactly as transformers renders
it) split at the control tokens the template wrote, each text piece tokenized with
special-token parsing off (see `ozfig.chat_tokens` for how content is kept from forming a
control token). BOS: added when the vocabulary asks for it, unless the template already
wrote it (Llama 3's `{{ bos_token }}`), so it is never doubled. Shared by `ozfig serve` and
`ozfig eval answers`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from ozfig.errors import RequestError

from .chat_template import ChatTemplate, TemplateProfile, probe_template
from .chat_tokens import ControlToken, ControlTokens, strip_around
from .tools.detect import detect_format
from .tools.formats import ToolFormat

log = logging.getLogger(__name__)

# ChatML, for a GGUF that carries no template (the original fine-tune's format)
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class Vocabulary(Protocol):
    """What the formatter needs of a loaded model (`LlamaModel` has it)."""

    path: str

    @property
    def chat_template(self) -> str | None: ...
    @property
    def bos(self) -> int: ...
    @property
    def eos(self) -> int: ...
    @property
    def add_bos(self) -> bool: ...
    def token_text(self, token: int) -> str: ...
    def control_tokens(self) -> list[tuple[int, str, bool, bool]]: ...
    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = False) -> list[int]: ...
    def detokenize(self, tokens: list[int]) -> str: ...


class ChatFormatter:
    """Renders messages with a model's chat template into safe prompt tokens.

    The template is the model's own (ChatML when it carries none), compiled and checked with
    probe messages when the formatter is made: ChatTemplateError if it cannot be used.
    """

    def __init__(self, model: Vocabulary) -> None:
        self.model = model
        source = model.chat_template
        if not source:
            log.warning("%s carries no chat template; using ChatML", model.path)
            source = CHATML_TEMPLATE
        bos_text = model.token_text(model.bos) if model.bos >= 0 else ""
        eos_text = model.token_text(model.eos) if model.eos >= 0 else ""
        self.template = ChatTemplate(source, bos_token=bos_text, eos_token=eos_text)
        self.controls = ControlTokens(
            ControlToken(text, token, lstrip, rstrip)
            for token, text, lstrip, rstrip in model.control_tokens()
        )
        self.profile: TemplateProfile = probe_template(self.template)

    @functools.cached_property
    def tool_format(self) -> ToolFormat:
        """How this template's model is told of tools and writes its calls (`ozfig.tools.detect`)."""
        return detect_format(self.template, system_role=self.system_role)

    def tool_opener_token(self, fmt: ToolFormat) -> int | None:
        """The one token that is the format's opener, if the vocabulary has one (a trigger token)."""
        control = self.controls.by_text.get(fmt.opener)
        if control is not None:
            return control.id
        tokens = self.model.tokenize(fmt.opener, parse_special=True)
        return tokens[0] if len(tokens) == 1 else None

    @property
    def system_role(self) -> bool:
        """Whether the template takes a system message (else fold the system prompt into the user turn)."""
        return self.profile.system_role

    def _pieces(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None
    ) -> tuple[list[str | ControlToken], str]:
        try:
            mark = self.controls.free_mark([*_strings(messages), *_strings(tools), self.template.source])
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
        protected = [_protected(m, self.controls, mark) for m in messages]
        protected_tools = None if tools is None else [_protected(t, self.controls, mark) for t in tools]
        render = self.template.render(protected, tools=protected_tools)
        return strip_around(list(self.controls.split(render))), mark

    def text(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
    ) -> str:
        """The rendered prompt as the model sees it (the render of the real contents)."""
        pieces, mark = self._pieces(messages, tools)
        return "".join(p.replace(mark, "") if isinstance(p, str) else p.text for p in pieces)

    def tokens(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None
    ) -> list[int]:
        """Prompt token ids; content (and every string of tools and calls) is never parsed for special tokens."""
        pieces, mark = self._pieces(messages, tools)
        out: list[int] = []
        for piece in pieces:
            if isinstance(piece, ControlToken):
                out.append(piece.id)
            elif piece:
                out.extend(self.model.tokenize(piece.replace(mark, ""), parse_special=False))
        bos = self.model.bos
        if self.model.add_bos and bos >= 0 and (not out or out[0] != bos):
            out.insert(0, bos)
        if log.isEnabledFor(logging.DEBUG):
            text = "".join(p.replace(mark, "") if isinstance(p, str) else p.text for p in pieces)
            log.debug("prompt of %d tokens: %r", len(out), text)
        return out


def _strings(value: Any) -> Iterator[str]:
    """Every string in a message or tool (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _protected(value: Any, controls: ControlTokens, mark: str) -> Any:
    """`value` with every string (keys too) protected, so none forms a control token in the render."""
    if isinstance(value, str):
        return controls.protect(value, mark)
    if isinstance(value, Mapping):
        return {_protected(k, controls, mark): _protected(v, controls, mark) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_protected(v, controls, mark) for v in value]
    return value
