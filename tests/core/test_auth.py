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

from shared.core.auth import Authenticator
from shared.core.errors import Unauthorized
from shared.core.settings import Settings

ISSUER = "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0"
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
              "roles": ["Engagement.Admin"], "iat": now, "nbf": now, "exp": now + timedelta(hours=1)}  # fmt: skip
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


async def test_valid_entra_token_names_the_seller(jwks_url: str) -> None:
    seller = await entra(jwks_url).authenticate(f"Bearer {token()}")
    assert seller.email == "ana.seller@contoso.example"
    assert seller.roles == frozenset({"Engagement.Admin"})


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
