"""A step's rows: each answer's last token, then its proposals; model-free."""

from __future__ import annotations

import codecs

from ozfig.engine.jobs import Job, Slot
from ozfig.engine.sampling import SamplingParams
from ozfig.engine.step_rows import add_step_rows, greedy_tokens
from ozfig.engine.stops import StopMatcher
from ozfig.llama.batch import Batch


class Greedy:
    argmax_only = True


def slot(seq: int, pos: int, last: int, draft: list[int]) -> Slot:
    job = Job([1] * pos, 100, SamplingParams(temperature=0.0))
    made = Slot(seq, job, Greedy(), StopMatcher(()), codecs.getincrementaldecoder("utf-8")())  # type: ignore[arg-type]
    made.pos, made.last, made.draft = pos, last, draft
    return made


def test_each_answer_puts_its_last_token_then_its_proposals_and_knows_its_row() -> None:
    fed: list[tuple[int, int]] = []
    slots = [slot(0, 10, 5, []), slot(3, 7, 6, [8, 9]), slot(1, 4, 2, [])]
    with Batch(16) as batch:
        add_step_rows(batch, slots, lambda seq, token: fed.append((seq, token)))
        assert batch.n_tokens == 5 and batch.every_row_out
        assert list(batch.tokens[:5]) == [5, 6, 8, 9, 2]
        assert list(batch.positions[:5]) == [10, 7, 8, 9, 4]
        assert list(batch.seqs[:5]) == [0, 3, 3, 3, 1]
    assert [s.row for s in slots] == [0, 1, 4]
    assert [s.pos for s in slots] == [11, 8, 5]  # the proposals' positions are taken when accepted
    assert fed == [(0, 5), (3, 6), (1, 2)]


def test_one_argmax_only_for_a_step_of_greedy_answers_without_proposals() -> None:
    class NoContext:
        def argmax_rows(self, n: int) -> list[int]:
            return list(range(n))

    plain = [slot(0, 3, 1, []), slot(1, 3, 1, [])]
    for i, s in enumerate(plain):
        s.row = i
    assert greedy_tokens(NoContext(), plain) == [0, 1]  # type: ignore[arg-type]
    proposing = [slot(0, 3, 1, []), slot(1, 3, 1, [4])]
    for i, s in enumerate(proposing):
        s.row = i
    assert greedy_tokens(NoContext(), proposing) is None  # type: ignore[arg-type]
    assert greedy_tokens(NoContext(), plain[:1]) is None  # type: ignore[arg-type]
