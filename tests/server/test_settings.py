import argparse

import pytest

from ozfig.errors import SettingsError
from ozfig.options import add_options, from_sources
from server.settings import DEFAULT_MODEL, Settings


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser, Settings)
    return parser.parse_args(argv)


def test_defaults_follow_the_original() -> None:
    s = from_sources(Settings, parse([]), environ={})
    assert (s.port, s.ctx, s.max_tokens, s.temperature, s.gpu_layers) == (8080, 4096, 512, 0.7, -1)
    assert s.model == DEFAULT_MODEL
    assert s.search_url == "https://api.duckduckgo.com/"
    assert s.search_html_url == "https://html.duckduckgo.com/html/"
    assert (s.search, s.read_pages, s.web_context_tokens, s.fetch_allow) == ("duckduckgo", 3, -1, ())
    assert 1 <= s.search_timeout <= 5


def test_flag_beats_environment_beats_default() -> None:
    env = {"OZFIG_PORT": "9000", "OZFIG_MAX_TOKENS": "64"}
    s = from_sources(Settings, parse(["--port", "9100"]), environ=env)
    assert s.port == 9100
    assert s.max_tokens == 64
    assert s.ctx == 4096


def test_every_field_has_a_flag_an_env_var_and_a_description() -> None:
    parser = argparse.ArgumentParser()
    add_options(parser, Settings)
    text = parser.format_help()
    for name in Settings.__dataclass_fields__:
        assert "--" + name.replace("_", "-") in text
        assert "OZFIG_" + name.upper() in text


@pytest.mark.parametrize(
    ("argv", "env", "fragment"),
    [
        (["--port", "70000"], {}, "--port / OZFIG_PORT must be at most 65535"),
        ([], {"OZFIG_CTX": "12"}, "--ctx / OZFIG_CTX must be at least 256"),
        ([], {"OZFIG_TEMPERATURE": "warm"}, "must be float"),
        ([], {"OZFIG_LOG_LEVEL": "loud"}, "must be one of"),
        ([], {"OZFIG_PROMPT_CACHE": "maybe"}, "--prompt-cache / OZFIG_PROMPT_CACHE must be one of on, exact, off"),
        ([], {"OZFIG_METRICS_PUBLIC": "maybe"}, "--metrics-public / OZFIG_METRICS_PUBLIC must be on or off"),
        ([], {"OZFIG_CACHE_RAM": "-1"}, "--cache-ram / OZFIG_CACHE_RAM must be at least 0"),
        (["--fetch-allow", "10.0.0.0/8", "--fetch-allow", "nonsense"], {}, "'nonsense' is not valid"),
        ([], {"OZFIG_SEARCH": "searxng"}, "--search searxng needs --searxng-url"),
        ([], {"OZFIG_WEB_CONTEXT_TOKENS": "-2"}, "must be at least -1"),
    ],
)
def test_out_of_limits_values_are_refused_with_the_reason(
    argv: list[str], env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SettingsError) as info:
        from_sources(Settings, parse(argv), environ=env)
    assert fragment in info.value.message


def test_switches_take_on_and_off() -> None:
    assert from_sources(Settings, parse([]), environ={}).metrics_public is False
    assert from_sources(Settings, parse([]), environ={"OZFIG_METRICS_PUBLIC": "on"}).metrics_public is True
    assert (
        from_sources(
            Settings, parse(["--metrics-public", "off"]), environ={"OZFIG_METRICS_PUBLIC": "1"}
        ).metrics_public
        is False
    )


def test_prompt_cache_modes() -> None:
    assert from_sources(Settings, parse([]), environ={}).prompt_cache == "on"
    assert from_sources(Settings, parse([]), environ={"OZFIG_PROMPT_CACHE": "exact"}).prompt_cache == "exact"
    assert from_sources(Settings, parse(["--prompt-cache", "off"]), environ={}).prompt_cache == "off"


def test_fetch_allow_repeats_as_a_flag_and_splits_commas_in_the_variable() -> None:
    s = from_sources(
        Settings, parse(["--fetch-allow", "127.0.0.2/32", "--fetch-allow", "fd00::/8"]), environ={}
    )
    assert s.fetch_allow == ("127.0.0.2/32", "fd00::/8")
    s = from_sources(Settings, parse([]), environ={"OZFIG_FETCH_ALLOW": "127.0.0.2/32, 10.1.0.0/16"})
    assert s.fetch_allow == ("127.0.0.2/32", "10.1.0.0/16")
    assert Settings(fetch_allow=["127.0.0.2/32"]).fetch_allow == ("127.0.0.2/32",)  # type: ignore[arg-type]
