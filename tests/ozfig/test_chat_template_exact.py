"""The chat-template environment and the load-time probe, checked exactly: each global, filter
option and whitespace rule, and the whole text of every message an operator or a user reads."""

from __future__ import annotations

import logging

import pytest

from ozfig.chat_template import ChatTemplate, probe_template
from ozfig.errors import ChatTemplateError, TemplateRefusedError

HI = [{"role": "user", "content": "hi"}]


def render(source: str, **kwargs: str) -> str:
    return ChatTemplate(source, **kwargs).render(HI)


def test_tojson_options() -> None:
    assert render("{{ {'b': 'é', 'a': 1} | tojson }}") == '{"b": "é", "a": 1}'  # non-ASCII kept, order kept
    assert render("{{ {'b': 2, 'a': 1} | tojson(sort_keys=true) }}") == '{"a": 1, "b": 2}'
    assert render("{{ {'a': [1, 2]} | tojson(separators=(',', ':')) }}") == '{"a":[1,2]}'
    assert render("{{ 'é' | tojson(ensure_ascii=true) }}") == '"\\u00e9"'


def test_dict_and_namespace_take_positional_arguments_too() -> None:
    assert render("{{ dict([('a', 1)]) | tojson }}") == '{"a": 1}'
    assert render("{{ dict.fromkeys(['a', 'b'], 0) | tojson }}") == '{"a": 0, "b": 0}'
    assert render("{{ dict.fromkeys(['a']) | tojson }}") == '{"a": null}'
    assert render("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}") == "12"
    # transformers' dict, not the dict type: building dicts is all it offers
    assert render("{{ dict.copy is defined }}|{{ dict.items is defined }}") == "False|False"


def test_a_namespace_refuses_underscore_attributes_when_set_later_too() -> None:
    with pytest.raises(TemplateRefusedError) as info:
        render("{% set ns = namespace() %}{% set ns._x = 1 %}{{ ns._x }}")
    assert info.value.message == (
        "the model's chat template cannot render these messages: SecurityError: "
        "a namespace cannot hold underscore-prefixed attributes: '_x'"
    )


def test_blocks_trim_their_newline_and_leading_whitespace() -> None:
    source = "A\n  {% if true %}\nB\n  {% endif %}\nC"
    assert render(source) == "A\nB\nC"


def test_the_render_gets_tools_documents_and_the_special_tokens() -> None:
    source = "{{ tools is none }}|{{ documents is none }}|{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}"
    assert render(source) == "True|True|||True"
    assert ChatTemplate(source, bos_token="<s>", eos_token="</s>").render(
        HI, add_generation_prompt=False
    ) == ("True|True|<s>|</s>|False")
    assert ChatTemplate("x").source == "x"


def test_a_render_error_names_its_type() -> None:
    with pytest.raises(TemplateRefusedError) as info:
        render("{{ 'a' + 1 }}")
    assert info.value.message.startswith(
        "the model's chat template cannot render these messages: TypeError: "
    )
    with pytest.raises(TemplateRefusedError) as info:
        render("{{ raise_exception('roles must alternate') }}")
    assert info.value.message == "the model's chat template refused these messages: roles must alternate"


def test_the_compile_error_says_what_to_do() -> None:
    with pytest.raises(ChatTemplateError) as info:
        ChatTemplate("{% for m in messages %}{{ m.content }}")
    assert info.value.message.startswith(
        "The model's chat template (tokenizer.chat_template) does not compile: "
    )
    assert info.value.message.endswith(
        "Fix the template in the GGUF (gguf-new-metadata --chat-template-file) or use a GGUF whose template "
        "works with transformers' apply_chat_template."
    )


def test_the_probe_messages() -> None:
    with pytest.raises(ChatTemplateError) as info:
        probe_template(ChatTemplate("{{ raise_exception('no') }}"))
    assert info.value.message == (
        "The model's chat template cannot render a plain user/assistant/user conversation (the model's chat "
        "template refused these messages: no), so ozfig cannot build prompts with it. Use a GGUF whose chat "
        "template takes user and assistant messages."
    )
    with pytest.raises(ChatTemplateError) as info:
        probe_template(
            ChatTemplate(
                "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}"
            )
        )
    assert info.value.message == (
        "The model's chat template does not put every message into the prompt: the content of the assistant "
        "message(s) of a test conversation is missing or repeated in its render. ozfig would send the model "
        "prompts without the user's words; use a GGUF whose chat template renders message contents (as "
        "transformers' apply_chat_template does)."
    )
    with pytest.raises(ChatTemplateError) as info:
        probe_template(ChatTemplate("{% for m in messages %}[{{ m.role }}]{% endfor %}"))
    assert "the content of the user, assistant, user message(s)" in info.value.message
    # with a system message first, the others are lost
    loses = (
        "{% if messages[0].role == 'system' %}{{ messages[0].content }}{% else %}"
        "{% for m in messages %}{{ m.content }}{% endfor %}{% endif %}"
    )
    with pytest.raises(ChatTemplateError) as info:
        probe_template(ChatTemplate(loses))
    assert info.value.message == (
        "The model's chat template loses messages when a system message comes first: the content of the user, "
        "assistant, user message(s) of a test conversation is missing or repeated in its render. Use a GGUF "
        "whose chat template renders every message."
    )


def test_the_probe_logs_why_the_system_prompt_is_folded(caplog: pytest.LogCaptureFixture) -> None:
    refuses = (
        "{% if messages[0].role == 'system' %}{{ raise_exception('no system') }}{% endif %}"
        "{% for m in messages %}{{ m.content }}{% endfor %}"
    )
    with caplog.at_level(logging.INFO, logger="ozfig.chat_template"):
        assert probe_template(ChatTemplate(refuses)).system_role is False
    assert [r.getMessage() for r in caplog.records] == [
        "the chat template takes no system message (the model's chat template refused these messages: "
        "no system): the system prompt goes into the user turn"
    ]
    caplog.clear()
    drops = "{% for m in messages %}{% if m.role != 'system' %}{{ m.content }}{% endif %}{% endfor %}"
    with caplog.at_level(logging.INFO, logger="ozfig.chat_template"):
        assert probe_template(ChatTemplate(drops)).system_role is False
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "the chat template drops the system message: the system prompt goes into the user turn")
    ]
    assert (
        probe_template(ChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}")).system_role is True
    )
