"""The engine as the HTTP layer sees it: submit a prompt, get an async stream, cancel.

Routes only use `Engine.generate` (an async context manager yielding a `Generation`)
and `Engine.stats`; what decodes inside — the multi-sequence scheduler — can change
without touching them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import (
    DeadlineExceededError,
    DrainingError,
    EngineError,
    EngineStoppedError,
    OverloadedError,
    PromptTooLongError,
    RequestError,
)
from ..llama.model import LlamaModel
from .cache_files import cache_key, read_entries, write_entries
from .handover import Handover
from .jobs import EngineStats, Finished, Job, Outbox
from .logprobs import TokenLogprob
from .prefix_cache import ReuseMode
from .runner import Runner
from .scheduler import Scheduler
from .speculation import SpeculationMode

log = logging.getLogger(__name__)


def prompt_fits(prompt_tokens: int, ctx: int) -> bool:
    """The one rule for whether a prompt fits the context: it leaves room for at least one answer token."""
    return prompt_tokens <= ctx - 1


def check_prompt_fits(prompt_tokens: int, ctx: int) -> int:
    """The room `prompt_fits` leaves for the answer; PromptTooLongError (400) if there is none.

    Prompt builders ask it before a request is queued, the engine again when one is submitted,
    `ozfig eval answers` for every row.
    """
    if not prompt_fits(prompt_tokens, ctx):
        raise PromptTooLongError(
            f"the prompt takes {prompt_tokens} tokens; the context holds {ctx} (prompt and answer together). "
            "Shorten the question or the conversation."
        )
    return ctx - prompt_tokens


FlashAttention = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class EngineConfig:
    slots: int
    ctx: int
    batch: int = 512
    threads: int = 0
    max_waiting: int = 64
    request_timeout: float = 600.0
    prompt_cache: ReuseMode = "on"
    cache_ram_mib: int = 0  # the RAM prompt cache's budget (0: none)
    cache_dir: str = ""  # where the RAM prompt cache is written on close and read at start ("": nowhere)
    speculative: SpeculationMode = "off"  # proposals verified in each decode (`speculation.py`)
    draft_max: int = 32  # the most tokens a sequence proposes per step
    flash_attention: FlashAttention = "auto"  # llama.cpp's flash attention (`flash_attention_switch`)


def flash_attention_switch(setting: FlashAttention) -> bool | None:
    """`setting` as llama.cpp's switch (None, `auto`: llama.cpp's choice, on wherever it can be).
    Off decodes long contexts faster on a CPU, but a row's logits then depend on the rows decoded
    with it: speculation and prompt reuse change greedy answers (bench/RESULTS.md)."""
    return None if setting == "auto" else setting == "on"


def _receive_all(items: Outbox) -> None:
    """In a job's loop: each job's new events to its `Generation`."""
    for job, events in items:
        job.deliver(events)


def _post(items: Outbox) -> None:
    """On the engine thread: one step's events to their loops, one handover per loop."""
    by_loop: dict[Handover[Outbox], Outbox] = {}
    for item in items:
        by_loop.setdefault(item[0].handover, []).append(item)
    for handover, loop_items in by_loop.items():
        handover.post(loop_items)


class Generation:
    """One answer being generated: iterate for text pieces; `result` once it has ended.

    With logprobs asked for, each token's `TokenLogprob` is in `logprobs` by the time the text
    it made (if any yet) is yielded.
    """

    def __init__(self, job: Job) -> None:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self.job = job
        self.result: Finished | None = None
        self.logprobs: list[TokenLogprob] = []

    def _receive(self, events: list[object]) -> None:
        for event in events:
            self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[str]:
        while self.result is None:
            event = await self._queue.get()
            if isinstance(event, Finished):
                self.result = event
                if event.reason == "failed":
                    raise EngineStoppedError(event.error or "the engine failed", retry_after=30)
                if event.reason == "error":
                    raise EngineError(event.error or "generation failed")
                if event.reason == "timeout":
                    raise DeadlineExceededError("the answer took longer than the request deadline")
                if event.reason == "aborted":
                    raise DrainingError(event.error or "the server is shutting down", retry_after=2)
                return
            if isinstance(event, TokenLogprob):
                self.logprobs.append(event)
                continue
            assert isinstance(event, str)
            yield event

    async def text(self) -> str:
        return "".join([piece async for piece in self])

    @property
    def finished(self) -> bool:
        return self.result is not None

    def cancel(self) -> None:
        if self.result is None:
            self.job.cancelled = True


class Engine:
    def __init__(
        self,
        model: LlamaModel,
        config: EngineConfig,
        on_failure: Callable[[str], None] | None = None,
        draft: LlamaModel | None = None,
    ) -> None:
        """`on_failure(reason)` is called on the engine thread if it dies; `draft`: a draft model for
        `speculative` auto or draft (its vocabulary checked by `draft.check_vocabulary`)."""
        self.model = model
        self.config = config
        flash = flash_attention_switch(config.flash_attention)
        runner = Runner(
            model,
            n_slots=config.slots,
            n_ctx=config.ctx,
            n_batch=config.batch,
            threads=config.threads,
            prompt_cache=config.prompt_cache,
            cache_ram_bytes=config.cache_ram_mib * 1024 * 1024,
            speculative=config.speculative,
            draft_max=config.draft_max,
            draft_model=draft,
            flash_attention=flash,
        )
        runner.post = _post
        self.cache_key = cache_key(model.path, model.lora_path, "" if flash is None else f"flash={flash}")
        if config.cache_dir and runner.ram.enabled:
            loaded = sum(
                runner.ram.put(tokens, exact, state)
                for tokens, exact, state in read_entries(Path(config.cache_dir), self.cache_key)
            )
            runner.stats.prompt_cache_bytes = runner.ram.bytes_held
            log.info("prompt cache: %d entries (%d bytes) read from %s", loaded, runner.ram.bytes_held, config.cache_dir)
        self.runner = runner
        self.scheduler = Scheduler(runner, max_waiting=config.max_waiting)
        self.scheduler.on_failure = on_failure
        self.refusing: str | None = None  # set by `abort`: new requests get DrainingError
        # each caller loop's handover of step events (`handover.py`), made on that loop at its first submit
        self._handovers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Handover[Outbox]] = (
            weakref.WeakKeyDictionary()
        )
        self.scheduler.start()

    @property
    def failure(self) -> str | None:
        """Why the engine thread died, or None while it runs."""
        return self.scheduler.failure

    def check_running(self) -> None:
        if self.scheduler.failure is not None:
            raise EngineStoppedError(
                f"the engine failed ({self.scheduler.failure}); the server is restarting", retry_after=30
            )

    @property
    def stats(self) -> EngineStats:
        return self.runner.stats

    def observe(self, on_finished: Callable[[Finished], None]) -> None:
        """Have `on_finished` told of every request that ends (on the engine thread)."""
        self.runner.on_finished = on_finished

    def heartbeat_age(self) -> float:
        """Seconds since the engine loop last turned (at least once a second while alive)."""
        return time.monotonic() - self.stats.heartbeat

    def abort(self, message: str) -> None:
        """End every running and waiting answer with DrainingError, and refuse new ones."""
        self.refusing = message
        self.scheduler.abort(message)

    def can_accept(self) -> bool:
        """Whether a request submitted now would be taken (a free slot or room to wait)."""
        return self.scheduler.has_room()

    def check_fits(self, prompt_tokens: int, max_tokens: int) -> int:
        """The max_tokens that fits beside the prompt, or PromptTooLongError."""
        return min(max_tokens, check_prompt_fits(prompt_tokens, self.config.ctx))

    def submit(self, request: Job) -> Generation:
        """Queue a copy of `request` (the engine fills in its delivery, deadline and timings; the
        caller's job stays as it was, so one job may be submitted again)."""
        if self.refusing is not None:
            raise DrainingError(self.refusing, retry_after=2)
        if not request.prompt:
            raise RequestError("the prompt is empty")
        now = time.monotonic()
        job = dataclasses.replace(
            request,
            prompt=list(request.prompt),
            max_tokens=self.check_fits(len(request.prompt), request.max_tokens),
            handover=self._handover(asyncio.get_running_loop()),
            submitted=now,
            deadline=now + self.config.request_timeout,
            cancelled=False,
            admitted_at=None,
            first_token_at=None,
            last_token_at=None,
            token_gaps=[],
        )
        gen = Generation(job)
        job.deliver = gen._receive
        self.check_running()
        if not self.scheduler.submit(job):
            self.check_running()
            raise OverloadedError(
                f"all {self.config.slots} slots are busy and {self.config.max_waiting} requests are waiting; retry shortly",
                retry_after=2,
            )
        return gen

    def _handover(self, loop: asyncio.AbstractEventLoop) -> Handover[Outbox]:
        """This loop's handover (on the loop's thread)."""
        try:
            handover = self._handovers.get(loop)
        except TypeError:  # a loop without weak references: a handover per submit
            return Handover(loop, _receive_all)
        if handover is None:
            handover = self._handovers[loop] = Handover(loop, _receive_all)
        return handover

    @contextlib.asynccontextmanager
    async def generate(self, job: Job) -> AsyncIterator[Generation]:
        """Submit; on leaving the block early (error, client gone) the answer is cancelled."""
        gen = self.submit(job)
        try:
            yield gen
        finally:
            if not gen.finished:
                gen.cancel()
                self.scheduler.wake()

    def close(self) -> None:
        """Stop the engine thread; with a cache dir, write the prompt cache there first (a drain ends here)."""
        self.scheduler.stop()
        if self.config.cache_dir and self.runner.ram.enabled:
            try:
                self.runner.save_all()
                n = write_entries(Path(self.config.cache_dir), self.cache_key, self.runner.ram.entries.values())
                log.info("prompt cache: %d entries written to %s", n, self.config.cache_dir)
            except OSError as exc:
                log.warning("prompt cache could not be written to %s: %s", self.config.cache_dir, exc)
        self.runner.close()
