"""The one rule for whether a prompt fits the context (used by /prompt, /v1, the engine and eval)."""

import pytest

from ozfig.engine.engine import check_prompt_fits, prompt_fits
from ozfig.errors import PromptTooLongError


def test_a_prompt_fits_while_one_answer_token_does() -> None:
    assert prompt_fits(1023, 1024) and not prompt_fits(1024, 1024)
    assert check_prompt_fits(1000, 1024) == 24


def test_a_prompt_that_does_not_fit_is_a_400_naming_both_sizes() -> None:
    with pytest.raises(PromptTooLongError) as info:
        check_prompt_fits(1024, 1024)
    assert info.value.status == 400 and info.value.code == "context_length_exceeded"
    assert "1024 tokens" in info.value.message and "holds 1024" in info.value.message
