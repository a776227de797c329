"""Who is calling the seller API: Microsoft Entra ID access tokens in Azure, development
tokens signed with a local key on a laptop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from shared.core.errors import Unauthorized
from shared.core.ids import seller_key
from shared.core.settings import Settings

DEV_ISSUER = "email-engagement-dev"
DEV_AUDIENCE = "email-engagement"
_EMAIL_CLAIMS = ("preferred_username", "upn", "email")
ADMIN_ROLE = "Engagement.Admin"  # an app role of the API's Entra app registration


@dataclass(frozen=True, slots=True)
class Seller:
    """An authenticated seller; `key` is the partition their data lives in."""

    email: str
    roles: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return seller_key(self.email)


def make_dev_token(
    settings: Settings, email: str, *, hours: int = 12, roles: tuple[str, ...] = ()
) -> str:
    """A development bearer token for `email`, signed with the local key."""
    now = datetime.now(UTC)
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": email,
        "preferred_username": email,
        "roles": list(roles),
        "iat": now,
        "exp": now + timedelta(hours=hours),
    }
    return jwt.encode(claims, settings.dev_auth_key.get_secret_value(), algorithm="HS256")


def _seller_from(claims: dict[str, Any]) -> Seller:
    email = next(
        (claims[c] for c in _EMAIL_CLAIMS if isinstance(claims.get(c), str) and "@" in claims[c]),
        None,
    )
    if email is None:
        raise Unauthorized("the token names no seller mailbox")
    roles = claims.get("roles") or []
    return Seller(
        email=email.strip().lower(), roles=frozenset(r for r in roles if isinstance(r, str))
    )


class Authenticator:
    """Validates bearer tokens. Built once; the Entra key set is fetched and cached by PyJWT."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks = (
            jwt.PyJWKClient(settings.entra_jwks_url, cache_keys=True, lifespan=3600)
            if settings.auth_mode == "entra" and settings.entra_jwks_url
            else None
        )

    async def authenticate(self, authorization: str | None) -> Seller:
        """The seller behind an `Authorization: Bearer` header; Unauthorized otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a bearer token is required")
        token = token.strip()
        try:
            if self._jwks is None:
                claims = jwt.decode(
                    token,
                    self._settings.dev_auth_key.get_secret_value(),
                    algorithms=["HS256"],
                    audience=DEV_AUDIENCE,
                    issuer=DEV_ISSUER,
                    options={"require": ["exp", "iss", "aud"]},
                )
            else:
                key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=["RS256"],
                    audience=self._settings.entra_audience,
                    issuer=self._settings.entra_issuer,
                    options={"require": ["exp", "iss", "aud"]},
                )
        except jwt.PyJWTError as error:
            raise Unauthorized(f"invalid token: {type(error).__name__}") from None
        return _seller_from(claims)
