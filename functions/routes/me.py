"""Seller API: who am I, and my settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from functions.deps import SellerDep, ServicesDep
from functions.errors import BODY_ERRORS, error_responses
from functions.routes import ExactAnswers
from shared.core import me as profile
from shared.core.public import MePublic

router = APIRouter(
    prefix="/api/me",
    tags=["me"],
    route_class=ExactAnswers,
    responses=error_responses(401, 503),
)


@router.get("", response_model=MePublic)
async def who_am_i(seller: SellerDep, services: ServicesDep) -> dict[str, Any]:
    """The calling seller: address, Entra tenant and object id, roles, display time zone."""
    return await profile.me(services.store, seller)


@router.put("", response_model=MePublic, responses=error_responses(*BODY_ERRORS, 422))
async def set_settings(
    body: profile.MeIn, seller: SellerDep, services: ServicesDep
) -> dict[str, Any]:
    """Set the time zone the seller's app shows times in (an IANA name)."""
    return await profile.set_time_zone(services.store, seller, body)
