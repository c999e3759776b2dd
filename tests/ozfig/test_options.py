"""ozfig/options.py on a small options class: flags, variables, parsing, limits and help, each checked."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from ozfig.errors import SettingsError
from ozfig.options import (
    REQUIRED,
    Options,
    add_options,
    check_limits,
    convert_value,
    env_name,
    flag_name,
    from_sources,
    option,
    shown_default,
    value_type,
)


def _even(text: str) -> int:
    value = int(text)
    if value % 2:
        raise ValueError("odd")
    return value


@dataclass(frozen=True)
class Demo(Options):
    options_env_prefix = "DEMO_"

    size: int = option(4, "How many.", minimum=1, maximum=10)
    ratio: float = option(0.5, "A share.", minimum=0.0, maximum=1.0)
    mode: str = option("fast", "The mode.", choices=("fast", "slow"))
    home: str = option("~/data", "A folder.", path=True, metavar="DIR")
    tags: tuple[str, ...] = option((), "Tags.", item_check=lambda t: _even(t))
    on: bool = option(True, "A switch that takes on or off.", metavar="on|off")
    even: int = option(2, "An even number.", parse=_even)
    renamed: int = option(0, "Another flag name.", flag="--other-name")
    limit: int | None = option(None, "Optional.")


@dataclass(frozen=True)
class Plain(Options):  # no environment prefix: flags only
    source: str = option(REQUIRED, "The input.", flag="source")
    verbose: bool = option(False, "Talk more.", switch=True)
    level: int = option(3, "A level.")


def fields(cls: type) -> dict[str, dataclasses.Field]:  # type: ignore[type-arg]
    return {f.name: f for f in dataclasses.fields(cls)}


def parser_for(cls: type[Options]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo")
    add_options(parser, cls)
    return parser


def load(argv: list[str], env: dict[str, str] | None = None) -> Demo:
    return from_sources(Demo, parser_for(Demo).parse_args(argv), environ=env or {})


def test_names_types_and_shown_defaults() -> None:
    f = fields(Demo)
    assert flag_name(f["size"]) == "--size" and flag_name(f["renamed"]) == "--other-name"
    assert env_name(f["ratio"], "DEMO_") == "DEMO_RATIO"
    assert value_type(f["size"]) is int and value_type(f["limit"]) is int
    assert value_type(f["tags"]) is tuple and value_type(f["on"]) is bool and value_type(f["ratio"]) is float
    assert shown_default(f["on"]) == "on" and shown_default(fields(Plain)["verbose"]) == "off"
    assert shown_default(f["tags"]) == "none" and shown_default(f["mode"]) == "'fast'"
    assert shown_default(f["size"]) == "4"


def test_defaults_then_environment_then_flags() -> None:
    d = load([])
    assert (d.size, d.ratio, d.mode, d.tags, d.on, d.even, d.renamed, d.limit) == (
        4, 0.5, "fast", (), True, 2, 0, None
    )  # fmt: skip
    d = load([], {"DEMO_SIZE": "7", "DEMO_RATIO": "0.25", "DEMO_TAGS": "2, 4,,6", "DEMO_ON": "off",
                  "DEMO_RENAMED": "9", "DEMO_EVEN": "8"})  # fmt: skip
    assert (d.size, d.ratio, d.tags, d.on, d.renamed, d.even) == (7, 0.25, ("2", "4", "6"), False, 9, 8)
    d = load(["--size", "3", "--tags", "10", "--tags", "12", "--other-name", "5", "--on", "yes"],
             {"DEMO_SIZE": "7", "DEMO_TAGS": "2", "DEMO_ON": "0"})  # fmt: skip
    assert (d.size, d.tags, d.renamed, d.on) == (3, ("10", "12"), 5, True)


@pytest.mark.parametrize("word", ["1", "true", "yes", "on", "ON", " On "])
def test_true_words(word: str) -> None:
    assert load([], {"DEMO_ON": word}).on is True


@pytest.mark.parametrize("word", ["0", "false", "no", "off", "OFF"])
def test_false_words(word: str) -> None:
    assert load([], {"DEMO_ON": word}).on is False


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--size", "0"], {}, "--size / DEMO_SIZE must be at least 1, got 0"),
        ([], {"DEMO_SIZE": "11"}, "--size / DEMO_SIZE must be at most 10, got 11"),
        ([], {"DEMO_SIZE": "many"}, "--size / DEMO_SIZE must be int, got 'many'"),
        ([], {"DEMO_RATIO": "1.5"}, "--ratio / DEMO_RATIO must be at most 1.0, got 1.5"),
        ([], {"DEMO_RATIO": "-0.1"}, "--ratio / DEMO_RATIO must be at least 0.0, got -0.1"),
        ([], {"DEMO_MODE": "medium"}, "--mode / DEMO_MODE must be one of fast, slow, got 'medium'"),
        ([], {"DEMO_ON": "maybe"}, "--on / DEMO_ON must be on or off, got 'maybe'"),
        ([], {"DEMO_EVEN": "3"}, "--even / DEMO_EVEN: odd"),
        ([], {"DEMO_TAGS": "2,3"}, "--tags / DEMO_TAGS: '3' is not valid (odd)"),
        ([], {"DEMO_RENAMED": "x"}, "--other-name / DEMO_RENAMED must be int, got 'x'"),
    ],
)
def test_refusals_name_the_flag_the_variable_and_the_reason(argv, env, message) -> None:
    with pytest.raises(SettingsError) as info:
        load(argv, env)
    assert info.value.message == message


def test_limits_are_inclusive() -> None:
    assert load(["--size", "1"]).size == 1 and load(["--size", "10"]).size == 10
    assert load([], {"DEMO_RATIO": "0"}).ratio == 0.0 and load([], {"DEMO_RATIO": "1"}).ratio == 1.0


def test_made_directly_the_checks_and_conversions_still_apply(monkeypatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    d = Demo(tags=["2", "4"])  # type: ignore[arg-type]
    assert d.tags == ("2", "4") and isinstance(d.tags, tuple)
    assert d.home == "/home/someone/data"  # `~` expanded
    assert Demo(home="/abs").home == "/abs"
    with pytest.raises(SettingsError, match="must be at most 10"):
        Demo(size=11)
    with pytest.raises(SettingsError, match="not valid"):
        Demo(tags=("5",))
    assert Demo(limit=None).limit is None  # None is not checked against limits


def test_check_limits_without_metadata_checks_nothing() -> None:
    bare = dataclasses.field(default=1)
    bare.name = "bare"
    check_limits(bare, 10**9)  # no metadata: nothing to check, no error


def test_convert_value_of_a_repeated_flag_and_a_comma_list() -> None:
    f = fields(Demo)["tags"]
    assert convert_value(f, ["2", " 4 ", ""]) == ("2", "4")
    assert convert_value(f, " 2 ,4,") == ("2", "4")
    assert convert_value(fields(Demo)["ratio"], "0.75") == 0.75


def test_help_shows_limits_the_variable_and_the_default() -> None:
    text = " ".join(parser_for(Demo).format_help().split())
    assert "--size SIZE How many. [min 1, max 10] (env DEMO_SIZE; default 4)" in text
    assert "--ratio RATIO A share. [min 0.0, max 1.0] (env DEMO_RATIO; default 0.5)" in text
    assert "--home DIR A folder. (env DEMO_HOME; default '~/data')" in text
    assert "--on on|off A switch that takes on or off. (env DEMO_ON; default on)" in text
    assert "--tags TAGS Tags. (env DEMO_TAGS; default none)" in text
    assert "--limit LIMIT Optional. (env DEMO_LIMIT)" in text  # no default shown for None
    assert "--other-name RENAMED Another flag name." in text and "--mode MODE The mode." in text


def test_without_an_environment_prefix_only_flags_count(monkeypatch) -> None:
    monkeypatch.setenv("LEVEL", "9")
    parser = parser_for(Plain)
    p = from_sources(Plain, parser.parse_args(["in.txt"]))
    assert (p.source, p.verbose, p.level) == ("in.txt", False, 3)
    p = from_sources(
        Plain, parser.parse_args(["in.txt", "--verbose", "--level", "5"]), environ={"LEVEL": "1"}
    )
    assert (p.verbose, p.level) == (True, 5)
    text = " ".join(parser.format_help().split())
    assert "--verbose Talk more." in text and "env" not in text
    assert "--level LEVEL A level. (default 3)" in text
    assert "SOURCE The input." in text
    with pytest.raises(SystemExit):
        parser.parse_args([])  # the positional is required


def test_a_required_option_of_an_env_class_is_not_required_on_the_command_line() -> None:
    @dataclass(frozen=True)
    class Needs(Options):
        options_env_prefix = "N_"
        name: str = option(REQUIRED, "A name.")

    parser = parser_for(Needs)
    assert from_sources(Needs, parser.parse_args([]), environ={"N_NAME": "x"}).name == "x"
    with pytest.raises(TypeError):  # given nowhere: the dataclass says so
        from_sources(Needs, parser.parse_args([]), environ={})

    @dataclass(frozen=True)
    class Flags(Options):
        name: str = option(REQUIRED, "A name.")

    with pytest.raises(SystemExit):
        parser_for(Flags).parse_args([])
    assert from_sources(Flags, parser_for(Flags).parse_args(["--name", "y"])).name == "y"


def test_values_already_parsed_are_taken_as_they_are() -> None:
    args = argparse.Namespace(size=6, on=False, tags=None)
    d = from_sources(Demo, args, environ={"DEMO_SIZE": "2", "DEMO_ON": "on"})
    assert (d.size, d.on) == (6, False)
