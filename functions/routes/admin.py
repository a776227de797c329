"""Admin API: enrol mailboxes and watch their sync health."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from functions.deps import SellerDep, ServicesDep
from functions.errors import BODY_ERRORS, error_responses
from functions.routes import ExactAnswers
from shared.core.auth import ADMIN_ROLE, Seller
from shared.core.errors import Forbidden
from shared.core.public import Public
from shared.ops import retention
from shared.ops.public import ErasurePublic
from shared.outlook import mailboxes
from shared.outlook.public import MailboxHealthPublic, MailboxListPublic


def admin(caller: SellerDep) -> Seller:
    """The caller, if they hold the admin app role."""
    if ADMIN_ROLE not in caller.roles:
        raise Forbidden(f"the {ADMIN_ROLE} role is required")
    return caller


AdminDep = Annotated[Seller, Depends(admin)]
router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    route_class=ExactAnswers,
    responses=error_responses(401, 403, 422, 503),
)
_BODY = error_responses(*BODY_ERRORS)


class EnrolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254)
    folders: list[str] = Field(default_factory=list, max_length=50)


@router.post("/mailboxes", status_code=201, response_model=MailboxHealthPublic, responses=_BODY)
async def enrol(body: EnrolIn, _: AdminDep, services: ServicesDep) -> dict[str, Any]:
    """Enrol a seller's mailbox for sending, reply detection and tracking."""
    return await mailboxes.enrol(services, body.email, body.folders)


@router.get("/mailboxes", response_model=MailboxListPublic)
async def health(
    _: AdminDep,
    services: ServicesDep,
    days: Annotated[int, Query(ge=1, le=mailboxes.ERROR_DAYS)] = 14,
) -> dict[str, Any]:
    """Sync health per mailbox: status, last sync, lag, items tracked, failing,
    undeliverable, errors by class in all and for each of the last `days` UTC days."""
    boxes = sorted(await mailboxes.all_mailboxes(services), key=lambda m: m.email)
    return {"mailboxes": [mailboxes.health(services, m, days=days) for m in boxes]}


class EngagementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class EngagementPublic(Public):
    """Whether email engagement is on for the organisation."""

    enabled: bool


@router.get("/engagement", response_model=EngagementPublic)
async def engagement(_: AdminDep, services: ServicesDep) -> dict[str, bool]:
    """Whether email engagement is on for the organisation."""
    return {"enabled": await services.org.enabled()}


@router.put("/engagement", response_model=EngagementPublic, responses=_BODY)
async def switch_engagement(
    body: EngagementIn, _: AdminDep, services: ServicesDep
) -> dict[str, bool]:
    """Turn email engagement on or off (other workers follow within 30 seconds)."""
    await services.org.set(body.enabled)
    return {"enabled": body.enabled}


class ErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


@router.post("/erasure", response_model=ErasurePublic, responses=_BODY)
async def erasure(body: ErasureIn, _: AdminDep, services: ServicesDep) -> dict[str, Any]:
    """Remove all interaction data about one contact's address, and say what was removed."""
    return await retention.erase(services, body.email)
