"""The OpenAPI 3.1 description of every route, written by hand and served at GET /openapi.json."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

OPENAI_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "examples": ["invalid_request_error", "server_error"]},
                "param": {
                    "type": ["string", "null"],
                    "description": "the field at fault, e.g. messages[0].role",
                },
                "code": {"type": "string", "examples": ["invalid_value", "invalid_json", "model_loading"]},
            },
        }
    },
}
DETAIL_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["detail", "code"],
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
}
SOURCE: dict[str, Any] = {
    "type": "object",
    "required": ["url", "text"],
    "properties": {"url": {"type": "string"}, "text": {"type": "string"}},
}
USAGE: dict[str, Any] = {
    "type": "object",
    "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
}
MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant"]},
        "content": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "text"],
                        "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
                    },
                },
            ]
        },
        "name": {"type": "string"},
    },
}
CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["messages"],
    "properties": {
        "model": {"type": "string", "description": "accepted and echoed; the one loaded model answers"},
        "messages": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Message"}},
        "max_tokens": {"type": ["integer", "null"], "minimum": 1, "description": "capped at --max-tokens"},
        "max_completion_tokens": {
            "type": ["integer", "null"],
            "minimum": 1,
            "description": "wins over max_tokens",
        },
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "frequency_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2},
        "presence_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2},
        "stop": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "maxItems": 4, "items": {"type": "string", "minLength": 1}},
                {"type": "null"},
            ]
        },
        "seed": {"type": ["integer", "null"]},
        "n": {"type": ["integer", "null"], "const": 1, "description": "only 1 is supported"},
        "stream": {"type": ["boolean", "null"]},
        "stream_options": {
            "type": ["object", "null"],
            "properties": {"include_usage": {"type": "boolean"}},
            "description": "only with stream: true",
        },
        "web_search": {
            "type": ["boolean", "null"],
            "default": False,
            "description": "ozfig extra: put DuckDuckGo snippets for the last user message into the prompt "
            "(the OzFig augmentation) and return them as `sources`",
        },
    },
}
CHAT_COMPLETION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "message": {
                        "type": "object",
                        "properties": {
                            "role": {"const": "assistant"},
                            "content": {"type": "string"},
                            "refusal": {"type": "null"},
                        },
                    },
                    "logprobs": {"type": "null"},
                    "finish_reason": {"enum": ["stop", "length"]},
                },
            },
        },
        "usage": {"$ref": "#/components/schemas/Usage"},
        "sources": {"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
    },
}
CHAT_CHUNK: dict[str, Any] = {
    "type": "object",
    "description": "one `data:` event of a stream; the stream ends with `data: [DONE]`. With "
    "stream_options.include_usage, every chunk has `usage: null` and a last chunk has `choices: []` and the usage.",
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion.chunk"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "delta": {
                        "type": "object",
                        "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}},
                    },
                    "logprobs": {"type": "null"},
                    "finish_reason": {"enum": ["stop", "length", None]},
                },
            },
        },
        "usage": {"oneOf": [{"$ref": "#/components/schemas/Usage"}, {"type": "null"}]},
        "sources": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/Source"},
            "description": "first chunk",
        },
    },
}
PROMPT_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["message", "sources", "usage"],
    "properties": {
        "message": {"type": "string"},
        "sources": {"type": "array", "items": {"$ref": "#/components/schemas/Source"}},
        "usage": {
            "type": "object",
            "properties": {"prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"}},
        },
    },
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": schema}}}}


def _errors(schema: str, *statuses: str) -> dict[str, Any]:
    reasons = {
        "400": "a bad field (named in the answer) or bad JSON",
        "404": "no such route",
        "413": "the body is larger than --max-body-bytes",
        "414": "the query is longer than --max-query-chars",
        "503": "the model is loading, or every slot and the queue are full (see Retry-After)",
    }
    return {status: _json(schema, reasons[status]) for status in statuses}


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "ozfig",
        "version": "0.1.0",
        "description": "A self-hosted chat server for a fine-tuned Llama GGUF that answers with fresh web "
        "snippets. See docs/api.md.",
    },
    "paths": {
        "/": {
            "get": {
                "summary": "The chat page for browsers (Accept prefers text/html), else the original's JSON hint",
                "responses": {
                    "200": {
                        "description": "the page or the hint",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "application/json": {
                                "schema": {"type": "object", "properties": {"message": {"type": "string"}}}
                            },
                        },
                    }
                },
            }
        },
        "/health": {
            "get": {
                "summary": "200 once the model is loaded, with what is served; 503 while loading or failed",
                "responses": {
                    "200": {
                        "description": "ready",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "503": {"description": "loading or failed"},
                },
            }
        },
        "/prompt/{query}": {
            "get": {
                "summary": "Ask one question; the answer uses fresh web snippets, returned as sources",
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
                            "application/json": {"schema": {"$ref": "#/components/schemas/PromptAnswer"}},
                            "text/event-stream": {"schema": {"type": "string"}},
                            "text/plain": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors("#/components/schemas/DetailError", "400", "414", "503"),
                },
            }
        },
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI-compatible chat completion, optionally streamed and web-augmented",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}},
                },
                "responses": {
                    "200": {
                        "description": "the completion, or with stream: true its chunks as Server-Sent Events",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletion"}},
                            "text/event-stream": {
                                "schema": {"$ref": "#/components/schemas/ChatCompletionChunk"}
                            },
                        },
                    },
                    **_errors("#/components/schemas/OpenAIError", "400", "413", "503"),
                },
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The loaded model, in OpenAI's list shape",
                "responses": {
                    "200": {
                        "description": "the list",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors("#/components/schemas/OpenAIError", "503"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
            }
        },
    },
    "components": {
        "schemas": {
            "Message": MESSAGE,
            "ChatRequest": CHAT_REQUEST,
            "ChatCompletion": CHAT_COMPLETION,
            "ChatCompletionChunk": CHAT_CHUNK,
            "Usage": USAGE,
            "Source": SOURCE,
            "PromptAnswer": PROMPT_ANSWER,
            "OpenAIError": OPENAI_ERROR,
            "DetailError": DETAIL_ERROR,
        }
    },
}


async def openapi(request: Request) -> Response:
    return JSONResponse(SPEC)
