"""Conditional GET for what the seller's app polls every few seconds: a weak ETag over the
answer, and 304 Not Modified without a body when the app already holds that answer. The
storage reads are the same; what the app downloads and renders is not."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response

# Documented on a route that answers conditionally (`responses=NOT_MODIFIED`).
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the answer is the one `If-None-Match` names (no body)."}
}
# The answer is the seller's own: no shared cache may keep it, and the app asks every time.
_CACHE_CONTROL = "private, no-cache"


def etag(body: Any) -> str:
    """A weak ETag of an answer: its JSON, keys sorted (the same content, the same tag)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return f'W/"{hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]}"'


def _matches(header: str, tag: str) -> bool:
    """If-None-Match's weak comparison: any listed tag equal to ours, W/ or not, or *."""
    wanted = tag.removeprefix("W/")
    return any(
        t.strip() == "*" or t.strip().removeprefix("W/") == wanted for t in header.split(",")
    )


def answer(request: Request, response: Response, body: dict[str, Any]) -> dict[str, Any] | Response:
    """The body with its ETag, or 304 if the request's If-None-Match names it."""
    tag = etag(body)
    headers = {"ETag": tag, "Cache-Control": _CACHE_CONTROL}
    if _matches(request.headers.get("if-none-match", ""), tag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return body
