"""The batch's arrays are what llama.cpp reads through the struct: model-free."""

from __future__ import annotations

import pytest

from ozfig.llama.batch import Batch


def rows(batch: Batch) -> list[tuple[int, int, int, int, int]]:
    """Each row as llama.cpp sees it: token, position, count of sequence ids, first sequence id, logits."""
    raw = batch.raw
    assert raw is not None
    return [
        (raw.token[i], raw.pos[i], raw.n_seq_id[i], raw.seq_id[i][0], raw.logits[i]) for i in range(batch.n_tokens)
    ]


def test_tokens_added_one_by_one_and_a_step_at_once_read_the_same_through_the_struct() -> None:
    with Batch(8) as one, Batch(8) as step:
        for token, pos, seq in ((11, 5, 0), (12, 9, 3), (13, 10, 3)):
            one.add(token, pos, seq, True)
        assert step.add_rows([11, 12, 13], [5, 9, 10], [0, 3, 3]) == 0
        assert rows(one) == rows(step) == [(11, 5, 1, 0, 1), (12, 9, 1, 3, 1), (13, 10, 1, 3, 1)]
        assert one.every_row_out and step.every_row_out
        assert step.add_rows([14], [2], [7]) == 3
        assert rows(step)[3] == (14, 2, 1, 7, 1)


def test_a_prompt_span_has_consecutive_positions_and_logits_on_its_last_token_only() -> None:
    with Batch(16) as batch:
        assert batch.add_span([1, 2, 3, 4], 20, 2, True) == 3
        assert rows(batch) == [(1, 20, 1, 2, 0), (2, 21, 1, 2, 0), (3, 22, 1, 2, 0), (4, 23, 1, 2, 1)]
        assert not batch.every_row_out
        batch.clear()
        assert batch.add_span([9], 7, 1, True) == 0
        assert batch.every_row_out  # one token asking for logits: its row is its output row
        batch.clear()
        batch.add_span([5, 6], 0, 0, False)
        assert [r[4] for r in rows(batch)] == [0, 0]
        assert not batch.every_row_out


def test_a_full_batch_refuses_more_and_a_cleared_one_starts_over() -> None:
    with Batch(2) as batch:
        batch.add(1, 0, 0, True)
        with pytest.raises(ValueError, match="at most 2 tokens"):
            batch.add_rows([2, 3], [1, 2], [0, 0])
        assert batch.n_tokens == 1
        with pytest.raises(ValueError, match="at most 2 tokens"):
            batch.add_span([2, 3], 1, 0, True)
        batch.add(2, 1, 0, False)
        assert not batch.every_row_out
        batch.clear()
        assert batch.n_tokens == 0 and batch.every_row_out
        assert batch.add(5, 0, 1, True) == 0
    with pytest.raises(ValueError, match="closed"):
        batch.add(1, 0, 0, True)
    with pytest.raises(ValueError, match="at least one"):
        Batch(0)
