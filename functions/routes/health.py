"""Health: `GET /health` for load balancers and uptime checks (anonymous, touches nothing),
and `GET /api/admin/readiness` for an admin, which reaches storage and Graph.

Readiness answers 503 naming the failing check, with the error's type and HTTP status only:
error messages can hold account URLs and addresses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from functions.deps import ServicesDep
from functions.errors import error_responses
from functions.routes import ExactAnswers
from functions.routes.admin import AdminDep
from shared.bootstrap import import_off_loop
from shared.core.public import Public
from shared.core.services import Services
from shared.outlook import mailboxes

CHECK_SECONDS = 5.0  # each check's budget: an admin waiting on a sick dependency learns fast
router = APIRouter(tags=["health"], route_class=ExactAnswers)


class HealthPublic(Public):
    """The worker answers."""

    status: Literal["ok"]
    version: str


class CheckPublic(Public):
    """One dependency's check: its error's type and HTTP status only when it fails."""

    status: Literal["ok", "skipped", "failing"]
    reason: str | SkipJsonSchema[None] = Field(None, description="why it was skipped")
    error: str | SkipJsonSchema[None] = Field(None, description="the failure's type")
    http_status: int | SkipJsonSchema[None] = None
    latency_ms: float


class ReadinessPublic(Public):
    """Whether this worker reaches what it needs, check by check."""

    status: Literal["ok", "failing"]
    failing: list[str] = Field(description="the failing checks' names")
    checks: dict[str, CheckPublic] = Field(description="`storage`, and `graph` with Graph delivery")


@router.get("/health", response_model=HealthPublic)
async def health(request: Request) -> dict[str, str]:
    """Alive: no storage or Graph call, so it stays cheap under any probe rate."""
    return {"status": "ok", "version": request.app.version}


async def _storage(services: Services) -> None:
    store = services.store
    # One attempt each (no retries): an unreachable account fails in one round trip.
    await store.interactions.get_container_properties(retry_total=0)
    async for _ in store.state.list_entities(results_per_page=1, select=["RowKey"], retry_total=0):
        break


async def _graph(services: Services) -> str | None:
    boxes = await mailboxes.all_mailboxes(services)
    if not boxes:
        return "no mailbox enrolled"
    # The mailbox that synced well last, so that one left behind does not fail the check.
    mailbox = max(boxes, key=lambda b: (b.last_success_at, b.email)).email
    mail = await import_off_loop("shared.outlook.mail")  # the SDK, off the event loop
    # Its Inbox folder: Mail.ReadWrite, which the sync needs anyway, is enough.
    await mail.folder_id(services.graph(), mailbox, "inbox")
    return None


async def _check(run: Callable[[], Awaitable[str | None]]) -> dict[str, Any]:
    start = time.perf_counter()
    result: dict[str, Any]
    try:
        skipped = await asyncio.wait_for(run(), CHECK_SECONDS)
        result = {"status": "skipped", "reason": skipped} if skipped else {"status": "ok"}
    except Exception as error:
        result = {"status": "failing", "error": type(error).__name__}
        status = getattr(error, "status_code", None) or getattr(error, "response_status_code", None)
        if isinstance(status, int):
            result["http_status"] = status
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 1)
    return result


@router.get(
    "/api/admin/readiness",
    response_model=ReadinessPublic,
    responses={
        **error_responses(401, 403),
        503: {"model": ReadinessPublic, "description": "A check is failing; `failing` names it."},
    },
)
async def readiness(_: AdminDep, services: ServicesDep) -> JSONResponse:
    """Whether this worker reaches storage and (with Graph delivery) Graph: 200, or 503."""
    checks = {"storage": await _check(lambda: _storage(services))}
    if services.settings.delivery_backend == "graph":
        checks["graph"] = await _check(lambda: _graph(services))
    failing = sorted(name for name, check in checks.items() if check["status"] == "failing")
    body = {"status": "failing" if failing else "ok", "failing": failing, "checks": checks}
    return JSONResponse(body, status_code=503 if failing else 200)
