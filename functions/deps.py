"""FastAPI dependencies: the worker's services and the calling seller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from shared.core.auth import Seller
from shared.core.services import Services


async def services(request: Request) -> Services:
    """The services the app was built with (async: a sync dependency costs a thread hop)."""
    built: Services = request.app.state.services()
    return built


ServicesDep = Annotated[Services, Depends(services)]


async def seller(
    services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Seller:
    """The authenticated seller (401 otherwise, mapped in http_app)."""
    return await services.auth.authenticate(authorization)


SellerDep = Annotated[Seller, Depends(seller)]
