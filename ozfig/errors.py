"""ozfig's own exception types.

Each error that can reach a user carries its HTTP status and a short reason; `server/api/http_errors.py`
maps them to answers in one place. Startup errors carry a paragraph that tells the user
what to do; the CLI prints it and exits non-zero, without a traceback.
"""

from __future__ import annotations


class OzfigError(Exception):
    """Base of every error ozfig raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    kind: str = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SettingsError(OzfigError):
    """A setting is out of its limits or of the wrong type."""

    status = 400
    code = "bad_setting"


# --- startup ---------------------------------------------------------------------------


class StartupError(OzfigError):
    """The server cannot start; the message says what to do."""

    status = 503
    code = "startup_failed"


class ModelNotFoundError(StartupError):
    code = "model_not_found"


class ModelFormatError(StartupError):
    code = "model_not_gguf"


class ModelLoadError(StartupError):
    code = "model_load_failed"


class ModelFetchError(StartupError):
    code = "model_fetch_failed"


class ChatTemplateError(StartupError):
    """The model's chat template does not compile, or does not put message contents into the prompt."""

    code = "chat_template_unusable"


# --- requests --------------------------------------------------------------------------


class RequestError(OzfigError):
    """Something is wrong with what the client sent."""

    status = 400
    code = "invalid_request"
    kind = "invalid_request_error"


class InvalidFieldError(RequestError):
    """One field of a JSON body is missing, of the wrong type or out of its limits; `param` names it."""

    code = "invalid_value"

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class UnsupportedFieldError(InvalidFieldError):
    """A field that ozfig understands but cannot honour (n > 1, tools, logprobs)."""

    code = "unsupported_value"


class UnsupportedSchemaError(UnsupportedFieldError):
    """A JSON schema (response_format, a tool's parameters) uses a feature the grammar cannot enforce;
    the message names the feature and where it is."""

    code = "unsupported_schema"


class InvalidJSONError(RequestError):
    code = "invalid_json"


class QueryTooLongError(RequestError):
    status = 414
    code = "query_too_long"


class PromptTooLongError(RequestError):
    status = 400
    code = "context_length_exceeded"


class TemplateRefusedError(RequestError):
    """The model's chat template refused the messages (its raise_exception, e.g. a role it does not take)."""

    code = "template_refused"


class BodyTooLargeError(RequestError):
    status = 413
    code = "body_too_large"


class InputTooLargeError(RequestError):
    """The messages hold more characters than --max-input-chars."""

    status = 413
    code = "input_too_large"


class UnsupportedMediaTypeError(RequestError):
    """A POST body that is not sent as application/json."""

    status = 415
    code = "unsupported_media_type"


class CrossSiteRequestError(RequestError):
    """A browser request another site started (an <img>, a no-cors fetch) may not generate."""

    status = 403
    code = "cross_site_request"


class NotFoundError(RequestError):
    status = 404
    code = "not_found"


class UnauthorizedError(RequestError):
    """No API key, or not one of the configured keys."""

    status = 401
    code = "invalid_api_key"


class HostNotAllowedError(RequestError):
    """The Host header names a host this server does not answer for (DNS rebinding)."""

    code = "host_not_allowed"


class OriginNotAllowedError(RequestError):
    """A CORS preflight from an origin not in --cors-origins."""

    status = 403
    code = "origin_not_allowed"


class ForbiddenError(RequestError):
    status = 403
    code = "forbidden"


class AdminKeyRequiredError(ForbiddenError):
    """An API key on an /admin/ route: only the admin key opens them."""

    code = "admin_key_required"


class AdminDisabledError(NotFoundError):
    """An /admin/ route on a server started without --admin-key: they are off."""

    code = "admin_disabled"


class ServiceUnavailableError(OzfigError):
    """The server cannot take the request now; the client may retry."""

    status = 503
    code = "unavailable"
    kind = "server_error"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelLoadingError(ServiceUnavailableError):
    code = "model_loading"


class OverloadedError(ServiceUnavailableError):
    code = "overloaded"


class EngineStoppedError(ServiceUnavailableError):
    """The engine thread has died: every request is refused, and the process exits for a restart."""

    code = "engine_stopped"


class ConcurrencyLimitError(ServiceUnavailableError):
    """More connections than the server's concurrency limit."""

    code = "concurrency_limit"


class DrainingError(ServiceUnavailableError):
    """The server is draining (SIGTERM or POST /admin/drain): retry on another replica."""

    code = "draining"


class DeadlineExceededError(OzfigError):
    status = 504
    code = "deadline_exceeded"
    kind = "timeout_error"


class EngineError(OzfigError):
    """llama.cpp failed while generating."""

    status = 500
    code = "engine_failed"


class GrammarError(RequestError):
    """llama.cpp could not parse a grammar (from a JSON schema, a tool list, or sent as such)."""

    code = "invalid_grammar"
