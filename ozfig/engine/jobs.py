"""What the scheduler and the asyncio side exchange (a job, its end, the engine's counters), and
the scheduler's state of a job being decoded."""

from __future__ import annotations

import codecs
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import llama_cpp as lc

from .sampling import SamplingParams, build_sampler
from .stops import StopMatcher

# aborted: ended by `Engine.abort` (a drain past its timeout)
FinishReason = Literal["stop", "length", "cancelled", "timeout", "error", "failed", "aborted"]


@dataclass
class Job:
    """One request as the scheduler sees it. The asyncio side reads, never writes, but `cancelled`."""

    prompt: list[int]
    max_tokens: int
    sampling: SamplingParams
    deliver: Callable[[list[object]], None]  # called on the engine thread with this step's events
    deadline: float | None = None
    cancelled: bool = False
    submitted: float = field(default_factory=time.monotonic)
    admitted_at: float | None = None  # when it got a slot
    first_token_at: float | None = None
    last_token_at: float | None = None
    token_gaps: list[float] = field(default_factory=list)  # seconds between consecutive tokens


@dataclass(frozen=True)
class Finished:
    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    error: str | None = None
    time_to_first_token: float | None = None
    queued_seconds: float | None = None  # submission to a slot (None: never got one)
    total_seconds: float | None = None  # submission to the end
    token_gaps: tuple[float, ...] = ()


@dataclass
class EngineStats:
    """Counters the engine thread updates and anyone may read."""

    slots: int = 0
    busy_slots: int = 0
    kv_cells_used: int = 0  # KV cells held by running answers (prompt and generated tokens)
    kv_cells_total: int = 0
    heartbeat: float = field(default_factory=time.monotonic)  # the engine loop's last turn
    queue_depth: int = 0
    requests_total: int = 0
    requests_finished: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))
    prompt_tokens_total: int = 0
    prompt_tokens_cached_total: int = 0  # prompt tokens whose KV was reused from an earlier request
    completion_tokens_total: int = 0
    decode_steps_total: int = 0
    decode_seconds_total: float = 0.0
    ttft_seconds: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=512))
    recent_tokens: collections.deque[tuple[float, int]] = field(
        default_factory=lambda: collections.deque(maxlen=256)
    )

    def tokens_per_second(self, window: float = 10.0) -> float:
        now = time.monotonic()
        recent = [(t, n) for t, n in list(self.recent_tokens) if now - t <= window]
        if len(recent) < 2:
            return 0.0
        span = max(now - recent[0][0], 1e-6)
        return sum(n for _, n in recent) / span


@dataclass
class Slot:
    """A job being decoded: its sequence id, sampler chain, stop matcher and position."""

    seq: int
    job: Job
    sampler: lc.llama_sampler_p
    stop: StopMatcher
    decoder: codecs.IncrementalDecoder
    fed: int = 0  # prompt tokens already in the KV cache
    pos: int = 0  # next position of this sequence
    last: int = -1  # last sampled token, fed at the next step
    generated: int = 0
    batch_index: int = -1  # where this slot's logits are in the current batch

    @classmethod
    def for_job(cls, seq: int, job: Job, n_vocab: int) -> Slot:
        stop = StopMatcher(job.sampling.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return cls(seq, job, build_sampler(job.sampling, n_vocab), stop, decoder)

    def held_text(self) -> str:
        """What the UTF-8 decoder and the stop matcher still hold, when the answer ends normally."""
        rest, _ = self.stop.feed(self.decoder.decode(b"", final=True))
        return rest + self.stop.flush()
