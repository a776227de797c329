"""FastAPI dependencies: the worker's services and the calling seller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.core.auth import Seller
from shared.core.services import Services


async def services(request: Request) -> Services:
    """The services the app was built with (async: a sync dependency costs a thread hop)."""
    built: Services = request.app.state.services()
    return built


ServicesDep = Annotated[Services, Depends(services)]

# Declares the bearer scheme in the OpenAPI document (Swagger UI's "Authorize" sends it);
# without auto_error it refuses nothing itself: the authenticator does, in the one 401 shape.
bearer = HTTPBearer(
    auto_error=False,
    description="Microsoft Entra ID access token in Azure; a development token locally "
    "(`make dev-token EMAIL=...`).",
)


async def seller(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Seller:
    """The authenticated seller (401 otherwise, mapped in http_app)."""
    header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    return await services.auth.authenticate(header)


SellerDep = Annotated[Seller, Depends(seller)]
