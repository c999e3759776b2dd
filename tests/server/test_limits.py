"""Defaults and limits declared once (ozfig/limits.py): the settings, the request schema and the
engine's sampling defaults agree, so a value one accepts is never refused by another."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ozfig import limits
from ozfig.engine.sampling import SamplingParams
from ozfig.errors import SettingsError
from server.api.completion_request import CompletionRequest
from server.api.request_schema import ChatCompletionRequest
from server.settings import Settings

HELLO = [{"role": "user", "content": "hi"}]


def request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": HELLO, **fields})


def test_temperature_is_bounded_alike_for_the_setting_and_a_request() -> None:
    assert (
        Settings(temperature=limits.TEMPERATURE_MAX).temperature
        == request(temperature=2.0).temperature
        == 2.0
    )
    with pytest.raises(SettingsError, match=r"at most 2\.0"):
        Settings(temperature=2.01)
    with pytest.raises(ValidationError):
        request(temperature=2.01)
    with pytest.raises(SettingsError):
        Settings(temperature=-0.01)
    with pytest.raises(ValidationError):
        request(temperature=-0.01)


def test_top_p_and_penalties_follow_the_shared_limits() -> None:
    assert request(top_p=limits.TOP_P_MAX).top_p == 1.0 and request(top_p=limits.TOP_P_MIN).top_p == 0.0
    for bad in ({"top_p": 1.01}, {"top_p": -0.01}, {"frequency_penalty": 2.01}, {"presence_penalty": -2.01}):
        with pytest.raises(ValidationError):
            request(**bad)
    assert request(frequency_penalty=-2.0, presence_penalty=2.0).presence_penalty == limits.PENALTY_MAX
    with pytest.raises(ValidationError):
        request(stop=["a"] * (limits.MAX_STOPS + 1))
    assert request(stop=["a"] * limits.MAX_STOPS).stop == ["a"] * limits.MAX_STOPS


def test_the_defaults_are_the_same_everywhere() -> None:
    assert Settings().temperature == limits.TEMPERATURE_DEFAULT == 0.7
    assert SamplingParams().temperature == limits.TEMPERATURE_DEFAULT
    assert SamplingParams().top_p == limits.TOP_P_DEFAULT == 0.95
    schema = ChatCompletionRequest.model_json_schema()["properties"]
    assert f"default {limits.TOP_P_DEFAULT}" in schema["top_p"]["description"]
    assert schema["temperature"]["anyOf"][0]["maximum"] == limits.TEMPERATURE_MAX


def test_fetch_ports_are_tcp_ports() -> None:
    assert Settings(fetch_ports=("8080", "8443")).fetch_ports == ("8080", "8443")
    for bad in ("0", "65536", "http", "-1"):
        with pytest.raises(SettingsError, match="--fetch-ports"):
            Settings(fetch_ports=(bad,))


@pytest.mark.parametrize("name", ["temperature", "top_p", "frequency_penalty", "presence_penalty"])
def test_chat_and_text_completions_share_the_limits(name: str) -> None:
    chat = ChatCompletionRequest.model_json_schema()["properties"][name]["anyOf"][0]
    text = CompletionRequest.model_json_schema()["properties"][name]["anyOf"][0]
    assert (chat["minimum"], chat["maximum"]) == (text["minimum"], text["maximum"])
