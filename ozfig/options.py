"""Command options declared once, as the fields of a frozen dataclass.

A field declared with `option(default, help, ...)` gives its command-line flag (`max_tokens` ->
`--max-tokens`), its help line (with its limits and default), its parsing and its checks; a
command that reads the environment too (only `ozfig serve`) passes an `env_prefix`, and each
field then also has a variable (`OZFIG_MAX_TOKENS`). Precedence: flag, then environment, then
default. A value out of its limits is a `SettingsError` naming the flag (and the variable).

`switch=True` makes a flag that takes no value and sets the opposite of the default
(`--force`, `--no-verify`). `parse` turns the text into the value (default: by the field's type).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from .errors import SettingsError

REQUIRED: Any = dataclasses.MISSING  # the default of an option that must be given

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool, "Path": Path}


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
    }
    if default is REQUIRED:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


class Options:
    """Base of an options dataclass: every field is checked against its limits when it is made."""

    # the environment variables' prefix, for a command whose options come from the environment too
    # (no annotation: a class attribute, not a field)
    options_env_prefix: str | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            check_limits(f, getattr(self, f.name), self.options_env_prefix)


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


def convert_value(f: dataclasses.Field[Any], raw: str, env_prefix: str | None = None) -> Any:
    where = _where(f, env_prefix)
    if f.metadata.get("parse") is not None:
        try:
            return f.metadata["parse"](raw)
        except ValueError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    kind = value_type(f)
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


def add_options(parser: argparse.ArgumentParser, cls: type, env_prefix: str | None = None) -> None:
    """One flag per field of `cls`; defaults are left to `from_sources`."""
    for f in dataclasses.fields(cls):
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
            help=_help(f, env_prefix),
        )


def from_sources(
    cls: type[Any],
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    env_prefix: str | None = None,
) -> Any:
    """An instance of `cls` from parsed flags, then the environment (with `env_prefix`), then defaults."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        raw = getattr(args, f.name, None) if args is not None else None
        if raw is None and env_prefix and environ is not None:
            raw = environ.get(env_name(f, env_prefix))
        if raw is not None:
            values[f.name] = convert_value(f, raw, env_prefix) if isinstance(raw, str) else raw
    return cls(**values)
