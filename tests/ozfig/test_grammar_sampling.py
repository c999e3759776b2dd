"""Grammars in llama.cpp's sampler through the engine, with the real test model: greedy answers
under a JSON-schema grammar always parse and match the schema; logprobs come only when asked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import pytest

from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams, check_grammar
from ozfig.errors import GrammarError
from ozfig.llama.grammar import Grammar, json_object_grammar, json_schema_grammar

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 18, "maximum": 99},
            "color": {"enum": ["red", "green", "blue"]},
        },
        "required": ["name", "age", "color"],
        "additionalProperties": False,
    },
    {"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 5}, "minItems": 2, "maxItems": 4},
    {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": r"^[A-Z]{3}-\d{2}$"}, "ok": {"type": "boolean"}},
        "required": ["code", "ok"],
    },
]


@pytest.fixture(scope="module")
def engine(model):
    e = Engine(model, EngineConfig(slots=2, ctx=1024, batch=256, threads=2, prompt_cache=False))
    yield e
    e.close()


def run(engine: Engine, prompt: list[int], sampling: SamplingParams, max_tokens: int = 80) -> tuple[str, Any]:
    async def go() -> tuple[str, Any]:
        async with engine.generate(Job(prompt, max_tokens, sampling)) as gen:
            text = await gen.text()
        return text, gen
    return asyncio.run(go())


@pytest.mark.parametrize("schema", SCHEMAS, ids=["object", "array", "pattern"])
def test_greedy_answers_under_a_schema_grammar_match_the_schema(engine, formatter, schema) -> None:
    prompt = formatter.tokens([{"role": "user", "content": "Answer in JSON: tell me about a person."}])
    text, gen = run(engine, prompt, SamplingParams(temperature=0.0, grammar=json_schema_grammar(schema, "s")))
    assert gen.result.reason == "stop", text
    jsonschema.validate(json.loads(text), schema)


def test_sampled_answers_under_json_object_are_objects(engine, formatter) -> None:
    prompt = formatter.tokens([{"role": "user", "content": "Some JSON about a dog, please."}])
    for seed in range(3):
        sampling = SamplingParams(temperature=0.9, seed=seed, grammar=json_object_grammar())
        text, gen = run(engine, prompt, sampling, max_tokens=200)
        if gen.result.reason == "stop":
            assert isinstance(json.loads(text), dict)
        else:
            assert text.startswith("{")


def test_logprobs_only_when_asked_and_the_greedy_token_is_the_likeliest(engine, formatter) -> None:
    prompt = formatter.tokens([{"role": "user", "content": "Say hello to me."}])
    _, plain = run(engine, prompt, SamplingParams(temperature=0.0), max_tokens=6)
    assert plain.logprobs == []
    _, asked = run(engine, prompt, SamplingParams(temperature=0.0, logprobs=4), max_tokens=6)
    assert len(asked.logprobs) == asked.result.completion_tokens - (asked.result.reason == "stop")
    for entry in asked.logprobs:
        assert entry.top[0][0] == entry.token and len(entry.top) == 4


def test_a_grammar_llama_cpp_cannot_parse_is_a_grammar_error(model) -> None:
    with pytest.raises(GrammarError):
        check_grammar(model, Grammar("root ::= undefined-rule"))
