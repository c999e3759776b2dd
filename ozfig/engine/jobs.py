"""The engine's job (what a caller asks for, and the scheduler's record of it), its end, the
engine's counters, and the state of a job being decoded in one sequence (`Slot`)."""

from __future__ import annotations

import codecs
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..llama.model import LlamaModel
from .sampling import Sampler, SamplingParams, build_sampler
from .stops import StopMatcher

# Why an answer ended. stop: an end-of-generation token or a stop string; length: max_tokens or
# the context; cancelled: the client left; timeout: past the request deadline; error: llama.cpp
# failed on it; failed: the engine thread died; aborted: ended by `Engine.abort` (a drain past
# its timeout)
FinishReason = Literal["stop", "length", "cancelled", "timeout", "error", "failed", "aborted"]


def _no_delivery(events: list[object]) -> None:
    raise RuntimeError("the job was not submitted through Engine.submit")


# what a step hands over to the asyncio side: each job with its new events (text pieces, a Finished)
Outbox = list[tuple["Job", list[object]]]


@dataclass
class Job:
    """One generation: the caller sets the first three fields; `Engine.submit` the delivery and
    deadline; the engine thread the rest. The asyncio side writes only `cancelled`."""

    prompt: list[int]
    max_tokens: int
    sampling: SamplingParams
    deliver: Callable[[list[object]], None] = _no_delivery  # called in `loop` with new events
    handover: Any = None  # to the caller's asyncio loop (`handover.py`: the runner posts to it once per step)
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
    cached_tokens: int = 0  # prompt tokens whose KV was reused, not computed


@dataclass
class EngineStats:
    """Counters the engine thread updates and anyone may read (`/metrics`, `/health`)."""

    slots: int = 0
    busy_slots: int = 0
    kv_cells_used: int = 0  # KV cells held by running answers (prompt and generated tokens)
    kv_cells_total: int = 0
    heartbeat: float = field(default_factory=time.monotonic)  # the engine loop's last turn
    queue_depth: int = 0
    requests_total: int = 0
    requests_finished: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))
    prompt_tokens_total: int = 0
    prompt_tokens_reused_total: int = 0  # prompt tokens whose KV was reused from an earlier request
    prompt_cache_hits_total: int = 0  # requests that reused some KV
    prompt_cache_misses_total: int = 0  # requests that reused none
    prompt_cache_saved_total: int = 0  # sequences saved to the RAM cache before being overwritten
    prompt_cache_restored_tokens_total: int = 0  # prompt tokens restored from the RAM cache
    prompt_cache_bytes: int = 0  # bytes the RAM cache holds
    completion_tokens_total: int = 0
    draft_tokens_total: int = 0  # proposed tokens verified (speculative decoding)
    draft_tokens_accepted_total: int = 0  # of which the target model accepted
    steps_total: int = 0  # engine steps (a decode of the running answers, a prompt chunk)
    step_overhead_seconds_total: float = 0.0  # of those steps' time, outside llama_decode


@dataclass
class Slot:
    """A job being decoded: its sequence id, sampler chain, stop matcher and position."""

    seq: int
    job: Job
    sampler: Sampler
    stop: StopMatcher
    decoder: codecs.IncrementalDecoder
    fed: int = 0  # prompt tokens already in the KV cache
    pos: int = 0  # next position of this sequence
    last: int = -1  # last sampled token, fed at the next step
    generated: int = 0
    cached: int = 0  # prompt tokens reused from the KV cache
    row: int = -1  # this slot's logits row in the current batch
    draft: list[int] = field(default_factory=list)  # proposed tokens in this step's batch, after `last`

    @classmethod
    def for_job(cls, seq: int, job: Job, model: LlamaModel) -> Slot:
        stop = StopMatcher(job.sampling.stop)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return cls(seq, job, build_sampler(job.sampling, model), stop, decoder)

    def held_text(self) -> str:
        """What the UTF-8 decoder and the stop matcher still hold, when the answer ends normally."""
        rest, _ = self.stop.feed(self.decoder.decode(b"", final=True))
        return rest + self.stop.flush()
