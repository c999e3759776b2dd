"""The prompt of a chat completion, with the OzFig web augmentation when it is asked for.

Without web search the client's messages are rendered as they are. With it, the last user
message becomes the OzFig user message (the question plus numbered web sources, neutralized
as in /prompt), the OzFig system prompt goes first when the client sent no system message
(into the first user turn for a template that takes no system message), and the best
passages fill the web-context budget within what the context leaves beside `max_tokens`.
Earlier user messages that were augmented the same way get their sources back from the
`SourceMemory`, so the history renders as the model saw it. Every message content is
tokenized as plain text (see `ChatFormatter.tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ozfig.tools.calls import ToolUse
from ozfig.tools.prompt import tool_conversation

from .prompt_build import ChatFormatter, PromptBuilder, user_message, with_system_prompt
from .search import Source
from .source_memory import SourceMemory


def last_user(messages: Sequence[dict[str, Any]]) -> int:
    return max(i for i, m in enumerate(messages) if m["role"] == "user")


def augmented(
    formatter: ChatFormatter,
    messages: Sequence[dict[str, Any]],
    sources: Sequence[Source],
    memory: SourceMemory | None = None,
) -> list[dict[str, Any]]:
    out = [dict(m) for m in messages]
    last = last_user(out)
    if memory is not None:
        for i in range(last):
            if out[i]["role"] == "user" and (earlier := memory.recall(messages[: i + 1])) is not None:
                out[i]["content"] = user_message(out[i]["content"], earlier)
    out[last]["content"] = user_message(out[last]["content"], sources)
    if not any(m["role"] == "system" for m in out):
        out = with_system_prompt(formatter, out)
    return out


def chat_prompt(
    formatter: ChatFormatter,
    messages: Sequence[dict[str, Any]],
    *,
    web: bool,
    ctx: int,
    max_tokens: int,
    web_tokens: int,
    memory: SourceMemory | None = None,
    tool_use: ToolUse | None = None,
) -> PromptBuilder:
    """The prompt of `messages`; with `web`, to be filled with web sources (`with_passages`).

    Tools, calls and tool results are put as the model's tool format wants them
    (`ozfig.tools.prompt.tool_conversation`), after the web augmentation.
    """
    fmt = formatter.tool_format
    _, tools = tool_conversation([], fmt, tool_use, system_role=formatter.system_role)

    def render(chosen: list[Source]) -> list[dict[str, Any]]:
        base = augmented(formatter, messages, chosen, memory) if web else list(messages)
        return tool_conversation(base, fmt, tool_use, system_role=formatter.system_role)[0]

    return PromptBuilder(
        formatter, render, ctx=ctx, max_tokens=max_tokens, web_tokens=web_tokens if web else 0, tools=tools
    )
