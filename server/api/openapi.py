"""GET /openapi.json: the OpenAPI 3.1 description, generated from the models in `request_schema.py`
and `response_schema.py`.

Every status a route can answer is listed with its body: the errors are the ones
`http_errors` sends (OpenAI's shape under /v1/, `{"detail", "code"}` elsewhere).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import completion_request, request_schema, response_schema
from .admin import OPS_PATHS

REF = "#/components/schemas/{model}"
_REQUESTS: tuple[type[BaseModel], ...] = (
    request_schema.ChatCompletionRequest,
    completion_request.CompletionRequest,
)
_RESPONSES: tuple[type[BaseModel], ...] = (
    response_schema.ChatCompletion,
    response_schema.ChatCompletionChunk,
    response_schema.TextCompletion,
    response_schema.ModelList,
    response_schema.PromptAnswer,
    response_schema.PromptToken,
    response_schema.PromptDone,
    response_schema.Hint,
    response_schema.Health,
    response_schema.HealthProblem,
    response_schema.OpenAIError,
    response_schema.DetailError,
)

REASONS = {
    "400": "a bad field (named in the answer), bad JSON, or a prompt that cannot fit the context",
    "403": "a cross-site browser request (Sec-Fetch-Site: cross-site) may not start a generation",
    "404": "no such route",
    "413": "the body is larger than --max-body-bytes, or the messages longer than --max-input-chars",
    "414": "the query is longer than --max-query-chars",
    "415": "the body is not sent as application/json",
    "500": "an unexpected server error (a bug: see the server log)",
    "503": "the model is loading or failed, or every slot and the queue are full",
    "504": "the answer passed --request-timeout",
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}, **extra}


def _errors(model: type[BaseModel], *statuses: str) -> dict[str, Any]:
    out = {status: _json(model, REASONS[status]) for status in statuses}
    if "503" in out:
        out["503"]["headers"] = RETRY_AFTER
    return out


def _json_text(*models: type[BaseModel]) -> dict[str, Any]:
    """A string holding JSON of one of `models` (an SSE event's data)."""
    refs = [_ref(m) for m in models]
    return {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": refs[0] if len(refs) == 1 else {"anyOf": refs},
    }


def _sse(description: str, event: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event (OpenAPI 3.1: the schema of text/event-stream describes each event)."""
    return {
        "description": description,
        "type": "object",
        "required": ["data"],
        "properties": {"event": event, "data": data, "id": {"type": "string"}, "retry": {"type": "integer"}},
    }


CHAT_EVENT = _sse(
    "each `data:` is a ChatCompletionChunk (or, when the answer fails midway, an OpenAIError); the last is `[DONE]`",
    {"type": "string"},
    {
        "if": {"const": "[DONE]"},
        "then": {"const": "[DONE]"},
        "else": _json_text(response_schema.ChatCompletionChunk, response_schema.OpenAIError),
    },
)
TEXT_EVENT = _sse(
    "each `data:` is a TextCompletion (or, when the answer fails midway, an OpenAIError); the last is `[DONE]`",
    {"type": "string"},
    {
        "if": {"const": "[DONE]"},
        "then": {"const": "[DONE]"},
        "else": _json_text(response_schema.TextCompletion, response_schema.OpenAIError),
    },
)
PROMPT_EVENT = _sse(
    "`token` events with the answer's pieces, then one `done` event (or `error` when it fails midway)",
    {"enum": ["token", "done", "error"]},
    _json_text(response_schema.PromptToken, response_schema.PromptDone, response_schema.DetailError),
)


def _paths() -> dict[str, Any]:
    openai_errors = _errors(response_schema.OpenAIError, "400", "413", "415", "500", "503", "504")
    return {
        "/": {
            "get": {
                "summary": "The chat page for browsers (Accept prefers text/html), else the original's JSON hint",
                "responses": {
                    "200": {
                        "description": "the page or the hint",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "application/json": {"schema": _ref(response_schema.Hint)},
                        },
                    }
                },
            }
        },
        "/static/{name}": {
            "get": {
                "summary": "The chat page's scripts: chat.js and the vendored marked and DOMPurify",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "the script",
                        "content": {"text/javascript": {"schema": {"type": "string"}}},
                    },
                    **_errors(response_schema.DetailError, "404"),
                },
            }
        },
        "/health": {
            "get": {
                "summary": "200 once the model is loaded, with what is served; 503 while loading, draining or "
                "failed (with a reason code; details with the admin key only)",
                "responses": {
                    "200": _json(response_schema.Health, "ready"),
                    "503": _json(
                        response_schema.HealthProblem, "loading, draining or failed", headers=RETRY_AFTER
                    ),
                },
            }
        },
        "/prompt/{query}": {
            "get": {
                "summary": "Ask one question; the answer uses fresh web content, returned as numbered sources",
                "parameters": [
                    {"name": "query", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "stream",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["true", "false", "text"]},
                        "description": "true: Server-Sent Events (`token` events, then `done` with sources and "
                        "usage); text: plain text as it arrives, then the sources. `Accept: text/event-stream` "
                        "also asks for events.",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the answer",
                        "content": {
                            "application/json": {"schema": _ref(response_schema.PromptAnswer)},
                            "text/event-stream": {"schema": PROMPT_EVENT},
                            "text/plain": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(response_schema.DetailError, "400", "403", "414", "500", "503", "504"),
                },
            }
        },
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI-compatible chat completion, optionally streamed and web-augmented",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(request_schema.ChatCompletionRequest)}},
                },
                "responses": {
                    "200": {
                        "description": "the completion, or with stream: true its chunks as Server-Sent Events",
                        "content": {
                            "application/json": {"schema": _ref(response_schema.ChatCompletion)},
                            "text/event-stream": {"schema": CHAT_EVENT},
                        },
                    },
                    **openai_errors,
                },
            }
        },
        "/v1/completions": {
            "post": {
                "summary": "OpenAI-compatible text completion: the prompt continued as it is, no chat template",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(completion_request.CompletionRequest)}},
                },
                "responses": {
                    "200": {
                        "description": "the completion, or with stream: true its chunks as Server-Sent Events",
                        "content": {
                            "application/json": {"schema": _ref(response_schema.TextCompletion)},
                            "text/event-stream": {"schema": TEXT_EVENT},
                        },
                    },
                    **openai_errors,
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The loaded model, in OpenAI's list shape",
                "responses": {
                    "200": _json(response_schema.ModelList, "the list"),
                    **_errors(response_schema.OpenAIError, "500", "503"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        **OPS_PATHS,
    }


@cache
def spec() -> dict[str, Any]:
    """The whole OpenAPI document."""
    models = [(m, "validation") for m in _REQUESTS] + [(m, "serialization") for m in _RESPONSES]
    _, definitions = models_json_schema(models, ref_template=REF)  # type: ignore[arg-type]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ozfig",
            "version": "0.1.0",
            "description": "A self-hosted chat server for a fine-tuned Llama GGUF that answers with fresh web "
            "snippets. See docs/api.md.",
        },
        "paths": _paths(),
        "components": {"schemas": definitions.get("$defs", {})},
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(spec())
