"""The OzFig prompt: the original's messages, rendered with the model's own chat template
(`ozfig.chat_format.ChatFormatter`: untrusted text never becomes a control token), with as
many web snippets as fit beside the answer (`fit_snippets`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ozfig.chat_format import ChatFormatter

from .engine.engine import check_prompt_fits
from .neutralize import neutralize
from .websearch import Snippet

SYSTEM_PROMPT = "You are a helpful and detailed assistant called OzFig"
USER_TEMPLATE = (
    'Reply and have a conversation with the user, this is their prompt: --Beginning of User Prompt-- "{query}" '
    "--End of User Prompt--. These are the results from the web, use them to compose a more detailed answer: "
    '"{snippets}"'
)


def user_message(query: str, snippets: Sequence[Snippet]) -> str:
    return USER_TEMPLATE.format(
        query=neutralize(query), snippets=" ".join(neutralize(s.text) for s in snippets)
    )


def with_system_prompt(formatter: ChatFormatter, messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """`messages` led by the OzFig system prompt: a system message, or, for a template that takes
    none (Gemma, Mistral v0.2), the head of the first user turn."""
    out = [dict(m) for m in messages]
    if formatter.system_role:
        return [{"role": "system", "content": SYSTEM_PROMPT}, *out]
    first = next(i for i, m in enumerate(out) if m["role"] == "user")
    out[first]["content"] = f"{SYSTEM_PROMPT}\n\n{out[first]['content']}"
    return out


def ozfig_messages(formatter: ChatFormatter, query: str, snippets: Sequence[Snippet]) -> list[dict[str, str]]:
    return with_system_prompt(formatter, [{"role": "user", "content": user_message(query, snippets)}])


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
    check_prompt_fits(len(base), ctx)
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
        formatter,
        lambda chosen: ozfig_messages(formatter, query, chosen),
        snippets,
        ctx=ctx,
        max_tokens=max_tokens,
    )
