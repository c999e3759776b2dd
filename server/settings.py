"""The server's one settings object.

Every field is declared once, with `ozfig.options.option`: a description and limits. The
same declaration gives the `ozfig serve` command-line flag (`--max-tokens`), the environment
variable (`OZFIG_MAX_TOKENS`), the help and the validation (`add_options`, `from_sources`).
Precedence: flag, then environment, then default.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from ozfig import limits
from ozfig.errors import SettingsError
from ozfig.options import option
from server.speculation_settings import SpeculationSettings  # its fields come first

ENV_PREFIX = "OZFIG_"

DEFAULT_MODEL = "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf"
DEFAULT_SEARCH_URL = "https://api.duckduckgo.com/"
DEFAULT_SEARCH_HTML_URL = "https://html.duckduckgo.com/html/"


def tcp_port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError("a TCP port is 1 to 65535")
    return port


@dataclass(frozen=True)
class Settings(SpeculationSettings):
    options_env_prefix = ENV_PREFIX

    model: str = option(
        DEFAULT_MODEL,
        "Model to serve: a local GGUF path, or a Hugging Face Hub file as OWNER/REPO/FILE.gguf "
        "(downloaded once into the Hugging Face cache).",
        metavar="PATH_OR_HUB_FILE",
        path=True,
    )
    lora: str = option(
        "", "Optional LoRA adapter in llama.cpp's GGUF form, applied at load time.", metavar="FILE", path=True
    )
    host: str = option(
        "127.0.0.1",
        "Address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0 every interface (then set --api-key).",
    )
    port: int = option(8080, "TCP port to listen on (0 picks a free one).", minimum=0, maximum=65535)
    ctx: int = option(
        4096, "Context size of each request, in tokens (prompt + answer).", minimum=256, maximum=1_048_576
    )
    max_tokens: int = option(
        512, "Default and upper limit of tokens generated per answer.", minimum=1, maximum=1_048_576
    )
    temperature: float = option(
        limits.TEMPERATURE_DEFAULT,
        "Default sampling temperature (0 = greedy); a request's own may be as high.",
        minimum=limits.TEMPERATURE_MIN,
        maximum=limits.TEMPERATURE_MAX,
    )
    gpu_layers: int = option(
        -1,
        "Layers to offload to the GPU: -1 = all when the build supports a GPU, 0 = CPU only.",
        minimum=-1,
        maximum=100_000,
    )
    threads: int = option(
        0,
        "CPU threads for decoding (0 = the CPUs this process may run on: its affinity mask, capped by "
        "its cgroup's CPU quota, as in a container limited to N CPUs; logged at start, shown by /health).",
        minimum=0,
        maximum=1024,
    )
    slots: int = option(
        0,
        "Sequences decoded together (0 = 8 with a GPU, 4 on CPU). Each gets --ctx tokens of KV cache.",
        minimum=0,
        maximum=256,
    )
    batch: int = option(
        512,
        "Most tokens fed to the model in one call: prompts are processed in chunks of this size, between which every running answer gets its next token.",
        minimum=32,
        maximum=65536,
    )
    prompt_cache: str = option(
        "on",
        "Reuse the KV cache of earlier requests for the same leading tokens (system prompts, earlier "
        "chat turns, answers included): on (any common prefix, like llama-server: an answer may differ "
        "in the last bits from a fresh run), exact (only whole --batch chunks of earlier prompts: answers "
        "never depend on what ran before) or off.",
        choices=("on", "exact", "off"),
    )
    cache_ram: int = option(
        2048,
        "MiB of host memory for the prompt cache: conversations pushed out of the KV cache by others are "
        "kept there and restored when they come back (0 = off).",
        minimum=0,
        maximum=1_048_576,
        metavar="MIB",
    )
    prompt_cache_dir: str = option(
        "",
        "Folder where the prompt cache is written on drain and read back at start, so a restart keeps "
        "warm conversations (empty = not kept).",
        metavar="DIR",
        path=True,
    )
    queue: int = option(
        64,
        "Requests allowed to wait for a free slot; beyond it the server answers 503.",
        minimum=0,
        maximum=100_000,
    )
    request_timeout: float = option(
        600.0, "Deadline for one answer, in seconds, waiting included.", minimum=1.0, maximum=86_400.0
    )
    # --- web search: backend, page reading, web context --------------------------------------
    search: str = option(
        "duckduckgo",
        "Search backend: duckduckgo (Instant Answer API + HTML results page), searxng (a self-hosted "
        "instance's JSON API, see --searxng-url) or none. Queries leave the machine unless none.",
        choices=("duckduckgo", "searxng", "none"),
    )
    search_url: str = option(
        DEFAULT_SEARCH_URL, "Base URL of the DuckDuckGo Instant Answer API (tests point it at a local fake)."
    )
    search_html_url: str = option(
        DEFAULT_SEARCH_HTML_URL, "URL of DuckDuckGo's HTML results page (POST, form field q).", metavar="URL"
    )
    searxng_url: str = option(
        "",
        "Base URL of a SearXNG instance for --search searxng (/search?format=json is appended).",
        metavar="URL",
    )
    read_pages: int = option(
        3, "Top results whose pages are read for their main text (0 = snippets only).", minimum=0, maximum=20
    )
    web_context_tokens: int = option(
        -1,
        "Token budget of the web context in a prompt, filled with the page passages that best match "
        "the question (0 = no web search; -1 = 1024 with a GPU, 512 on CPU, where prefill is the wait).",
        minimum=-1,
        maximum=131_072,
    )
    search_timeout: float = option(
        4.0,
        "One deadline, in seconds, for the search and the page reading together; what is not done "
        "by then is left out and the answer goes on.",
        minimum=0.1,
        maximum=60.0,
    )
    search_rewrite: bool = option(
        True,
        "Search a follow-up question with the subject of the earlier ones (\"how tall is it?\" after "
        "\"when was the Eiffel Tower built?\" asks for the Eiffel Tower): on or off (the last message as typed).",
        metavar="on|off",
    )
    search_cooldown: float = option(
        60.0,
        "Seconds a search endpoint rests after it answers 202, 403, 429 or a challenge page.",
        minimum=0.0,
        maximum=86_400.0,
    )
    search_max_bytes: int = option(
        1_000_000,
        "Largest search answer read, in bytes (a larger one is ignored); pages are cut at this size.",
        minimum=1024,
        maximum=100_000_000,
    )
    search_cache_size: int = option(
        256, "Queries whose search results are cached (0 disables the cache).", minimum=0, maximum=1_000_000
    )
    search_cache_ttl: float = option(
        300.0, "Seconds cached search results stay fresh.", minimum=0.0, maximum=86_400.0
    )
    page_cache_size: int = option(
        256,
        "Pages whose extracted text is cached, for 6 hours (64 MB of memory at most; 0 disables the cache).",
        minimum=0,
        maximum=1_000_000,
    )
    fetch_allow: tuple[str, ...] = option(
        (),
        "A network (CIDR) whose addresses pages may be read from although they are not public; "
        "repeat the flag for more (variable: comma-separated). Default: none, only public addresses.",
        metavar="CIDR",
        item_check=lambda cidr: ipaddress.ip_network(cidr, strict=False),
    )
    fetch_ports: tuple[str, ...] = option(
        (),
        "A TCP port pages may be read from besides 80 and 443 (any port of a --fetch-allow network "
        "is); repeat the flag for more (variable: comma-separated).",
        metavar="PORT",
        item_check=tcp_port,
    )
    max_query_chars: int = option(
        4000, "Longest accepted query, in characters.", minimum=1, maximum=1_000_000
    )
    max_input_chars: int = option(
        100_000,
        "Most characters in the messages of one chat request, all contents together; more get 413.",
        minimum=1,
        maximum=100_000_000,
    )
    max_body_bytes: int = option(
        4_000_000,
        "Largest accepted request body, in bytes (POST /v1/chat/completions); a larger one gets 413.",
        minimum=1024,
        maximum=1_000_000_000,
    )
    heartbeat: float = option(
        10.0,
        "Seconds between comment heartbeats (': ping') on a streamed answer while nothing else is sent.",
        minimum=0.05,
        maximum=300.0,
    )
    send_timeout: float = option(
        30.0,
        "Seconds a streaming client may leave the server's writes unread before it is dropped "
        "(its answer is cancelled).",
        minimum=0.1,
        maximum=3600.0,
    )
    max_connections: int = option(
        1000,
        "Most open connections and requests together; beyond it the server answers 503 at once.",
        minimum=1,
        maximum=1_000_000,
    )
    log_level: str = option("info", "Logging level.", choices=("debug", "info", "warning", "error"))
    # --- access, metrics, drain and logs (docs/deploy.md) ----------------------------------
    api_key: tuple[str, ...] = option(
        (),
        "API key clients must send (Authorization: Bearer KEY or X-Api-Key: KEY); repeat the flag for "
        "several keys (the variable takes them comma-separated). No key: no check.",
        metavar="KEY",
    )
    api_key_file: str = option(
        "", "File of API keys, one per line ('#' starts a comment), added to --api-key.", metavar="FILE"
    )
    admin_key: tuple[str, ...] = option(
        (),
        "Key the /admin/ routes (POST /admin/drain) need, sent like an API key; API keys get 403 there. "
        "Repeatable (the variable takes them comma-separated). No admin key: /admin/ is off (404); "
        "SIGTERM still drains. It also opens /metrics and /health's details.",
        metavar="KEY",
    )
    admin_key_file: str = option(
        "", "File of admin keys, one per line ('#' starts a comment), added to --admin-key.", metavar="FILE"
    )
    cors_origins: str = option(
        "",
        "Origins allowed to call the API from a browser page, comma-separated ('*' for any); empty: CORS off.",
        metavar="ORIGINS",
    )
    allowed_hosts: str = option(
        "",
        "Host header names accepted, comma-separated ('*.example.com' for subdomains, '*' for any), "
        "against DNS rebinding. Empty: the loopback names when bound to loopback, no check otherwise.",
        metavar="HOSTS",
    )
    metrics_public: bool = option(
        False,
        "Serve GET /metrics without a key (else an API key or the admin key): on or off.",
        metavar="on|off",
    )
    drain_timeout: float = option(
        30.0,
        "On SIGTERM or POST /admin/drain: seconds running answers get to finish before they are ended "
        "with a 503 (new requests get 503 once --drain-grace is over).",
        minimum=0.0,
        maximum=86_400.0,
    )
    drain_grace: float = option(
        0.0,
        "On SIGTERM or POST /admin/drain: seconds new requests are still served while /health already "
        "answers 503, so a load balancer takes the replica out of rotation before it refuses anything "
        "(set it above the balancer's check interval x fall; deploy/ sets 5).",
        minimum=0.0,
        maximum=3_600.0,
    )
    log_format: str = option(
        "text", "Log lines as text or as one JSON object each.", choices=("text", "json")
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.search == "searxng" and not self.searxng_url:
            raise SettingsError(
                "--search searxng needs --searxng-url / OZFIG_SEARXNG_URL (the instance's base URL)"
            )

    @property
    def model_name(self) -> str:
        return os.path.basename(self.model.rstrip("/")) or self.model
