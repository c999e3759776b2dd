"""The chat-template renderer against transformers' apply_chat_template, with the public templates."""

from __future__ import annotations

import pytest

from ozfig.chat_template import ChatTemplate, probe_template
from ozfig.errors import ChatTemplateError, TemplateRefusedError
from tests.support.chat_templates import (
    BY_NAME,
    KNOWN_TEMPLATES,
    KnownTemplate,
    conversation,
    reference_render,
)

BOS, EOS = "<s>", "</s>"


@pytest.mark.parametrize("known", KNOWN_TEMPLATES, ids=lambda t: t.name)
@pytest.mark.parametrize("generation", [True, False])
def test_render_is_transformers_render(known: KnownTemplate, generation: bool) -> None:
    template = ChatTemplate(known.source, bos_token=BOS, eos_token=EOS)
    messages = conversation(known.system_role)
    ours = template.render(messages, add_generation_prompt=generation)
    assert ours == reference_render(
        known.source, messages, bos=BOS, eos=EOS, add_generation_prompt=generation
    )
    for m in messages:
        assert m["content"].strip() in ours


@pytest.mark.parametrize("known", KNOWN_TEMPLATES, ids=lambda t: t.name)
def test_probe_finds_the_roles_each_template_takes(known: KnownTemplate) -> None:
    profile = probe_template(ChatTemplate(known.source, bos_token=BOS, eos_token=EOS))
    assert profile.system_role is known.system_role


def test_llama31_trims_contents_and_keeps_them() -> None:
    template = ChatTemplate(BY_NAME["llama-3.1-instruct"].source, bos_token="<|begin_of_text|>")
    text = template.render([{"role": "user", "content": "  what is rust \n"}])
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nwhat is rust<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.parametrize(
    ("name", "messages", "fragment"),
    [
        (
            "gemma-2-it",
            [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
            "System role not supported",
        ),
        (
            "mistral-7b-instruct-v0.2",
            [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
            "Conversation roles must alternate",
        ),
        (
            "mistral-7b-instruct-v0.2",
            [{"role": "system", "content": "s"}],
            "Conversation roles must alternate",
        ),
    ],
)
def test_a_refused_conversation_carries_the_templates_message(
    name: str, messages: list[dict[str, str]], fragment: str
) -> None:
    template = ChatTemplate(BY_NAME[name].source, bos_token=BOS, eos_token=EOS)
    with pytest.raises(TemplateRefusedError) as info:
        template.render(messages)
    assert fragment in info.value.message
    assert info.value.status == 400


def test_tojson_is_transformers_tojson() -> None:
    source = (
        "{{ {'b': 'é<&>', 'a': [1, 2]} | tojson }}|{{ {'x': 1} | tojson(indent=2) }}{{ messages | tojson }}"
    )
    messages = [{"role": "user", "content": "naïve <b>"}]
    ours = ChatTemplate(source).render(messages)
    assert ours == reference_render(source, messages, bos=BOS, eos=EOS)
    assert ours.startswith('{"b": "é<&>", "a": [1, 2]}')


def test_loop_controls_and_strftime_now() -> None:
    source = "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.content }}{% endfor %}{{ strftime_now('%Y') }}"
    messages = [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}]
    ours = ChatTemplate(source).render(messages)
    assert ours == reference_render(source, messages, bos=BOS, eos=EOS)
    assert ours.startswith("one2")


def test_namespace_and_dict_are_restricted_as_in_transformers() -> None:
    ok = "{% set ns = namespace(n=1) %}{% set ns.n = ns.n + 1 %}{{ ns.n }}{{ dict(a=1) | tojson }}"
    messages = [{"role": "user", "content": "x"}]
    assert (
        ChatTemplate(ok).render(messages) == reference_render(ok, messages, bos=BOS, eos=EOS) == '2{"a": 1}'
    )
    with pytest.raises(TemplateRefusedError):
        ChatTemplate("{% set ns = namespace(_x=1) %}").render(messages)


def test_a_template_that_does_not_compile_is_a_startup_error() -> None:
    with pytest.raises(ChatTemplateError) as info:
        ChatTemplate("{% for m in messages %}{{ m.content }}")
    assert "does not compile" in info.value.message


@pytest.mark.parametrize(
    "source",
    [
        "{% for m in messages %}<|im_start|>{{ m.role }}<|im_end|>{% endfor %}",  # contents never rendered
        "{% for m in messages %}{{ m.content }}{{ m.content }}{% endfor %}",  # each twice
        "{{ raise_exception('no') }}",
    ],
)
def test_a_template_that_loses_contents_refuses_to_start(source: str) -> None:
    with pytest.raises(ChatTemplateError) as info:
        probe_template(ChatTemplate(source))
    assert "chat template" in info.value.message
    assert "\n" not in info.value.message


def test_a_template_that_drops_the_system_message_gets_it_folded() -> None:
    source = "{% for m in messages %}{% if m.role != 'system' %}[{{ m.role }}]{{ m.content }}{% endif %}{% endfor %}"
    assert probe_template(ChatTemplate(source)).system_role is False
