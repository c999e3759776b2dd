"""The prompt of a chat completion, with the OzFig web augmentation when it is asked for.

Without web search the client's messages are rendered as they are. With it, the last user
message becomes the OzFig user message (the question plus numbered web sources, neutralized
as in /prompt), the OzFig system prompt goes first when the client sent no system message
(into the first user turn for a template that takes no system message), and the best
passages fill the web-context budget within what the context leaves beside `max_tokens`. Every message content is tokenized as plain text (see `ChatFormatter.tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ozfig.engine.engine import check_prompt_fits

from ..prompt import BuiltPrompt, ChatFormatter, fit_sources, user_message, with_system_prompt
from ..search import Passage, Source


def search_query(messages: Sequence[dict[str, str]], max_chars: int) -> str:
    """What to ask the web: the last user message, whitespace-collapsed, at most `max_chars`."""
    for message in reversed(messages):
        if message["role"] == "user":
            return " ".join(message["content"].split())[:max_chars].strip()
    return ""


def augmented(
    formatter: ChatFormatter, messages: Sequence[dict[str, str]], sources: Sequence[Source]
) -> list[dict[str, str]]:
    out = [dict(m) for m in messages]
    last = max(i for i, m in enumerate(out) if m["role"] == "user")
    out[last]["content"] = user_message(out[last]["content"], sources)
    if not any(m["role"] == "system" for m in out):
        out = with_system_prompt(formatter, out)
    return out


def build_chat_prompt(
    formatter: ChatFormatter,
    messages: Sequence[dict[str, str]],
    passages: Sequence[Passage] | None,
    *,
    ctx: int,
    max_tokens: int,
    web_tokens: int,
) -> BuiltPrompt:
    """The prompt tokens; `passages` None = no web augmentation."""
    if passages is None:
        tokens = formatter.tokens(messages)
        check_prompt_fits(len(tokens), ctx)
        return BuiltPrompt(tokens=tokens, sources=[])
    return fit_sources(
        formatter,
        lambda chosen: augmented(formatter, messages, chosen),
        passages,
        ctx=ctx,
        max_tokens=max_tokens,
        web_tokens=web_tokens,
    )
