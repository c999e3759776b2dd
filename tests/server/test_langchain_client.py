"""A second real OpenAI client: LangChain's ChatOpenAI (`bind_tools`, `with_structured_output`)
against a real `ozfig serve` with the test model."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import pytest
from pydantic import BaseModel, Field

from tests.support.processes import serving

langchain_openai = pytest.importorskip("langchain_openai")


class GetWeather(BaseModel):
    """The weather forecast of a city for the next days."""

    city: str = Field(max_length=30, description="the city")
    days: int = Field(ge=1, le=7, description="how many days")


class Capital(BaseModel):
    country: str = Field(max_length=40)
    capital: str = Field(max_length=40)


@pytest.fixture(scope="module")
def chat(model_path) -> Iterator[object]:
    args = ["--model", str(model_path), "--max-tokens", "96", "--ctx", "2048", "--slots", "1", "--temperature", "0"]
    with serving(*args) as base:
        yield langchain_openai.ChatOpenAI(
            base_url=base + "/v1", api_key="not-needed", model="ozfig", temperature=0, max_retries=0, timeout=300
        )


def test_bind_tools_gives_tool_calls_langchain_reads(chat) -> None:
    bound = chat.bind_tools([GetWeather], tool_choice="GetWeather", parallel_tool_calls=False)
    reply = bound.invoke("What will the weather be in Paris for the next 3 days?")
    [call] = reply.tool_calls
    assert call["name"] == "GetWeather" and call["id"]
    jsonschema.validate(call["args"], GetWeather.model_json_schema())
    GetWeather.model_validate(call["args"])
    streamed = None
    for chunk in bound.stream("What will the weather be in Paris for the next 3 days?"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None and [c["args"] for c in streamed.tool_calls] == [call["args"]]


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output_returns_the_model(chat, method: str) -> None:
    structured = chat.with_structured_output(Capital, method=method)
    answer = structured.invoke("What is the capital of France?")
    assert isinstance(answer, Capital)
    assert json.loads(answer.model_dump_json())
