"""The /v1 content chunks built as text are the bytes the response model would give."""

from __future__ import annotations

import json

import pytest

from server.api.openai_format import Completion
from server.api.sse import sse_event

PIECES = [
    "",
    "Hello",
    " world",
    'quote " and \\ backslash',
    "line\nbreak\ttab",
    "\x00\x1f",
    "é 🌟 中文",
    "\u2028\u2029",
]


@pytest.mark.parametrize("with_usage_field", [False, True])
@pytest.mark.parametrize("model", ["ozfig", 'odd "name" é'])
def test_a_content_chunk_is_the_models_chunk_byte_for_byte(with_usage_field: bool, model: str) -> None:
    shape = Completion(model=model)
    event = shape.content_events(with_usage_field=with_usage_field)
    for piece in PIECES:
        expected = sse_event(shape.chunk({"content": piece}, with_usage_field=with_usage_field))
        assert event(piece) == expected
        assert json.loads(event(piece)[len("data: ") :])["choices"][0]["delta"] == {"content": piece}
