"""Command options declared once, as the fields of a frozen dataclass.

A field declared with `option(default, help, ...)` gives its command-line flag (`max_tokens` ->
`--max-tokens`), its help line (with its limits and default), its parsing and its checks; a
class whose values come from the environment too (only `ozfig serve`'s `Settings`) sets
`options_env_prefix`, and each field then also has a variable (`OZFIG_MAX_TOKENS`).
Precedence: flag, then environment, then default. A value out of its limits is a
`SettingsError` naming the flag (and the variable).

`switch=True` makes a flag that takes no value and sets the opposite of the default
(`--force`, `--no-verify`). `parse` turns the text into the value (default: by the field's type).
A `tuple[str, ...]` field is a repeatable flag (its variable: comma-separated values), each
item checked by `item_check` (which raises ValueError); `path=True` expands a leading `~`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import SettingsError

REQUIRED: Any = dataclasses.MISSING  # the default of an option that must be given

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "Path": Path,
    "tuple[str, ...]": tuple,
}


def option(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Sequence[str] | None = None,
    metavar: str | None = None,
    flag: str | None = None,
    switch: bool = False,
    parse: Callable[[str], Any] | None = None,
    path: bool = False,
    item_check: Callable[[str], object] | None = None,
) -> Any:
    """Declare an option: its default (or REQUIRED), its description, its limits and its flag."""
    meta = {
        "help": help,
        "min": minimum,
        "max": maximum,
        "choices": choices,
        "metavar": metavar,
        "flag": flag,
        "switch": switch,
        "parse": parse,
        "path": path,
        "item_check": item_check,
    }
    if default is REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


class Options:
    """Base of an options dataclass: every field is checked against its limits when it is made
    (a `path` field has its `~` expanded, a tuple field given as a list becomes a tuple)."""

    # the environment variables' prefix, for a class whose values come from the environment too
    options_env_prefix: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = given = getattr(self, f.name)
            if f.metadata.get("path") and isinstance(value, str):
                value = os.path.expanduser(value)  # `--model ~/m.gguf`: the shell did not expand it
            if value_type(f) is tuple and not isinstance(value, tuple):
                value = tuple(value)
            if value is not given:
                object.__setattr__(self, f.name, value)  # the dataclass may be frozen
            check_limits(f, value, self.options_env_prefix)


OptionsT = TypeVar("OptionsT", bound=Options)


def flag_name(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def env_name(f: dataclasses.Field[Any], prefix: str) -> str:
    return prefix + f.name.upper()


def value_type(f: dataclasses.Field[Any]) -> type:
    """The type a field's text is parsed into: its annotation, less `| None`."""
    if isinstance(f.type, type):
        return f.type
    names = [n.strip() for n in str(f.type).split("|") if n.strip() != "None"]
    return _TYPES[names[0]]


def _where(f: dataclasses.Field[Any], env_prefix: str | None = None) -> str:
    return flag_name(f) + (f" / {env_name(f, env_prefix)}" if env_prefix else "")


def check_limits(f: dataclasses.Field[Any], value: Any, env_prefix: str | None = None) -> None:
    meta = f.metadata
    if value is None or not meta:
        return
    where = _where(f, env_prefix)
    if meta["min"] is not None and value < meta["min"]:
        raise SettingsError(f"{where} must be at least {meta['min']}, got {value}")
    if meta["max"] is not None and value > meta["max"]:
        raise SettingsError(f"{where} must be at most {meta['max']}, got {value}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise SettingsError(f"{where} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if meta.get("item_check") is not None:
        for item in value:
            try:
                meta["item_check"](item)
            except ValueError as exc:
                raise SettingsError(f"{where}: {item!r} is not valid ({exc})") from None


def convert_value(f: dataclasses.Field[Any], raw: str | list[str], env_prefix: str | None = None) -> Any:
    """The value of `raw`: a flag's or a variable's text, or a repeated flag's list of texts."""
    where = _where(f, env_prefix)
    kind = value_type(f)
    if kind is tuple:  # a repeated flag, or a comma-separated variable
        items = raw if isinstance(raw, list) else raw.split(",")
        return tuple(item.strip() for item in items if item.strip())
    assert isinstance(raw, str)
    if f.metadata.get("parse") is not None:
        try:
            return f.metadata["parse"](raw)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    if kind is bool:
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise SettingsError(f"{where} must be on or off, got {raw!r}")
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{where} must be {kind.__name__}, got {raw!r}") from None


def shown_default(f: dataclasses.Field[Any]) -> str:
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    if isinstance(f.default, tuple):
        return ", ".join(f.default) or "none"
    return repr(f.default)


def _help(f: dataclasses.Field[Any], env_prefix: str | None) -> str:
    meta = f.metadata
    limits = [
        f"{word} {meta[key]}" for word, key in (("min", "min"), ("max", "max")) if meta[key] is not None
    ]
    text = meta["help"] + (f" [{', '.join(limits)}]" if limits else "")
    notes = [f"env {env_name(f, env_prefix)}"] if env_prefix else []
    if not meta["switch"] and f.default is not dataclasses.MISSING and f.default is not None:
        notes.append(f"default {shown_default(f)}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def add_options(parser: argparse.ArgumentParser, cls: type[Options]) -> None:
    """One flag per field of `cls`; defaults are left to `from_sources`."""
    env_prefix = cls.options_env_prefix
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        meta = f.metadata
        if meta["switch"]:
            parser.add_argument(
                flag_name(f),
                dest=f.name,
                action="store_const",
                const=not f.default,
                help=_help(f, env_prefix),
            )
            continue
        if not flag_name(f).startswith("-"):  # a positional argument
            parser.add_argument(f.name, metavar=meta["metavar"] or f.name.upper(), help=_help(f, env_prefix))
            continue
        parser.add_argument(
            flag_name(f),
            dest=f.name,
            default=None,
            required=f.default is dataclasses.MISSING and not env_prefix,
            metavar=meta["metavar"] or f.name.upper(),
            choices=meta["choices"],
            action="append" if value_type(f) is tuple else "store",
            help=_help(f, env_prefix),
        )


def from_sources(
    cls: type[OptionsT], args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> OptionsT:
    """An instance of `cls` from parsed flags, then the environment (`os.environ` unless given; only
    for a class with an `options_env_prefix`), then the defaults."""
    env_prefix = cls.options_env_prefix
    if env_prefix and environ is None:
        environ = os.environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        raw = getattr(args, f.name, None) if args is not None else None
        if raw is None and env_prefix and environ is not None:
            raw = environ.get(env_name(f, env_prefix))
        if raw is not None:
            values[f.name] = convert_value(f, raw, env_prefix) if isinstance(raw, str | list) else raw
    return cls(**values)
