"""What a request's tools are, and a call the model made."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
Choice = Literal["none", "auto", "required", "function"]


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, description and JSON schema of its arguments."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: dict(NO_PARAMETERS))

    def as_openai(self) -> dict[str, Any]:
        """The tool as OpenAI's request carries it (what chat templates expect in `tools`)."""
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class ToolUse:
    """A request's tools and what it lets the model do with them."""

    tools: tuple[Tool, ...]
    choice: Choice = "auto"
    function: str | None = None  # with choice "function": the one function to call
    parallel: bool = True  # more than one call in one answer

    @property
    def callable(self) -> tuple[Tool, ...]:
        """The tools this answer may call."""
        if self.choice == "none":
            return ()
        if self.choice == "function":
            return tuple(t for t in self.tools if t.name == self.function)
        return self.tools

    @property
    def forced(self) -> bool:
        """The answer must be calls (required, or a named function)."""
        return self.choice in ("required", "function")


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass
class ToolCall:
    """One call in an answer; `arguments` is JSON text (OpenAI's shape)."""

    index: int
    id: str
    name: str
    arguments: str = ""
    complete: bool = False  # the call's text ended as its format ends a call

    def as_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }
