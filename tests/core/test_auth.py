"""Entra ID access tokens, validated against keys served over HTTP as Entra serves them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.core.auth import (
    DEV_AUDIENCE,
    DEV_ISSUER,
    DEV_TENANT_ID,
    Authenticator,
    dev_seller,
    make_dev_token,
)
from shared.core.errors import Unauthorized
from shared.core.ids import seller_key
from shared.core.settings import Settings

TENANT = "11111111-2222-3333-4444-555555555555"
ANA_OID = "8f6c2a3e-5b1d-4c7e-9a2f-0d4e6b8c1a35"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
AUDIENCE = "api://email-engagement"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/discovery/v2.0/keys"
    server.shutdown()
    server.server_close()


def entra(jwks_url: str) -> Authenticator:
    return Authenticator(
        Settings(
            auth_mode="entra", entra_issuer=ISSUER, entra_audience=AUDIENCE, entra_jwks_url=jwks_url
        )
    )


def token(key: Any = KEY, kid: str = "key-1", **overrides: Any) -> str:
    now = datetime.now(UTC)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "preferred_username": "Ana.Seller@Contoso.example",
              "tid": TENANT, "oid": ANA_OID,
              "roles": ["Engagement.Admin"], "iat": now, "nbf": now, "exp": now + timedelta(hours=1)}  # fmt: skip
    claims.update(overrides)
    for name in [k for k, v in claims.items() if v is None]:
        del claims[name]
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_valid_entra_token_names_the_seller_by_tenant_and_object_id(jwks_url: str) -> None:
    seller = await entra(jwks_url).authenticate(f"Bearer {token()}")
    assert (seller.tenant_id, seller.object_id) == (TENANT, ANA_OID)
    assert seller.key == seller_key(TENANT, ANA_OID) and len(seller.key) == 52
    assert seller.email == "ana.seller@contoso.example"  # display only
    assert seller.roles == frozenset({"Engagement.Admin"})


async def test_an_address_change_keeps_the_seller_and_a_reused_address_is_someone_else(
    jwks_url: str,
) -> None:
    auth = entra(jwks_url)
    ana = await auth.authenticate(f"Bearer {token()}")
    renamed = await auth.authenticate(f"Bearer {token(preferred_username='ana.b@contoso.example')}")
    assert renamed.key == ana.key  # same tid and oid: the same seller, her data stays hers
    newcomer = await auth.authenticate(
        f"Bearer {token(oid='0b7e9c1d-2f3a-4b5c-8d6e-7f8091a2b3c4')}"
    )
    assert newcomer.email == ana.email and newcomer.key != ana.key


@pytest.mark.parametrize(
    "missing",
    [
        {"oid": None},
        {"tid": None},
        {"tid": None, "oid": None},  # only the address claims: not enough to be anyone
        {"oid": "ana.seller@contoso.example"},
        {"oid": ""},
    ],
)
async def test_entra_token_without_tenant_and_object_id_is_refused(
    jwks_url: str, missing: dict[str, Any]
) -> None:
    with pytest.raises(Unauthorized, match="tid and oid"):
        await entra(jwks_url).authenticate(f"Bearer {token(**missing)}")


async def test_a_token_with_only_an_email_claim_is_refused(jwks_url: str) -> None:
    only_email = token(preferred_username=None, tid=None, oid=None, email="ana@contoso.example")
    with pytest.raises(Unauthorized):
        await entra(jwks_url).authenticate(f"Bearer {only_email}")


@pytest.mark.parametrize(
    "bad",
    [
        {"aud": "api://someone-else"},
        {"iss": "https://login.microsoftonline.com/other-tenant/v2.0"},
        {"exp": datetime.now(UTC) - timedelta(minutes=5)},
        {"key": OTHER_KEY},
        {"preferred_username": "no-address"},
    ],
)
async def test_bad_entra_tokens_are_refused(jwks_url: str, bad: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized):
        await entra(jwks_url).authenticate(f"Bearer {token(**bad)}")


async def test_hs256_token_is_refused_in_entra_mode(jwks_url: str) -> None:
    forged = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "preferred_username": "a@b.example"},
        "k" * 32,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized):
        await entra(jwks_url).authenticate(f"Bearer {forged}")


async def test_dev_tokens_name_a_stable_id_made_from_the_address() -> None:
    settings = Settings()
    auth = Authenticator(settings)
    first = await auth.authenticate(f"Bearer {make_dev_token(settings, 'Ana@Contoso.example')}")
    again = await auth.authenticate(f"Bearer {make_dev_token(settings, 'ana@contoso.example')}")
    other = await auth.authenticate(f"Bearer {make_dev_token(settings, 'bruno@contoso.example')}")
    assert first.tenant_id == DEV_TENANT_ID and first.key == again.key != other.key
    assert first == dev_seller("ana@contoso.example")
    moved = make_dev_token(settings, "ana.b@contoso.example", object_id=first.object_id)
    assert (await auth.authenticate(f"Bearer {moved}")).key == first.key


@pytest.mark.parametrize("bad", ["ana", "ana@", "@contoso.example", "ana contoso.example", ""])
def test_dev_token_refuses_what_is_not_an_address(bad: str) -> None:
    with pytest.raises(ValueError, match="not an e-mail address"):
        make_dev_token(Settings(), bad)


async def test_dev_token_without_ids_is_refused() -> None:
    settings = Settings()
    now = datetime.now(UTC)
    old_style = jwt.encode(
        {
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "preferred_username": "ana@contoso.example",
            "exp": now + timedelta(hours=1),
        },
        settings.dev_auth_key.get_secret_value(),
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized, match="tid and oid"):
        await Authenticator(settings).authenticate(f"Bearer {old_style}")


def test_entra_mode_needs_its_settings() -> None:
    with pytest.raises(ValueError, match="ENTRA_ISSUER"):
        Settings(auth_mode="entra")


@pytest.mark.parametrize(
    "overrides",
    [
        {"auth_mode": "dev"},
        {
            "token_keys": {"k1": "local-development-tracking-key-do-not-use-in-azure"},
            "token_active_kid": "k1",
        },
        {"token_keys": {"k1": "short"}, "token_active_kid": "k1"},
    ],
)
def test_azure_environment_refuses_development_secrets(overrides: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "environment": "azure",
        "storage_blob_url": "https://acct.blob.core.windows.net",
        "storage_table_url": "https://acct.table.core.windows.net",
        "auth_mode": "entra",
        "entra_issuer": ISSUER,
        "entra_audience": AUDIENCE,
        "entra_jwks_url": "https://login.microsoftonline.com/common/discovery/v2.0/keys",
        "token_keys": {"k1": "x" * 40},
        "token_active_kid": "k1",
    }
    Settings(**base)  # the base itself is acceptable
    with pytest.raises(ValueError, match=r"."):
        Settings(**{**base, **overrides})
