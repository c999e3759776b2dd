"""The parts of a chat request body about tools and structured output, as pydantic models:
`tools`, `tool_choice`, an assistant message's `tool_calls`, and `response_format`.

Part of the one declaration of the chat body (`request_schema.ChatCompletionRequest`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
FunctionName = Annotated[str, Field(pattern=FUNCTION_NAME, description="letters, digits, _ and -, at most 64")]
MAX_TOOLS = 64
MAX_CALLS = 64


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False, frozen=True)


class FunctionDef(_Request):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = Field(
        None, description="a JSON schema (the arguments are held to it by a grammar); none: no arguments"
    )
    strict: bool | None = Field(None, description="accepted: the schema is always enforced")


class ToolDef(_Request):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Request):
    name: FunctionName


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: NamedFunction


def _mode_or_named(value: Any) -> str | None:
    if isinstance(value, str):
        return "<mode>"
    if isinstance(value, dict):
        return "<named>"
    return None


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("<mode>")] | Annotated[NamedToolChoice, Tag("<named>")],
    Discriminator(
        _mode_or_named,
        custom_error_type="tool_choice_type",
        custom_error_message="must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name'}}",
    ),
]


class FunctionCall(_Request):
    name: FunctionName
    arguments: str = Field(description="JSON text, as the model wrote it")


class MessageToolCall(_Request):
    id: Annotated[str, Field(min_length=1, max_length=128)]
    type: Literal["function"]
    function: FunctionCall


class JsonSchemaSpec(_Request):
    name: Annotated[str, Field(pattern=FUNCTION_NAME)]
    description: str | None = None
    json_schema: dict[str, Any] | None = Field(
        None, alias="schema", description="the JSON schema the answer must match (enforced by a grammar)"
    )
    strict: bool | None = Field(None, description="accepted: the schema is always enforced")


class TextFormat(_Request):
    type: Literal["text"]


class JsonObjectFormat(_Request):
    type: Literal["json_object"]


class JsonSchemaFormat(_Request):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


def _format_type(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    return f"<{kind}>" if kind in ("text", "json_object", "json_schema") else None


ResponseFormat = Annotated[
    Annotated[TextFormat, Tag("<text>")]
    | Annotated[JsonObjectFormat, Tag("<json_object>")]
    | Annotated[JsonSchemaFormat, Tag("<json_schema>")],
    Discriminator(
        _format_type,
        custom_error_type="response_format_type",
        custom_error_message="must be {'type': 'text'}, {'type': 'json_object'} or "
        "{'type': 'json_schema', 'json_schema': {'name', 'schema'}}",
    ),
]
