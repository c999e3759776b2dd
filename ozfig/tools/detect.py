"""Which tool-call format a chat template gets, decided once when the template is loaded.

A template is taken at its word only when it really renders tools and a call/result round
trip: the source names a known format's markers (`formats.MARKERS`), and a probe conversation
rendered with one probe tool shows the tool, the call and the result. Anything else (no
markers, a refusal, something missing) gets the generic format.
"""

from __future__ import annotations

import logging

from ..chat_template import ChatTemplate
from ..errors import TemplateRefusedError
from .calls import Tool, ToolUse
from .formats import GENERIC, ToolFormat, format_by_markers
from .prompt import tool_conversation

log = logging.getLogger(__name__)

PROBE_TOOL = Tool(
    "ozfig_probe_lookup",
    "Looks a word up.",
    {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
)
PROBE_ARGUMENT = "zqprobeword"
PROBE_RESULT = "zqproberesult"


def _probe_conversation() -> list[dict[str, object]]:
    call = {"id": "call_ozfigprobe1", "name": PROBE_TOOL.name, "arguments": f'{{"word": "{PROBE_ARGUMENT}"}}'}
    return [
        {"role": "user", "content": "Look up a word."},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": PROBE_RESULT},
        {"role": "assistant", "content": "Found it."},
        {"role": "user", "content": "Thanks."},
    ]


def detect_format(template: ChatTemplate, *, system_role: bool) -> ToolFormat:
    fmt = format_by_markers(template.source)
    if fmt is None:
        return GENERIC
    messages, tools = tool_conversation(
        _probe_conversation(), fmt, ToolUse((PROBE_TOOL,)), system_role=system_role
    )
    try:
        render = template.render(messages, tools=tools)
    except TemplateRefusedError as exc:
        log.info("the chat template looks like %s tool calls but refused a probe (%s): generic", fmt.name, exc)
        return GENERIC
    missing = [s for s in (PROBE_TOOL.description or "", PROBE_ARGUMENT, PROBE_RESULT) if s not in render]
    if missing:
        log.info("the chat template looks like %s tool calls but leaves out %s: generic", fmt.name, missing)
        return GENERIC
    return fmt
