"""What `--speculative auto` expects of a proposal: how likely its tokens are accepted, and what
checking them costs on this machine. Bookkeeping only (no llama.cpp calls).

- `Acceptance`: decayed counts of accepted tokens (hits) and of rejections (misses: a proposal
  ends in at most one); the chance that a proposed token is accepted after the one before it is
  hits / (hits + misses).
- `MatchAcceptance`: one `Acceptance` per length of the match a proposal came from (an answer that
  has been repeating its prompt for 20 tokens very likely goes on; one whose last 2 tokens occur
  earlier, much less), shared by every sequence, so it is learnt quickly.
- `DecodeCost`: seconds a decode of n rows takes, as a line a + b·n fitted to the decodes run.
"""

from __future__ import annotations

import bisect


class Acceptance:
    DECAY = 0.7  # per recorded proposal: a few failed proposals in a row weigh more than a long good run
    REST = 0.985  # per step without a proposal: back toward the prior, so a sequence is tried again

    def __init__(self, rate: float = 0.5, weight: float = 1.0, decay: float = DECAY) -> None:
        """Start from `rate`, worth `weight` rejections of evidence."""
        self.prior_hits = weight * rate / (1.0 - rate)
        self.prior_misses = weight
        self.hits, self.misses = self.prior_hits, self.prior_misses
        self.decay = decay

    @property
    def rate(self) -> float:
        return self.hits / (self.hits + self.misses)

    def record(self, proposed: int, accepted: int) -> None:
        self.hits = self.hits * self.decay + accepted
        self.misses = self.misses * self.decay + (accepted < proposed)

    def rest(self) -> None:
        r = self.REST
        self.hits = self.prior_hits + (self.hits - self.prior_hits) * r
        self.misses = self.prior_misses + (self.misses - self.prior_misses) * r


class MatchAcceptance:
    """Acceptance by the length of the match a proposal came from (tokens of the sequence's end
    that also precede the proposed ones in its source)."""

    BOUNDS = (0, 3, 4, 6, 10, 18, 34)  # lower bounds of the length buckets
    PRIORS = (0.15, 0.25, 0.4, 0.6, 0.8, 0.9, 0.95)
    DECAY = 0.98  # shared by all sequences: a longer memory

    def __init__(self) -> None:
        self.buckets = [Acceptance(p, 1.0, self.DECAY) for p in self.PRIORS]

    def of(self, length: int) -> Acceptance:
        return self.buckets[bisect.bisect_right(self.BOUNDS, length) - 1]


class DecodeCost:
    """Seconds one decode of n rows takes, as a line a + b·n fitted to the recent decodes (decayed
    sums). Where the recent decodes were of one size or two, the slope leans on a prior: a row
    `prior` of a one-row decode, measured at start (`measured`), else `PRIOR_SLOPE` (checking a
    proposal nearly free)."""

    MEMORY = 256  # decodes
    PRIOR_SLOPE = 0.02
    PRIOR_WEIGHT = 1.0  # rows² of spread the prior is worth

    def __init__(self) -> None:
        self.w = self.n = self.nn = self.c = self.nc = 0.0
        self.prior = self.PRIOR_SLOPE

    def measured(self, points: list[tuple[int, float]]) -> None:
        """Decodes timed at start, (rows, seconds): they set the prior and count as observations."""
        (n0, c0), (n1, c1) = min(points), max(points)
        if n1 > n0 and c1 >= c0 > 0:
            slope = (c1 - c0) / (n1 - n0)
            self.prior = slope / max(c0 - slope * n0 + slope, 1e-9)  # against a one-row decode
        for rows, seconds in points:
            self.observe(rows, seconds, weight=4.0)

    def observe(self, rows: int, seconds: float, weight: float = 1.0) -> None:
        d = 1.0 - 1.0 / self.MEMORY
        self.w = self.w * d + weight
        self.n = self.n * d + weight * rows
        self.nn = self.nn * d + weight * rows * rows
        self.c = self.c * d + weight * seconds
        self.nc = self.nc * d + weight * rows * seconds

    def line(self) -> tuple[float, float]:
        """(a, b): a decode of n rows takes a + b·n seconds; (1 - prior, prior) before any decode."""
        if self.w <= 0.0:
            return 1.0 - self.prior, self.prior
        mean_n, mean_c = self.n / self.w, self.c / self.w
        var = max(self.nn / self.w - mean_n * mean_n, 0.0)
        cov = self.nc / self.w - mean_n * mean_c
        prior = self.prior * mean_c / (1.0 + self.prior * (mean_n - 1.0))
        slope = max((cov + prior * self.PRIOR_WEIGHT) / (var + self.PRIOR_WEIGHT), 0.0)
        return max(mean_c - slope * mean_n, 1e-9), slope


def expected(rate: float, k: int) -> float:
    """Accepted tokens to expect of k proposed, each accepted with chance `rate` after the one before."""
    return float(k) if rate >= 1.0 else rate * (1.0 - rate**k) / (1.0 - rate)
