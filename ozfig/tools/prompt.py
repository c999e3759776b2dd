"""A conversation with tools, calls and results, as the model's template renders it.

A template that takes `tools` (`ToolFormat.renders_tools`) gets them as OpenAI sends them, and
the assistant's calls and the `tool` results as transformers' templates expect them: a call's
arguments as an object (OpenAI sends JSON text), results with the called function's name,
and for Mistral's template call ids of nine letters and digits.

Any other template gets ozfig's generic format, documented in docs/api.md: the system message
(or, for a template without one, the head of the first user turn) lists the tools as JSON
and asks for `<tool_call>` blocks; earlier calls are written into the assistant's turn as
such blocks, and each result is a user turn holding a `<tool_response>` block.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .calls import ToolUse
from .formats import ToolFormat

GENERIC_INTRO = (
    "# Tools\n\nYou may call one or more functions to help with the user's request. "
    "The functions, as JSON schemas:\n<tools>\n{tools}\n</tools>\n\n"
    "To call functions, answer with one block per call and nothing else:\n"
    '<tool_call>\n{{"name": <function name>, "arguments": <the arguments as a JSON object>}}\n</tool_call>\n'
    "The results come back in <tool_response></tool_response> blocks. "
    "When no function is needed, answer the user directly."
)
MUST_CALL = "\n\nCall {which} now."
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def mistral_id(call_id: str) -> str:
    """Nine letters and digits for `call_id` (Mistral's template refuses other ids), always the same."""
    n = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    out = []
    for _ in range(9):
        n, r = divmod(n, len(_ALNUM))
        out.append(_ALNUM[r])
    return "".join(out)


def _arguments(text: str) -> Any:
    """A call's arguments as the templates expect them (an object), or the text if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def call_block(name: str, arguments: str) -> str:
    """One call in the generic (and Hermes) format."""
    body = json.dumps({"name": name, "arguments": _arguments(arguments)}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def generic_system_text(use: ToolUse) -> str:
    tools = "\n".join(json.dumps(t.as_openai(), ensure_ascii=False) for t in use.tools)
    text = GENERIC_INTRO.format(tools=tools)
    if use.choice == "required":
        text += MUST_CALL.format(which="one or more of the functions")
    elif use.choice == "function":
        text += MUST_CALL.format(which=f"the function {use.function}")
    return text


def _with_system_text(messages: list[dict[str, Any]], text: str, system_role: bool) -> list[dict[str, Any]]:
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{text}" if first["content"] else text
        return [first, *messages[1:]]
    if system_role:
        return [{"role": "system", "content": text}, *messages]
    out = list(messages)
    i = next((k for k, m in enumerate(out) if m["role"] == "user"), None)
    if i is None:
        return [{"role": "user", "content": text}, *out]
    out[i] = {**out[i], "content": f"{text}\n\n{out[i]['content']}"}
    return out


def _template_message(message: Mapping[str, Any], fmt: ToolFormat, names: dict[str, str]) -> dict[str, Any]:
    role = message["role"]
    content = message.get("content") or ""
    calls = message.get("tool_calls") or []
    ident = mistral_id if fmt.name == "mistral" else (lambda i: i)
    if role == "assistant" and calls:
        for call in calls:
            names[call["id"]] = call["name"]
        if not fmt.renders_tools:
            blocks = [call_block(c["name"], c["arguments"]) for c in calls]
            return {"role": "assistant", "content": "\n".join([content, *blocks] if content else blocks)}
        return {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": ident(c["id"]),
                    "type": "function",
                    "function": {"name": c["name"], "arguments": _arguments(c["arguments"])},
                }
                for c in calls
            ],
        }
    if role == "tool":
        call_id = message.get("tool_call_id") or ""
        if not fmt.renders_tools:
            return {"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"}
        name = names.get(call_id) or message.get("name") or ""
        return {"role": "tool", "tool_call_id": ident(call_id), "name": name, "content": content}
    return {"role": role, "content": content}


def tool_conversation(
    messages: Sequence[Mapping[str, Any]], fmt: ToolFormat, use: ToolUse | None, *, system_role: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The messages and the `tools` the template renders, for a conversation with tools.

    `messages` are OpenAI's, with each call as `{"id", "name", "arguments"}`. Tools are shown
    unless tool_choice is "none" (the model is then not told of them).
    """
    names: dict[str, str] = {}
    out = [_template_message(m, fmt, names) for m in messages]
    if use is None or use.choice == "none" or not use.tools:
        return out, None
    if fmt.renders_tools:
        return out, [t.as_openai() for t in use.tools]
    return _with_system_text(out, generic_system_text(use), system_role), None
