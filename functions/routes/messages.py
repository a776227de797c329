"""Seller API: compose, send, read and list followed email."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from functions import conditional
from functions.deps import SellerDep, ServicesDep
from functions.errors import BODY_ERRORS, error_responses
from functions.routes import ExactAnswers
from shared.assistant.reminders import ReminderIn
from shared.messages import compose, drafts, lifecycle, reading
from shared.messages.models import ComposeIn, DraftPatch, RescheduleIn
from shared.messages.public import (
    MessageBodyPublic,
    MessageListPublic,
    MessagePreferencesPublic,
    MessagePublic,
)
from shared.outlook import tracked
from shared.outlook.public import ActivityListPublic

router = APIRouter(
    prefix="/api/messages",
    tags=["messages"],
    route_class=ExactAnswers,
    responses=error_responses(401, 422, 503),
)
_SENDING: dict[int | str, dict[str, Any]] = {
    202: {"model": MessagePublic, "description": "Still `sending`: see `status`."}
}


def _still_sending(view: dict[str, Any], response: Response, done: int) -> dict[str, Any]:
    # 202: accepted, still going out (a transient failure is being retried); see `status`.
    response.status_code = 202 if view["status"] == "sending" else done
    return view


@router.post(
    "",
    status_code=201,
    response_model=MessagePublic,
    responses={**_SENDING, **error_responses(*BODY_ERRORS, 409)},
)
async def compose_message(
    body: ComposeIn,
    seller: SellerDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    """Create a message; followed by default, sent unless `send` is false. 201 with its
    status (`sent`, `scheduled`, `draft`, `failed`), or 202 while it is still `sending`.
    With an `Idempotency-Key`, a retry answers the first request's message."""
    composed = await compose.create(services, seller, body, idempotency_key=idempotency_key)
    if composed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _still_sending(composed.view, response, 201)


@router.post(
    "/{message_id}/send",
    response_model=MessagePublic,
    responses={**_SENDING, **error_responses(404, 409)},
)
async def send(
    message_id: str, seller: SellerDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    """Send a draft, a scheduled or a failed message now (202 while still `sending`)."""
    return _still_sending(await lifecycle.send(services, seller, message_id), response, 200)


@router.patch(
    "/{message_id}/schedule",
    response_model=MessagePublic,
    responses=error_responses(*BODY_ERRORS, 404, 409),
)
async def reschedule(
    message_id: str, body: RescheduleIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Schedule a draft, or move a scheduled message to another time."""
    return await lifecycle.reschedule(services, seller, message_id, body.send_at)


@router.post(
    "/{message_id}/cancel", response_model=MessagePublic, responses=error_responses(404, 409)
)
async def cancel(message_id: str, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Cancel a scheduled message that has not gone out."""
    return await lifecycle.cancel(services, seller, message_id)


@router.put(
    "/{message_id}/reminder",
    response_model=MessagePublic,
    responses=error_responses(*BODY_ERRORS, 404, 409),
)
async def set_reminder(
    message_id: str, body: ReminderIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Set or replace the message's follow-up reminder (editable after sending too)."""
    return await lifecycle.set_reminder(services, seller, message_id, body)


@router.delete(
    "/{message_id}/reminder", response_model=MessagePublic, responses=error_responses(404, 409)
)
async def cancel_reminder(
    message_id: str, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Remove the message's pending reminder."""
    return await lifecycle.cancel_reminder(services, seller, message_id)


@router.get(
    "/{message_id}/preferences",
    response_model=MessagePreferencesPublic,
    responses=error_responses(404),
)
async def view_preferences(
    message_id: str, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """The recipients' Follow Email preferences for this message (view preferences)."""
    return await reading.recipient_preferences(services, seller, message_id)


@router.patch(
    "/{message_id}",
    response_model=MessagePublic,
    responses=error_responses(*BODY_ERRORS, 404, 409),
)
async def edit_draft(
    message_id: str, body: DraftPatch, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Change a draft (recipients, subject, body, attachments, follow); its follow state is
    decided again. 409 for a message that is not a draft, or changed meanwhile."""
    return await drafts.update(services, seller, message_id, body)


@router.delete("/{message_id}", status_code=204, responses=error_responses(404, 409))
async def delete_draft(message_id: str, seller: SellerDep, services: ServicesDep) -> Response:
    """Delete a draft (409 for a message that is not a draft)."""
    await drafts.delete(services, seller, message_id)
    return Response(status_code=204)


@router.post(
    "/{message_id}/retry-follow",
    response_model=MessagePublic,
    responses=error_responses(404, 409),
)
async def retry_follow(message_id: str, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """Retry Follow: decide a draft's follow state again after its recipients or their
    preferences changed; `follow_reason` and `blocked_recipients` say why it is still not
    followed."""
    return await drafts.retry_follow(services, seller, message_id)


@router.get(
    "/{message_id}/activities",
    response_model=ActivityListPublic,
    responses=error_responses(404),
)
async def message_activities(
    message_id: str,
    seller: SellerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    continuation: str | None = None,
) -> dict[str, Any]:
    """The Outlook items tracked through this followed message (its replies), newest first."""
    return await tracked.by_message(
        services, seller, message_id, limit=limit, continuation=continuation
    )


@router.get("/drafts", response_model=MessageListPublic)
async def list_drafts(
    seller: SellerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    continuation: str | None = None,
) -> dict[str, Any]:
    """The seller's drafts (to reopen, edit or delete), a page at a time."""
    return await reading.list_drafts(services, seller, limit=limit, continuation=continuation)


@router.get("/{message_id}/body", response_model=MessageBodyPublic, responses=error_responses(404))
async def message_body(message_id: str, seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """The message's body as delivered, and as the seller wrote it."""
    return await reading.body(services, seller, message_id)


@router.get(
    "/{message_id}",
    response_model=MessagePublic,
    responses={**error_responses(404), **conditional.NOT_MODIFIED},
)
async def get_message(
    message_id: str,
    request: Request,
    response: Response,
    seller: SellerDep,
    services: ServicesDep,
    history: Literal["summary", "full"] = "summary",
) -> dict[str, Any] | Response:
    """The message, its KPIs and timeline (`?history=full` adds every event), current to
    the last event recorded. With the ETag of the last answer in `If-None-Match`, 304 while
    nothing changed: poll it for new engagement."""
    view = await reading.get(services, seller, message_id, full_history=history == "full")
    return conditional.answer(request, response, view)


@router.get("", response_model=MessageListPublic)
async def list_messages(
    seller: SellerDep,
    services: ServicesDep,
    sort: str = "sent_at",
    order: str = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    continuation: str | None = None,
    follow_state: Literal["followed", "not_followed", "blocked", "any"] = "followed",
) -> dict[str, Any]:
    """All followed emails with their KPI columns, sortable and paged."""
    return await reading.list_messages(
        services,
        seller,
        sort=sort,
        order=order,
        limit=limit,
        continuation=continuation,
        follow_state=follow_state,
    )
