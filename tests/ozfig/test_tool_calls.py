"""Tool calls without a model: formats found in real templates, rendering, grammars' triggers,
and the streaming parser (streamed in any chunks, it reads the same calls)."""

from __future__ import annotations

import json
import re

import pytest

from ozfig.chat_template import ChatTemplate
from ozfig.tools.calls import Tool, ToolUse
from ozfig.tools.detect import detect_format
from ozfig.tools.formats import GENERIC, HERMES, LLAMA3, MISTRAL, ToolFormat
from ozfig.tools.grammar import call_grammar, trigger_patterns
from ozfig.tools.parser import ArgumentsDelta, CallStarted, ContentDelta, ToolCallParser
from ozfig.tools.prompt import mistral_id, tool_conversation
from tests.support.chat_templates import BY_NAME, KNOWN_TEMPLATES

WEATHER = Tool(
    "get_weather",
    "The weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ADD = Tool("add", None, {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}})
NAMES = ["get_weather", "add"]
EXPECTED_FORMAT = {
    "llama-3.1-instruct": "llama3",
    "llama-3.2-instruct": "llama3",
    "qwen-2.5-instruct": "hermes",
    "mistral-7b-instruct-v0.3": "mistral",
}
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    {"role": "assistant", "content": "It is sunny."},
    {"role": "user", "content": "And tomorrow?"},
]


@pytest.mark.parametrize("known", KNOWN_TEMPLATES, ids=lambda t: t.name)
def test_each_template_gets_its_own_format_or_the_generic_one(known) -> None:
    template = ChatTemplate(known.source, bos_token="<s>", eos_token="</s>")
    fmt = detect_format(template, system_role=known.system_role)
    assert fmt.name == EXPECTED_FORMAT.get(known.name, "generic")


@pytest.mark.parametrize("known", KNOWN_TEMPLATES, ids=lambda t: t.name)
def test_tools_calls_and_results_all_reach_the_render(known) -> None:
    template = ChatTemplate(known.source, bos_token="<s>", eos_token="</s>")
    fmt = detect_format(template, system_role=known.system_role)
    messages = CONVERSATION if known.system_role else CONVERSATION[1:]
    rendered, tools = tool_conversation(messages, fmt, ToolUse((WEATHER, ADD)), system_role=known.system_role)
    text = template.render(rendered, tools=tools)
    for needle in ("The weather of a city", "get_weather", "Paris", "sunny, 21 C", "And tomorrow?"):
        assert needle in text, (needle, text)


def test_the_generic_format_is_taught_in_the_system_message() -> None:
    template = ChatTemplate(BY_NAME["unsloth-chatml"].source)
    rendered, tools = tool_conversation(CONVERSATION, GENERIC, ToolUse((WEATHER,), "required"), system_role=True)
    assert tools is None
    system = rendered[0]["content"]
    assert system.startswith("Be brief.") and '"name": "get_weather"' in system and "<tool_call>" in system
    assert "Call one or more of the functions now." in system
    assert rendered[2]["content"] == '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert rendered[3] == {"role": "user", "content": "<tool_response>\nsunny, 21 C\n</tool_response>"}
    assert "<tool_response>" in template.render(rendered)


def test_none_tells_the_model_of_no_tools() -> None:
    rendered, tools = tool_conversation(CONVERSATION, LLAMA3, ToolUse((WEATHER,), "none"), system_role=True)
    assert tools is None and "tools" not in json.dumps(rendered[0])


def test_mistral_ids_are_nine_letters_and_digits_and_stable() -> None:
    ids = {mistral_id(f"call_{i}") for i in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[a-zA-Z0-9]{9}", i) for i in ids)
    assert mistral_id("call_7") == mistral_id("call_7")


CASES: list[tuple[ToolFormat, str, str, list[tuple[str, dict]]]] = [
    (HERMES, 'Sure. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris, \\"FR\\" {x}"}}\n</tool_call>',
     "Sure. ", [("get_weather", {"city": 'Paris, "FR" {x}'})]),
    (HERMES, '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>\n<tool_call>\n'
     '{"arguments": {"city": "Rome"}, "name": "get_weather"}\n</tool_call>',
     "", [("add", {"a": 1, "b": 2}), ("get_weather", {"city": "Rome"})]),
    (GENERIC, "I think <tool_call> is a tag, <tool_call>{oops}. Bye", "I think <tool_call> is a tag, <tool_call>{oops}. Bye", []),
    (GENERIC, 'x <tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', 'x <tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', []),
    (LLAMA3, ' {"name": "add", "parameters": {"a": 1, "b": 2}}', "", [("add", {"a": 1, "b": 2})]),
    (LLAMA3, '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}', "", [("get_weather", {"city": "Oslo"})]),
    (LLAMA3, 'Use {"name": "add"} like this. {x}', 'Use {"name": "add"} like this. {x}', []),
    (MISTRAL, '[TOOL_CALLS] [{"name": "add", "arguments": {"a": 1}}, {"name": "get_weather", "arguments": {"city": "x"}}]',
     "", [("add", {"a": 1}), ("get_weather", {"city": "x"})]),
    (HERMES, "Plain text, no calls at all <tool_ca", "Plain text, no calls at all <tool_ca", []),
]


@pytest.mark.parametrize(("fmt", "text", "content", "calls"), CASES)
@pytest.mark.parametrize("step", [1, 2, 3, 5, 11, 10_000])
def test_calls_are_read_the_same_in_any_chunks(fmt, text, content, calls, step) -> None:
    parser = ToolCallParser(fmt, NAMES)
    events = []
    for i in range(0, len(text), step):
        events += parser.feed(text[i : i + step])
    events += parser.finish()
    assert parser.content == content
    assert [(c.name, json.loads(c.arguments)) for c in parser.calls] == calls
    assert "".join(e.text for e in events if isinstance(e, ContentDelta)) == content
    starts = [e for e in events if isinstance(e, CallStarted)]
    assert [(s.index, s.name) for s in starts] == [(i, c[0]) for i, c in enumerate(calls)]
    for call in parser.calls:  # the argument fragments add up to the arguments, after the start
        fragments = [e.text for e in events if isinstance(e, ArgumentsDelta) and e.index == call.index]
        assert "".join(fragments) == call.arguments
        assert call.complete


def test_arguments_stream_while_they_are_written() -> None:
    parser = ToolCallParser(HERMES, NAMES)
    parser.feed('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par')
    events = parser.feed('is"')
    assert events == [ArgumentsDelta(0, 'is"')]


@pytest.mark.parametrize("fmt", [HERMES, GENERIC, MISTRAL, LLAMA3])
def test_trigger_patterns_fire_only_on_the_start_of_a_call(fmt: ToolFormat) -> None:
    [pattern, *_] = trigger_patterns(fmt, NAMES, None)
    search = re.compile(pattern)
    opener = fmt.opener
    brace = "\n{" if fmt.closer else " [{" if fmt.array else "{"
    good = [opener, opener + brace, opener + brace + '"name": "ad', opener + brace + '"name":"add"']
    for text in good:
        assert search.search("Let me check. " + text), text
    for text in (opener + "}", opener + ' {"nam": ', opener + '{"name": "rm'):
        assert not search.search(text), text


def test_forced_and_lazy_grammars() -> None:
    forced = call_grammar(ToolUse((WEATHER, ADD), "function", "add"), HERMES)
    assert not forced.lazy and "get_weather" not in forced.gbnf and '"\\"add\\""' in forced.gbnf
    lazy = call_grammar(ToolUse((WEATHER, ADD), "auto"), HERMES, opener_token=151657)
    assert lazy.lazy and lazy.tokens == (151657,) and lazy.patterns == ()
    single = call_grammar(ToolUse((WEATHER,), "required", parallel=False), HERMES)
    root = next(line for line in single.gbnf.splitlines() if line.startswith("root ::="))
    assert root == "root ::= call-block"
