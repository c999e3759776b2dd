"""What a decode of a few rows costs on this machine, timed for `--speculative auto`, and whether
that timing can be trusted.

`auto` times decodes of 1 and 9 rows when the engine starts (the prior of `spec_model.DecodeCost`).
If the machine was busy then (another server loading beside it, a rolling restart), the timing is
several times too slow and skewed: seen here, a 1-row decode timed at 48 ms that takes 10 ms, and
9 rows at 23x one row, so `auto` thought every proposal a loss and proposed nothing for the
server's whole life (a quoting answer 1.04x of `off` against 1.46x for a server started idle).
The plain decodes that follow show it: a decode at a longer context is never much faster than
the same rows at the start of an empty sequence, so when the decodes run are much faster than the
timing predicts, it was taken on a busy machine, and it is taken again right after the step that
showed it: on the machine as it is while this engine serves (an idle moment of this engine may be
a busy one of the machine: servers side by side, one answering while another waits), after the
cells of the sequence with the fewest, which are left as they were, so running answers go on
untouched (a one-time pause of a few decodes). A busy machine only ever slows a decode, so each
size keeps the fastest time of all its timings.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..llama.batch import Batch
    from ..llama.context import Context

log = logging.getLogger(__name__)

Points = list[tuple[int, float]]  # (rows, seconds) of timed decodes


def cells(ctx: Context) -> int:
    """The KV cells of each of the context's sequences."""
    return ctx.n_ctx // max(ctx.n_seq, 1)


class CostProbe:
    ROWS = (1, 9)  # decode sizes timed
    REPEAT = 2  # timings of each size, interleaved; the fastest counts
    CHECK = 16  # decodes run, compared with the timing's line, before it is judged
    FAST = 0.7  # their median at most this share of the line's prediction: the timing was too slow
    RETIMES = 4  # at most this many timings after the first (a machine busy for good stays so)
    NEAR = 2  # decodes of up to this many times the largest size timed are judged

    def __init__(self) -> None:
        self.best: dict[int, float] = {}  # rows: the fastest decode of that size timed
        self.line: tuple[float, float] | None = None  # seconds of a decode of n rows: a + b·n, as timed
        self.ratios: list[float] = []  # decodes run since, each against the line
        self.retimes = 0
        self.stale = False  # the timing was taken on a busy machine: time again after this step

    def time(self, ctx: Context, batch: Batch, seq: int = 0, start: int = 0) -> Points | None:
        """Time decodes of `ROWS` rows in `seq` from position `start` (its cells from there are
        removed after each); None when there is no room or a decode fails."""
        rows = [n for n in self.ROWS if n <= batch.capacity and start + n <= cells(ctx)]
        if len(rows) < 2:
            return None
        best = self.best
        for _ in range(self.REPEAT):
            for n in rows:  # interleaved: a load that comes or goes midway skews no size alone
                batch.clear()
                for i in range(n):
                    batch.add((start + i) % ctx.n_vocab, start + i, seq, True)
                began = time.perf_counter()
                ok = ctx.decode(batch) == 0
                best[n] = min(best.get(n, math.inf), time.perf_counter() - began)
                ctx.seq_remove(seq, start, -1)
                if not ok:
                    return None
        points = sorted(best.items())
        (n0, c0), (n1, c1) = points[0], points[-1]
        slope = max((c1 - c0) / (n1 - n0), 0.0)
        self.line = (c0 - slope * n0, slope)
        self.ratios.clear()
        self.stale = False
        timed = ", ".join(f"{n} rows {c * 1e3:.2f} ms" for n, c in points)
        log.info("decodes timed for --speculative auto: %s", timed)
        return points

    def check(self, rows: int, seconds: float) -> None:
        """A decode of `rows` rows the engine ran took `seconds`."""
        if self.line is None or self.stale or rows > self.NEAR * max(self.ROWS):
            return  # far past the sizes timed, a row costs less than the line says: not judged
        a, b = self.line
        self.ratios.append(seconds / max(a + b * rows, 1e-9))
        if len(self.ratios) < self.CHECK:
            return
        fast = statistics.median(self.ratios)
        self.ratios.clear()
        if fast < self.FAST and self.retimes < self.RETIMES:
            self.stale = True
            log.info("decodes run at %.2f of the timing taken for --speculative auto: timing again", fast)

    def where(self, ctx: Context) -> tuple[int, int] | None:
        """Where to time again (seq, first position): after the cells of the sequence with the fewest."""
        ends = [(ctx.seq_pos_max(seq) + 1, seq) for seq in range(ctx.n_seq)]
        start, seq = min(ends)
        return (seq, start) if start + max(self.ROWS) <= cells(ctx) else None

    def retime(self, ctx: Context, batch: Batch) -> Points | None:
        """Time again if the timing is stale (between steps: the logits of the last one are gone)."""
        if not self.stale:
            return None
        self.stale = False
        place = self.where(ctx)
        points = self.time(ctx, batch, *place) if place is not None else None
        self.retimes += 1
        return points
