"""Messages → prompt tokens with the model's own chat template, untrusted text kept as text.

The tokens are those of the whole render (`ChatTemplate`, exactly as transformers renders
it) split at the control tokens the template wrote, each text piece tokenized with
special-token parsing off (see `ozfig.chat_tokens` for how content is kept from forming a
control token). BOS: added when the vocabulary asks for it, unless the template already
wrote it (Llama 3's `{{ bos_token }}`), so it is never doubled. Shared by `ozfig serve` and
`ozfig eval answers`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ozfig.errors import RequestError

from .chat_template import ChatTemplate, TemplateProfile, probe_template
from .chat_tokens import ControlToken, ControlTokens, strip_around

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

    @property
    def system_role(self) -> bool:
        """Whether the template takes a system message (else fold the system prompt into the user turn)."""
        return self.profile.system_role

    def _pieces(self, messages: Sequence[Mapping[str, Any]]) -> tuple[list[str | ControlToken], str]:
        contents = [str(m["content"]) for m in messages]
        try:
            mark = self.controls.free_mark(
                [*contents, *(str(m["role"]) for m in messages), self.template.source]
            )
        except ValueError as exc:
            raise RequestError(str(exc)) from exc
        protected = [
            {**m, "content": self.controls.protect(c, mark)} for m, c in zip(messages, contents, strict=True)
        ]
        render = self.template.render(protected)
        return strip_around(list(self.controls.split(render))), mark

    def text(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The rendered prompt as the model sees it (the render of the real contents)."""
        pieces, mark = self._pieces(messages)
        return "".join(p.replace(mark, "") if isinstance(p, str) else p.text for p in pieces)

    def tokens(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        """Prompt token ids; content is never parsed for special tokens."""
        pieces, mark = self._pieces(messages)
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
