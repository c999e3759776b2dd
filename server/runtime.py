"""What the running server holds: settings, web search, and the model once it has loaded.

The model loads in the background after the port is bound; until then `engine` is None
and /health answers 503. Any failure while loading or warming up (ozfig's own startup
errors, and anything else: a Hub name the Hub refuses to parse, a chat template that does
not compile, a decode error) is kept for /health as a one-line startup error and handed to
`on_fatal` (the CLI ends the process with its message and exit code 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ozfig.chat_format import ChatFormatter
from ozfig.cpus import CpuCount, available_cpus
from ozfig.engine.draft import load_draft_model
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.errors import (
    EngineStoppedError,
    ModelLoadError,
    ModelLoadingError,
    ModelNotFoundError,
    OzfigError,
    StartupError,
)
from ozfig.llama.backend import gpu_offload_supported
from ozfig.llama.model import LlamaModel

from .model_source import resolve_model_path
from .search import Passage, WebSearch
from .search.web import make_backend
from .settings import Settings
from .source_memory import SourceMemory

log = logging.getLogger(__name__)


def default_slots(settings: Settings) -> int:
    if settings.slots:
        return settings.slots
    return 8 if gpu_offload_supported() and settings.gpu_layers != 0 else 4


def decode_threads(settings: Settings, cpus: Callable[[], CpuCount] = available_cpus) -> CpuCount:
    """The engine's thread count: --threads, or (0) the CPUs this process may run on."""
    if settings.threads:
        return CpuCount(settings.threads, "setting", f"--threads {settings.threads}")
    return cpus()


def web_search(settings: Settings, **test_hooks: Any) -> WebSearch:
    """The WebSearch the settings describe (`test_hooks`: resolver, observe_connect)."""
    backend = make_backend(
        settings.search,
        search_url=settings.search_url,
        html_url=settings.search_html_url,
        searxng_url=settings.searxng_url,
        max_bytes=settings.search_max_bytes,
        cooldown=settings.search_cooldown,
    )
    return WebSearch(
        backend,
        timeout=settings.search_timeout,
        max_bytes=settings.search_max_bytes,
        read_pages=settings.read_pages,
        cache_size=settings.search_cache_size,
        cache_ttl=settings.search_cache_ttl,
        page_cache_size=settings.page_cache_size,
        fetch_allow=settings.fetch_allow,
        fetch_ports=settings.fetch_ports,
        **test_hooks,
    )


@dataclass
class Runtime:
    settings: Settings
    search: WebSearch
    on_fatal: Callable[[OzfigError], None] = lambda exc: None
    model: LlamaModel | None = None
    draft: LlamaModel | None = None  # --draft-model
    engine: Engine | None = None
    formatter: ChatFormatter | None = None
    error: OzfigError | None = None
    on_engine: Callable[[Engine], None] = lambda engine: None  # told of the engine once it serves
    source_memory: SourceMemory = field(default_factory=SourceMemory)  # web sources of earlier turns
    cpus: Callable[[], CpuCount] = available_cpus  # tests give a fake cgroup and affinity mask
    threads: CpuCount | None = None  # the engine's threads, once decided (at the start of loading)
    _loader: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, search=web_search(settings))

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.search.start()
        self._loader = asyncio.create_task(self._load(), name="ozfig-model-loader")

    async def close(self) -> None:
        if self._loader is not None and not self._loader.done():
            self._loader.cancel()
            await asyncio.wait([self._loader])  # what it made is closed before the model goes
        if self.engine is not None:
            await asyncio.to_thread(self.engine.close)
            self.engine = None
        for model in (self.model, self.draft):
            if model is not None:
                model.close()
        self.model = self.draft = None
        await self.search.close()

    async def _load(self) -> None:
        s = self.settings
        try:
            self.threads = threads = decode_threads(s, self.cpus)
            log.info("decoding threads: %d (%s)", threads.count, threads.detail)
            path = await asyncio.to_thread(resolve_model_path, s.model)
            if s.gpu_layers != 0 and not gpu_offload_supported():
                log.warning(
                    "GPU offload was asked for (--gpu-layers %d) but this llama-cpp-python build has no GPU "
                    "support: running on the CPU. Reinstall with CMAKE_ARGS=-DGGML_CUDA=on for CUDA.",
                    s.gpu_layers,
                )
            model = await asyncio.to_thread(LlamaModel, path, s.gpu_layers, s.lora)
            self.model = model
            formatter = await asyncio.to_thread(
                ChatFormatter, model
            )  # the template checked before the engine starts
            config = EngineConfig(
                slots=default_slots(s),
                ctx=s.ctx,
                batch=s.batch,
                threads=threads.count,
                max_waiting=s.queue,
                prompt_cache=s.prompt_cache,  # type: ignore[arg-type]  # one of the choices
                cache_ram_mib=s.cache_ram,
                cache_dir=s.prompt_cache_dir,
                request_timeout=s.request_timeout,
                speculative=s.speculative,  # type: ignore[arg-type]  # one of the choices
                draft_max=s.draft_max,
                flash_attention=s.flash_attention,  # type: ignore[arg-type]  # one of the choices
            )
            loop = asyncio.get_running_loop()

            def on_engine_failure(reason: str) -> None:  # on the engine thread
                loop.call_soon_threadsafe(self._engine_failed, reason)

            if s.draft_model:
                draft_path = await asyncio.to_thread(resolve_model_path, s.draft_model)
                self.draft = await asyncio.to_thread(load_draft_model, model, draft_path, s.gpu_layers)
            elif s.speculative == "draft":
                raise ModelNotFoundError("--speculative draft needs a draft model: pass --draft-model PATH")
            making = asyncio.ensure_future(asyncio.to_thread(Engine, model, config, on_engine_failure, self.draft))
            try:
                engine = await asyncio.shield(making)
            except asyncio.CancelledError:  # closing while the engine starts: it is closed once made
                with contextlib.suppress(Exception):
                    await asyncio.to_thread((await making).close)
                raise
            try:
                await self._warm_up(engine, formatter)
            except BaseException:  # the engine's thread and context go before the model they use
                await asyncio.to_thread(engine.close)
                raise
            self.on_engine(engine)
            self.engine, self.formatter = engine, formatter
            log.info(
                "ready: %s (%s), context %d per request, %d slots, GPU layers %s",
                model.name,
                model.description,
                s.ctx,
                config.slots,
                model.gpu_layers or "none",
            )
        except StartupError as exc:
            self._fail(exc)
        except Exception as exc:
            log.debug("loading failed", exc_info=exc)
            detail = " ".join(str(exc).split()) or "no detail"
            self._fail(ModelLoadError(f"loading the model failed: {type(exc).__name__}: {detail}"[:1000]))

    def _engine_failed(self, reason: str) -> None:
        self._fail(EngineStoppedError(f"the engine failed: {reason}", retry_after=30))

    def _fail(self, exc: OzfigError) -> None:
        exc.message = " ".join(exc.message.split())  # one line
        self.error = exc
        log.error("%s", exc.message)
        self.on_fatal(exc)

    @staticmethod
    async def _warm_up(engine: Engine, formatter: ChatFormatter) -> None:
        tokens = formatter.tokens([{"role": "user", "content": "Hello"}])
        request = Job(tokens, 1, SamplingParams(temperature=0.0))
        async with engine.generate(request) as gen:
            await gen.text()

    # --- for handlers ----------------------------------------------------------------------

    @property
    def web_tokens(self) -> int:
        """The web-context budget: --web-context-tokens, or by the hardware when it is -1."""
        if self.settings.web_context_tokens >= 0:
            return self.settings.web_context_tokens
        return 1024 if gpu_offload_supported() and self.settings.gpu_layers != 0 else 512

    async def web_passages(self, query: str) -> list[Passage]:
        """Ranked web passages for `query`; none when the web context is off. Never raises."""
        if self.web_tokens == 0 or not query:
            return []
        return await self.search.passages(query)

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def require_engine(self) -> tuple[Engine, ChatFormatter]:
        if self.engine is not None:
            self.engine.check_running()
        if self.engine is None or self.formatter is None:
            if self.error is not None:
                raise ModelLoadingError(f"the model failed to load: {self.error.message}", retry_after=60)
            raise ModelLoadingError("the model is still loading; retry shortly", retry_after=5)
        return self.engine, self.formatter
