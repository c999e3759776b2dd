"""The server's one settings object.

Every field is declared once, with a description and limits. The same declaration gives
the `ozfig serve` command-line flag (`--max-tokens`), the environment variable
(`OZFIG_MAX_TOKENS`) and the validation. Precedence: flag, then environment, then default.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ozfig.errors import SettingsError

ENV_PREFIX = "OZFIG_"

DEFAULT_MODEL = "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"
DEFAULT_SEARCH_URL = "https://api.duckduckgo.com/"
DEFAULT_SEARCH_HTML_URL = "https://html.duckduckgo.com/html/"


def setting(
    default: Any,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: Sequence[str] | None = None,
    metavar: str | None = None,
    path: bool = False,
    item_check: Callable[[str], object] | None = None,
) -> Any:
    """Declare a settings field: its default, its description and its limits; `path`: `~` is expanded.

    A `tuple[str, ...]` field is a repeatable flag (its variable: comma-separated values);
    `item_check` refuses a bad value by raising ValueError.
    """
    return field(
        default=default,
        metadata={
            "help": help,
            "min": minimum,
            "max": maximum,
            "choices": choices,
            "metavar": metavar,
            "path": path,
            "item_check": item_check,
        },
    )


@dataclass(frozen=True)
class Settings:
    model: str = setting(
        DEFAULT_MODEL,
        "Model to serve: a local GGUF path, or a Hugging Face Hub file as OWNER/REPO/FILE.gguf "
        "(downloaded once into the Hugging Face cache).",
        metavar="PATH_OR_HUB_FILE",
        path=True,
    )
    lora: str = setting(
        "", "Optional LoRA adapter in llama.cpp's GGUF form, applied at load time.", metavar="FILE", path=True
    )
    host: str = setting(
        "127.0.0.1",
        "Address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0 every interface (then set --api-key).",
    )
    port: int = setting(8080, "TCP port to listen on (0 picks a free one).", minimum=0, maximum=65535)
    ctx: int = setting(
        4096, "Context size of each request, in tokens (prompt + answer).", minimum=256, maximum=1_048_576
    )
    max_tokens: int = setting(
        512, "Default and upper limit of tokens generated per answer.", minimum=1, maximum=1_048_576
    )
    temperature: float = setting(0.7, "Default sampling temperature (0 = greedy).", minimum=0.0, maximum=5.0)
    gpu_layers: int = setting(
        -1,
        "Layers to offload to the GPU: -1 = all when the build supports a GPU, 0 = CPU only.",
        minimum=-1,
        maximum=100_000,
    )
    threads: int = setting(0, "CPU threads for decoding (0 = one per core).", minimum=0, maximum=1024)
    slots: int = setting(
        0,
        "Sequences decoded together (0 = 8 with a GPU, 4 on CPU). Each gets --ctx tokens of KV cache.",
        minimum=0,
        maximum=256,
    )
    batch: int = setting(
        512,
        "Most tokens fed to the model in one call: prompts are processed in chunks of this size, between which every running answer gets its next token.",
        minimum=32,
        maximum=65536,
    )
    prompt_cache: bool = setting(
        True,
        "Reuse the KV cache a finished request left for the same leading prompt chunks (--batch tokens "
        "each; long system prompts, earlier chat turns): on or off. Answers are the same either way.",
        metavar="on|off",
    )
    queue: int = setting(
        64,
        "Requests allowed to wait for a free slot; beyond it the server answers 503.",
        minimum=0,
        maximum=100_000,
    )
    request_timeout: float = setting(
        600.0, "Deadline for one answer, in seconds, waiting included.", minimum=1.0, maximum=86_400.0
    )
    # --- web search: backend, page reading, web context --------------------------------------
    search: str = setting(
        "duckduckgo",
        "Search backend: duckduckgo (Instant Answer API + HTML results page), searxng (a self-hosted "
        "instance's JSON API, see --searxng-url) or none. Queries leave the machine unless none.",
        choices=("duckduckgo", "searxng", "none"),
    )
    search_url: str = setting(
        DEFAULT_SEARCH_URL, "Base URL of the DuckDuckGo Instant Answer API (tests point it at a local fake)."
    )
    search_html_url: str = setting(
        DEFAULT_SEARCH_HTML_URL, "URL of DuckDuckGo's HTML results page (POST, form field q).", metavar="URL"
    )
    searxng_url: str = setting(
        "",
        "Base URL of a SearXNG instance for --search searxng (/search?format=json is appended).",
        metavar="URL",
    )
    read_pages: int = setting(
        3, "Top results whose pages are read for their main text (0 = snippets only).", minimum=0, maximum=20
    )
    web_context_tokens: int = setting(
        -1,
        "Token budget of the web context in a prompt, filled with the page passages that best match "
        "the question (0 = no web search; -1 = 1024 with a GPU, 512 on CPU, where prefill is the wait).",
        minimum=-1,
        maximum=131_072,
    )
    search_timeout: float = setting(
        4.0,
        "One deadline, in seconds, for the search and the page reading together; what is not done "
        "by then is left out and the answer goes on.",
        minimum=0.1,
        maximum=60.0,
    )
    search_cooldown: float = setting(
        60.0,
        "Seconds a search endpoint rests after it answers 202, 403, 429 or a challenge page.",
        minimum=0.0,
        maximum=86_400.0,
    )
    search_max_bytes: int = setting(
        1_000_000,
        "Largest search answer read, in bytes (a larger one is ignored); pages are cut at this size.",
        minimum=1024,
        maximum=100_000_000,
    )
    search_cache_size: int = setting(
        256, "Queries whose search results are cached (0 disables the cache).", minimum=0, maximum=1_000_000
    )
    search_cache_ttl: float = setting(
        300.0, "Seconds cached search results stay fresh.", minimum=0.0, maximum=86_400.0
    )
    page_cache_size: int = setting(
        256,
        "Pages whose extracted text is cached, for 6 hours (64 MB at most; 0 disables the cache).",
        minimum=0,
        maximum=1_000_000,
    )
    fetch_allow: tuple[str, ...] = setting(
        (),
        "A network (CIDR) whose addresses pages may be read from although they are not public; "
        "repeat the flag for more (variable: comma-separated). Default: none, only public addresses.",
        metavar="CIDR",
        item_check=lambda cidr: ipaddress.ip_network(cidr, strict=False),
    )
    max_query_chars: int = setting(
        4000, "Longest accepted query, in characters.", minimum=1, maximum=1_000_000
    )
    max_input_chars: int = setting(
        100_000,
        "Most characters in the messages of one chat request, all contents together; more get 413.",
        minimum=1,
        maximum=100_000_000,
    )
    max_body_bytes: int = setting(
        4_000_000,
        "Largest accepted request body, in bytes (POST /v1/chat/completions); a larger one gets 413.",
        minimum=1024,
        maximum=1_000_000_000,
    )
    heartbeat: float = setting(
        10.0,
        "Seconds between comment heartbeats (': ping') on a streamed answer while nothing else is sent.",
        minimum=0.05,
        maximum=300.0,
    )
    send_timeout: float = setting(
        30.0,
        "Seconds a streaming client may leave the server's writes unread before it is dropped "
        "(its answer is cancelled).",
        minimum=0.1,
        maximum=3600.0,
    )
    max_connections: int = setting(
        1000,
        "Most open connections and requests together; beyond it the server answers 503 at once.",
        minimum=1,
        maximum=1_000_000,
    )
    log_level: str = setting("info", "Logging level.", choices=("debug", "info", "warning", "error"))
    # --- access, metrics, drain and logs (docs/deploy.md) ----------------------------------
    api_key: tuple[str, ...] = setting(
        (),
        "API key clients must send (Authorization: Bearer KEY or X-Api-Key: KEY); repeat the flag for "
        "several keys (the variable takes them comma-separated). No key: no check.",
        metavar="KEY",
    )
    api_key_file: str = setting(
        "", "File of API keys, one per line ('#' starts a comment), added to --api-key.", metavar="FILE"
    )
    cors_origins: str = setting(
        "",
        "Origins allowed to call the API from a browser page, comma-separated ('*' for any); empty: CORS off.",
        metavar="ORIGINS",
    )
    allowed_hosts: str = setting(
        "",
        "Host header names accepted, comma-separated ('*.example.com' for subdomains, '*' for any), "
        "against DNS rebinding. Empty: the loopback names when bound to loopback, no check otherwise.",
        metavar="HOSTS",
    )
    metrics_public: bool = setting(
        False, "Serve GET /metrics without the API key: on or off.", metavar="on|off"
    )
    drain_timeout: float = setting(
        30.0,
        "On SIGTERM or POST /admin/drain: seconds running answers get to finish before they are ended "
        "with a 503 (new requests get 503 at once).",
        minimum=0.0,
        maximum=86_400.0,
    )
    log_format: str = setting(
        "text", "Log lines as text or as one JSON object each.", choices=("text", "json")
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.metadata["path"]:  # `--model ~/m.gguf`, `OZFIG_LORA=~/a.gguf`: the shell did not expand it
                object.__setattr__(self, f.name, os.path.expanduser(getattr(self, f.name)))
            if field_type(f) is tuple and not isinstance(getattr(self, f.name), tuple):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
            check_limits(f, getattr(self, f.name))
        if self.search == "searxng" and not self.searxng_url:
            raise SettingsError(
                "--search searxng needs --searxng-url / OZFIG_SEARXNG_URL (the instance's base URL)"
            )

    @property
    def model_name(self) -> str:
        return os.path.basename(self.model.rstrip("/")) or self.model


def flag_name(f: dataclasses.Field[Any]) -> str:
    return "--" + f.name.replace("_", "-")


def env_name(f: dataclasses.Field[Any]) -> str:
    return ENV_PREFIX + f.name.upper()


def field_type(f: dataclasses.Field[Any]) -> type:
    return {"int": int, "float": float, "str": str, "bool": bool, "tuple[str, ...]": tuple}[str(f.type)]


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def check_limits(f: dataclasses.Field[Any], value: Any) -> None:
    meta = f.metadata
    where = f"{flag_name(f)} / {env_name(f)}"
    if meta["min"] is not None and value < meta["min"]:
        raise SettingsError(f"{where} must be at least {meta['min']}, got {value}")
    if meta["max"] is not None and value > meta["max"]:
        raise SettingsError(f"{where} must be at most {meta['max']}, got {value}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise SettingsError(f"{where} must be one of {', '.join(meta['choices'])}, got {value!r}")
    if meta["item_check"] is not None:
        for item in value:
            try:
                meta["item_check"](item)
            except ValueError as exc:
                raise SettingsError(f"{where}: {item!r} is not valid ({exc})") from None


def convert_value(f: dataclasses.Field[Any], raw: str | list[str]) -> Any:
    kind = field_type(f)
    if kind is tuple:
        items = raw if isinstance(raw, list) else raw.split(",")
        return tuple(item.strip() for item in items if item.strip())
    assert isinstance(raw, str)
    if kind is bool:
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise SettingsError(f"{flag_name(f)} / {env_name(f)} must be on or off, got {raw!r}")
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{flag_name(f)} / {env_name(f)} must be {kind.__name__}, got {raw!r}") from None


def shown_default(f: dataclasses.Field[Any]) -> str:
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    if isinstance(f.default, tuple):
        return ", ".join(f.default) or "none"
    return repr(f.default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per settings field; defaults are left to `from_sources`."""
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        limits = []
        if meta["min"] is not None:
            limits.append(f"min {meta['min']}")
        if meta["max"] is not None:
            limits.append(f"max {meta['max']}")
        detail = f" [{', '.join(limits)}]" if limits else ""
        parser.add_argument(
            flag_name(f),
            dest=f.name,
            default=None,
            metavar=meta["metavar"] or f.name.upper(),
            choices=meta["choices"],
            action="append" if field_type(f) is tuple else "store",
            help=f"{meta['help']}{detail} (env {env_name(f)}; default {shown_default(f)})",
        )


def from_sources(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from parsed flags, then the environment, then the defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = getattr(args, f.name, None) if args is not None else None
        if raw is None:
            raw = environ.get(env_name(f))
        if raw is not None:
            values[f.name] = convert_value(f, raw) if isinstance(raw, str | list) else raw
    return Settings(**values)
