"""Every error answer of the app, in one shape and one place: `{"error": {"field", "message"}}`
for validation, routing and domain errors alike; 503 with Retry-After when storage or
Graph is unavailable; 500 for anything else. The shape is declared here too (`ErrorPublic`),
with what the routes document of it (`error_responses`)."""

from __future__ import annotations

import logging
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException

from shared.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    """One field refused by validation."""

    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class ErrorBody(BaseModel):
    """What was wrong, naming the field."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(
        description="the field at fault (`attachments[0].name`, a query parameter), or "
        "`body`, `authorization`, `id`, `status`, `path`, `method`, `service`"
    )
    message: str
    details: list[ErrorDetail] | SkipJsonSchema[None] = Field(
        None, description="422 from validation: every field refused, the first one above"
    )


class ErrorPublic(BaseModel):
    """Every error answer of the app (documented, not built, by this model: the shape is
    fixed, so it forbids other keys)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


_MEANINGS = {
    400: "The body is not valid JSON.",
    401: "No bearer token, or an invalid one.",
    403: "Authenticated, but not allowed to do this.",
    404: "Not there, or not yours.",
    409: "Not in a state that allows this.",
    413: "The body, or a part of it, is too large.",
    422: "A field is invalid; `field` names it.",
    503: "Storage or Outlook is unavailable; retry after `Retry-After` seconds.",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


# What a route that takes a JSON body may answer besides its own errors: invalid JSON, and a
# body over the limit (the middleware's, or a part of it the services refuse).
BODY_ERRORS = (400, 413)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of these error statuses: each answers `ErrorPublic`."""
    return {
        status: {
            "model": ErrorPublic,
            "description": _MEANINGS[status],
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


def _field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _error(status: int, field: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": {"field": field, "message": message, **extra}}, status_code=status
    )


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0]
    if first.get("type") == "json_invalid":
        return _error(400, "body", "is not valid JSON")
    details = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in errors]
    return _error(422, _field(tuple(first["loc"])), first["msg"], details=details)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing's own errors (no such path, a method the path does not take) in the shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        field, message = "path", "no such route"
    elif exc.status_code == 405:
        field, message = "method", f"{request.method} is not allowed here"
    else:
        field, message = "request", exc.detail
    response = _error(exc.status_code, field, message)
    response.headers.update(exc.headers or {})
    return response


async def domain_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidInput):
        return _error(413 if exc.too_large else 422, exc.field, exc.message)
    if isinstance(exc, NotFound):
        return _error(404, "id", f"no such {exc}")
    if isinstance(exc, Conflict):
        return _error(409, "status", str(exc))
    if isinstance(exc, Forbidden):
        return _error(403, exc.field, str(exc))
    assert isinstance(exc, Unauthorized)
    return JSONResponse(
        {"error": {"field": "authorization", "message": str(exc)}},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


UNAVAILABLE_RETRY_AFTER = "10"  # seconds: storage and Graph outages are usually brief


def _unavailable(exc: BaseException) -> bool:
    """Storage unreachable or failing (connection refused, timeout, 5xx), or Graph
    throttling or failing on a seller request: worth a retry, not the caller's fault."""
    status = getattr(exc, "response_status_code", None)  # Graph (ODataError)
    if isinstance(status, int):
        return status >= 500 or status == 429
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429
    return isinstance(exc, AzureError | TimeoutError)


async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    """Whatever escaped the services still answers the one JSON error shape: 503 with
    Retry-After when a dependency is down, else 500."""
    if _unavailable(exc):
        logger.warning("a dependency is unavailable: %s", type(exc).__name__)
        response = _error(503, "service", "storage or Outlook is unavailable; retry shortly")
        response.headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
        return response
    logger.error("unexpected error", exc_info=exc)
    return _error(500, "service", "an unexpected error occurred")
