"""The OzFig prompt: the original's messages, rendered with the model's own chat template,
tokenized so that untrusted text (the user's query, web snippets) never becomes a control
token, and capped so that prompt + answer always fit the context.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

from .engine.model import LlamaModel
from .errors import PromptTooLongError
from .websearch import Snippet

log = logging.getLogger("ozfig.prompt")

SYSTEM_PROMPT = "You are a helpful and detailed assistant called OzFig"
USER_TEMPLATE = (
    'Reply and have a conversation with the user, this is their prompt: --Beginning of User Prompt-- "{query}" '
    "--End of User Prompt--. These are the results from the web, use them to compose a more detailed answer: "
    '"{snippets}"'
)
DELIMITERS = ("--Beginning of User Prompt--", "--End of User Prompt--")
_DELIMITER_RE = re.compile("|".join(re.escape(d) for d in DELIMITERS), re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# ChatML, for a GGUF that carries no template (the original fine-tune's format)
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SENTINEL = "\x1eOZFIG-CONTENT-{}\x1e"
_SENTINEL_RE = re.compile("\x1eOZFIG-CONTENT-(\\d+)\x1e")


def neutralize(text: str) -> str:
    """Untrusted text that cannot close the quotes or delimiters it is wrapped in."""
    text = _CONTROL_RE.sub("", text).replace('"', "'")
    while True:
        cleaned = _DELIMITER_RE.sub("", text)
        if cleaned == text:
            return text
        text = cleaned


def user_message(query: str, snippets: Sequence[Snippet]) -> str:
    return USER_TEMPLATE.format(
        query=neutralize(query), snippets=" ".join(neutralize(s.text) for s in snippets)
    )


def ozfig_messages(query: str, snippets: Sequence[Snippet]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(query, snippets)},
    ]


def _raise(message: str) -> None:
    raise ValueError(message)


class ChatFormatter:
    """Renders messages with the model's chat template into safe token ids."""

    def __init__(self, model: LlamaModel) -> None:
        self.model = model
        source = model.chat_template
        if not source:
            log.warning("%s carries no chat template; using ChatML", model.path)
            source = CHATML_TEMPLATE
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
        self.template = env.from_string(source)
        self.bos_text = model.token_text(model.bos) if model.bos >= 0 else ""
        self.eos_text = model.token_text(model.eos) if model.eos >= 0 else ""

    def render_parts(self, messages: Sequence[dict[str, Any]]) -> list[tuple[str, bool]]:
        """The rendered prompt as (text, trusted) parts: template markup is trusted, contents are not."""
        stand_ins = [{**m, "content": _SENTINEL.format(i)} for i, m in enumerate(messages)]
        rendered = self.template.render(
            messages=stand_ins,
            add_generation_prompt=True,
            bos_token=self.bos_text,
            eos_token=self.eos_text,
        )
        parts: list[tuple[str, bool]] = []
        last = 0
        for match in _SENTINEL_RE.finditer(rendered):
            parts.append((rendered[last : match.start()], True))
            parts.append((str(messages[int(match.group(1))]["content"]), False))
            last = match.end()
        parts.append((rendered[last:], True))
        return [(text, trusted) for text, trusted in parts if text]

    def tokens(self, messages: Sequence[dict[str, Any]]) -> list[int]:
        out: list[int] = []
        if self.model.add_bos and self.model.bos >= 0:
            out.append(self.model.bos)
        for text, trusted in self.render_parts(messages):
            out.extend(self.model.tokenize(text, parse_special=trusted))
        if len(out) >= 2 and out[0] == out[1] == self.model.bos:
            del out[0]  # the template wrote the BOS text itself
        return out

    def text(self, messages: Sequence[dict[str, Any]]) -> str:
        return "".join(text for text, _ in self.render_parts(messages))


@dataclass(frozen=True)
class BuiltPrompt:
    tokens: list[int]
    sources: list[Snippet]


def fit_snippets(
    formatter: ChatFormatter,
    render: Callable[[list[Snippet]], list[dict[str, str]]],
    snippets: Sequence[Snippet],
    *,
    ctx: int,
    max_tokens: int,
    margin: int = 8,
) -> BuiltPrompt:
    """Tokens of `render(chosen)` with as many snippets as fit beside `max_tokens` answer tokens.

    Snippets are taken in order; the last one may be cut at a token boundary. Without any
    snippet the prompt must leave room for at least one answer token, or PromptTooLongError.
    """
    limit = ctx - max_tokens - margin
    base = formatter.tokens(render([]))
    if len(base) > ctx - 1:
        raise PromptTooLongError(
            f"the prompt takes {len(base)} tokens; the context holds {ctx} (prompt and answer together). "
            "Shorten the question or the conversation."
        )
    room = limit - len(base)
    chosen: list[Snippet] = []
    for snippet in snippets:
        cost = len(formatter.model.tokenize(" " + neutralize(snippet.text)))
        if cost <= room:
            chosen.append(snippet)
            room -= cost
            continue
        if room > 16:  # a useful part of it still fits: cut it at a token boundary
            cut = formatter.model.tokenize(neutralize(snippet.text))[: room - 2]
            chosen.append(Snippet(text=formatter.model.detokenize(cut).rstrip() + "…", url=snippet.url))
        break
    while True:
        tokens = formatter.tokens(render(chosen))
        if len(tokens) <= max(limit, len(base)) or not chosen:
            return BuiltPrompt(tokens=tokens, sources=chosen)
        chosen.pop()  # token merges across snippet boundaries made it a little longer


def build_ozfig_prompt(
    formatter: ChatFormatter, query: str, snippets: Sequence[Snippet], *, ctx: int, max_tokens: int
) -> BuiltPrompt:
    """The OzFig prompt for `query` with as many snippets as fit."""
    return fit_snippets(
        formatter, lambda chosen: ozfig_messages(query, chosen), snippets, ctx=ctx, max_tokens=max_tokens
    )
