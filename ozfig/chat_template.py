"""A model's chat template, rendered exactly as transformers' `apply_chat_template` renders it.

The environment is the one transformers builds (`_compile_jinja_template`): a Jinja2
`ImmutableSandboxedEnvironment` with `trim_blocks`, `lstrip_blocks` and the `loopcontrols`
extension; `raise_exception(message)` and `strftime_now(format)` as globals; `tojson` as
transformers defines it (`json.dumps`, non-ASCII kept, no HTML escaping, `indent`,
`separators` and `sort_keys` accepted); `dict` and `namespace` restricted as transformers
restricts them (no underscore-prefixed namespace attributes). A render gets `messages`, `tools` (None unless given),
`documents=None`, `add_generation_prompt`, `bos_token` and `eos_token`.

`probe_template` checks at load time, with probe messages whose contents carry leading and
trailing whitespace, that every content appears once in the render (up to the whitespace
the template strips), and finds out whether the template takes a `system` message (Gemma's
and Mistral v0.2's refuse one; ozfig then folds its own system prompt into the user turn).
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ozfig.errors import ChatTemplateError, TemplateRefusedError

log = logging.getLogger(__name__)

# the errors a render can raise on the messages it is given (raise_exception, an undefined
# name, a sandbox refusal, a bad operation on a value): each is a refusal of those messages
_RENDER_ERRORS = (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError)


class TemplateRaised(jinja2.TemplateError):
    """What the template's own `raise_exception(message)` raises."""


def _raise_exception(message: str) -> None:
    raise TemplateRaised(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


class _TemplateDict:
    """`dict(...)` in a template: building dicts only, no attribute access to the type."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


class _TemplateNamespace(jinja2.utils.Namespace):
    """`namespace(...)` that refuses underscore-prefixed attributes (no way to CPython internals)."""

    def __init__(*args: Any, **kwargs: Any) -> None:
        self, rest = args[0], args[1:]
        attrs = dict(*rest, **kwargs)
        for name in attrs:
            _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"a namespace cannot hold underscore-prefixed attributes: {name!r}"
            )


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = _TemplateDict()
    env.globals["namespace"] = _TemplateNamespace
    return env


class ChatTemplate:
    """A compiled chat template and the special-token strings it is rendered with."""

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token
        try:
            self.template = _environment().from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ChatTemplateError(
                f"The model's chat template (tokenizer.chat_template) does not compile: {exc.message} "
                f"(line {exc.lineno}). Fix the template in the GGUF (gguf-new-metadata --chat-template-file) "
                "or use a GGUF whose template works with transformers' apply_chat_template."
            ) from exc

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> str:
        """The prompt text, or TemplateRefusedError with the template's own message."""
        try:
            return self.template.render(
                messages=[dict(m) for m in messages],
                tools=None if tools is None else [dict(t) for t in tools],
                documents=None,
                add_generation_prompt=add_generation_prompt,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except TemplateRaised as exc:
            raise TemplateRefusedError(
                f"the model's chat template refused these messages: {exc.message}"
            ) from exc
        except _RENDER_ERRORS as exc:
            raise TemplateRefusedError(
                f"the model's chat template cannot render these messages: {type(exc).__name__}: {exc}"
            ) from exc


# --- load-time check ---------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateProfile:
    """What the load-time probe found out about a template."""

    system_role: (
        bool  # a `system` message is rendered (else ozfig folds its system prompt into the user turn)
    )


def _probe(role: str, n: int) -> dict[str, str]:
    # whitespace on both ends, as people type it; words no template writes by itself
    return {"role": role, "content": f" \n Ozfig probe {n}: the {role} wrote zq{n}x. \n\n"}


def _missing(render: str, messages: Sequence[Mapping[str, str]]) -> list[str]:
    """The probe contents that do not appear exactly once in `render` (up to stripped whitespace)."""
    return [m["role"] for m in messages if render.count(m["content"].strip()) != 1]


def probe_template(template: ChatTemplate) -> TemplateProfile:
    """Check that the template puts each message's content into the prompt, and which roles it takes."""
    convo = [_probe("user", 1), _probe("assistant", 2), _probe("user", 3)]
    try:
        render = template.render(convo)
    except TemplateRefusedError as exc:
        raise ChatTemplateError(
            f"The model's chat template cannot render a plain user/assistant/user conversation ({exc.message}), "
            "so ozfig cannot build prompts with it. Use a GGUF whose chat template takes user and assistant "
            "messages."
        ) from exc
    missing = _missing(render, convo)
    if missing:
        raise ChatTemplateError(
            "The model's chat template does not put every message into the prompt: the content of the "
            f"{', '.join(missing)} message(s) of a test conversation is missing or repeated in its render. "
            "ozfig would send the model prompts without the user's words; use a GGUF whose chat template "
            "renders message contents (as transformers' apply_chat_template does)."
        )
    with_system = [_probe("system", 0), *convo]
    try:
        render = template.render(with_system)
    except TemplateRefusedError as exc:
        log.info(
            "the chat template takes no system message (%s): the system prompt goes into the user turn", exc
        )
        return TemplateProfile(system_role=False)
    missing = _missing(render, with_system)
    if missing == ["system"]:
        log.warning("the chat template drops the system message: the system prompt goes into the user turn")
        return TemplateProfile(system_role=False)
    if missing:
        raise ChatTemplateError(
            "The model's chat template loses messages when a system message comes first: the content of the "
            f"{', '.join(missing)} message(s) of a test conversation is missing or repeated in its render. "
            "Use a GGUF whose chat template renders every message."
        )
    return TemplateProfile(system_role=True)
