"""Seller API: contacts, leads and accounts; recipients' follow preferences; send-time advice."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import EmailStr

from functions.deps import SellerDep, ServicesDep
from functions.errors import BODY_ERRORS, error_responses
from functions.routes import ExactAnswers
from shared.core.errors import InvalidInput
from shared.crm import preferences, records
from shared.crm.public import AdvicePublic, PreferencesPublic, RecordListPublic, RecordPublic
from shared.crm.records import RecordType
from shared.outlook import record_timeline, tracked
from shared.outlook.public import ActivityListPublic, TimelinePublic

router = APIRouter(
    prefix="/api",
    tags=["records"],
    route_class=ExactAnswers,
    responses=error_responses(401, 422, 503),
)


@router.post(
    "/records/{record_type}",
    status_code=201,
    response_model=RecordPublic,
    responses=error_responses(*BODY_ERRORS),
)
async def create(
    record_type: str, body: records.RecordIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Create a contact, lead or account (records are the organisation's, shared by all its
    sellers)."""
    return await records.create(services, seller, record_type, body)


@router.get(
    "/records/{record_type}/{record_id}",
    response_model=RecordPublic,
    responses=error_responses(404),
)
async def read(
    record_type: str, record_id: str, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """A record, with the history of its Follow Email and addresses (who, when, old, new)."""
    return await records.get(services, record_type, record_id, history=True, caller=seller)


Limit = Annotated[int, Query(ge=1, le=200)]


@router.get(
    "/records/{record_type}/{record_id}/timeline",
    response_model=TimelinePublic,
    responses=error_responses(404),
)
async def timeline(
    record_type: str,
    record_id: str,
    seller: SellerDep,
    services: ServicesDep,
    limit: Limit = 50,
    continuation: str | None = None,
) -> dict[str, Any]:
    """The record's timeline, newest first: the followed messages you sent to any of its
    addresses or regarding it, with their KPIs, and the Outlook items tracked to it (your
    mailbox's; every mailbox's for an admin)."""
    return await record_timeline.timeline(
        services, seller, record_type, record_id, limit=limit, continuation=continuation
    )


@router.get(
    "/records/{record_type}/{record_id}/activities",
    response_model=ActivityListPublic,
    responses=error_responses(404),
)
async def record_activities(
    record_type: str,
    record_id: str,
    seller: SellerDep,
    services: ServicesDep,
    limit: Limit = 50,
    continuation: str | None = None,
) -> dict[str, Any]:
    """The Outlook items tracked to the record, newest first (your mailbox's; every
    mailbox's for an admin)."""
    return await tracked.by_record(
        services, seller, record_type, record_id, limit=limit, continuation=continuation
    )


@router.patch(
    "/records/{record_type}/{record_id}",
    response_model=RecordPublic,
    responses=error_responses(*BODY_ERRORS, 403, 404, 409),
)
async def update(
    record_type: str,
    record_id: str,
    body: records.RecordPatch,
    seller: SellerDep,
    services: ServicesDep,
) -> dict[str, Any]:
    """Change a record, its Follow Email preference included. Undoing an opt-out (Do Not
    Allow back to Allow, or an address removed from a Do Not Allow record) needs the admin
    role: 403 otherwise, naming the field."""
    return await records.update(services, seller, record_type, record_id, body)


@router.get("/records", response_model=RecordListPublic)
async def search(
    seller: SellerDep,
    services: ServicesDep,
    email: EmailStr | None = None,
    q: Annotated[str, Query(max_length=200)] = "",
    record_type: Annotated[RecordType | None, Query(alias="type")] = None,
    limit: Limit = 50,
    continuation: str | None = None,
) -> dict[str, Any]:
    """`email`: every record with this address. Otherwise a page of the records whose name,
    a word of it, an address or a domain starts with `q` (every record by name without it),
    of one `type` or all."""
    if email is not None:
        if q or continuation:
            raise InvalidInput("q", "search by email or by q, not both")
        found = await records.by_address(services, email, caller=seller)
        return {"records": found, "continuation": None}
    return await records.find(
        services, seller, q, record_type=record_type, limit=limit, continuation=continuation
    )


@router.get("/preferences", response_model=PreferencesPublic)
async def view_preferences(
    _: SellerDep,
    services: ServicesDep,
    to: Annotated[list[EmailStr], Query()],
    cc: Annotated[list[EmailStr], Query()] = [],  # noqa: B006  (FastAPI copies defaults)
    bcc: Annotated[list[EmailStr], Query()] = [],  # noqa: B006
) -> dict[str, Any]:
    """Whether a message to these recipients may be followed, and why not."""
    return await preferences.recipient_preferences(services, list(to), list(cc), list(bcc))


@router.get("/advice", response_model=AdvicePublic)
async def advice(
    seller: SellerDep, services: ServicesDep, to: Annotated[list[EmailStr], Query()]
) -> dict[str, Any]:
    """When to send to this recipient (one recipient only, with an address on record)."""
    return await preferences.send_time_advice(services, seller, list(to))
