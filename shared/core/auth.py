"""Who is calling the seller API: Microsoft Entra ID access tokens in Azure, development
tokens signed with a local key on a laptop.

A seller is who Entra says they are: the tenant id and object id of the token (`tid`,
`oid`), which never change and are never reassigned. The e-mail address in the token is
display data (and the mailbox mail leaves from); nothing is keyed by it. Development tokens
carry the same claims: a fixed development tenant, and an object id made from the address
(`dev_object_id`), so one address is one stable seller on a laptop.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from email_validator import EmailNotValidError, validate_email

from shared.core.errors import Unauthorized
from shared.core.ids import message_partition, seller_key
from shared.core.settings import Settings

DEV_ISSUER = "email-engagement-dev"
DEV_AUDIENCE = "email-engagement"
_EMAIL_CLAIMS = ("preferred_username", "upn", "email")
ADMIN_ROLE = "Engagement.Admin"  # an app role of the API's Entra app registration
# Development identities: the tenant every development token names, and the namespace its
# object ids are made in (UUID 5 of the lower-cased address).
DEV_TENANT_ID = "00000000-0000-4000-8000-00000000d3e7"
DEV_USERS = uuid.UUID("6f1f6c52-3d55-4c1e-9d55-7e0d0e0a9f10")


@dataclass(frozen=True, slots=True)
class Seller:
    """An authenticated seller: who (tenant and object id), their address for display and
    sending, and their app roles."""

    tenant_id: str
    object_id: str
    email: str = ""
    roles: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """What everything the seller owns is keyed by (shared.core.ids.seller_key)."""
        return seller_key(self.tenant_id, self.object_id)

    @property
    def partition(self) -> str:
        """The message partition of the seller's new messages."""
        return message_partition(self.key)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def who(self) -> dict[str, str]:
        """The seller as an audit entry names them: the id, and the address as display."""
        return {"tenant_id": self.tenant_id, "object_id": self.object_id, "email": self.email}


def email_address(value: str) -> str:
    """`value` as a lower-cased e-mail address; ValueError if it is not one."""
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(f"not an e-mail address: {error}") from None
    return checked.normalized.lower()


def dev_object_id(email: str) -> str:
    """The development object id of an address: UUID 5 of it, lower-cased, in DEV_USERS."""
    return str(uuid.uuid5(DEV_USERS, email_address(email)))


def dev_seller(email: str, roles: tuple[str, ...] = ()) -> Seller:
    """The seller a development token for `email` authenticates as."""
    address = email_address(email)
    return Seller(DEV_TENANT_ID, dev_object_id(address), address, frozenset(roles))


def make_dev_token(
    settings: Settings,
    email: str,
    *,
    hours: int = 12,
    roles: tuple[str, ...] = (),
    object_id: str | None = None,
) -> str:
    """A development bearer token for `email` (ValueError if it is not an address), signed
    with the local key. The object id is made from the address unless given (the same
    person after an address change keeps theirs)."""
    address = email_address(email)
    oid = str(uuid.UUID(object_id)) if object_id else dev_object_id(address)
    now = datetime.now(UTC)
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": oid,
        "tid": DEV_TENANT_ID,
        "oid": oid,
        "preferred_username": address,
        "roles": list(roles),
        "iat": now,
        "exp": now + timedelta(hours=hours),
    }
    return jwt.encode(claims, settings.dev_auth_key.get_secret_value(), algorithm="HS256")


def _guid(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _seller_from(claims: dict[str, Any]) -> Seller:
    tenant_id, object_id = _guid(claims.get("tid")), _guid(claims.get("oid"))
    if tenant_id is None or object_id is None:
        raise Unauthorized("the token names no seller: tid and oid are required")
    email = next(
        (claims[c] for c in _EMAIL_CLAIMS if isinstance(claims.get(c), str) and "@" in claims[c]),
        None,
    )
    if email is None:
        raise Unauthorized("the token names no seller mailbox")
    roles = claims.get("roles") or []
    return Seller(
        tenant_id,
        object_id,
        email.strip().lower(),
        frozenset(r for r in roles if isinstance(r, str)),
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
