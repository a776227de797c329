"""Shared fixtures: a real Azurite per session, services built on it, an HTTP client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.bootstrap import build_services
from shared.core.auth import make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from tests.utils.azurite import azurite

TRACKING_BASE = "http://track.test"


@pytest.fixture(scope="session")
def connection_string() -> Iterator[str]:
    with azurite() as conn:
        yield conn


@pytest.fixture(scope="session")
def settings(connection_string: str) -> Settings:
    return Settings(
        storage_connection_string=connection_string,
        tracking_base_url=TRACKING_BASE,
        max_attachments=3,
        max_attachment_bytes=64 * 1024,
        max_total_attachment_bytes=100 * 1024,
        max_html_bytes=200_000,
    )


PERSON_USER_AGENT = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"


class Clock:
    """Real time plus an offset that tests move forward (never back), so a test can let the
    folding grace period pass without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> datetime:
        self.offset += timedelta(seconds=seconds)
        return self.now()


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
async def services(settings: Settings, clock: Clock) -> AsyncIterator[Services]:
    built = build_services(settings, clock.now)
    await ensure_storage(built.store)
    yield built
    await built.store.close()


@pytest.fixture(scope="session")
def app_env(connection_string: str) -> Iterator[None]:
    """Environment for code that reads settings itself (function_app, the CLI)."""
    old = dict(os.environ)
    os.environ.update(
        {"STORAGE_CONNECTION_STRING": connection_string, "TRACKING_BASE_URL": TRACKING_BASE}
    )
    yield
    os.environ.clear()
    os.environ.update(old)


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    from functions.http_app import create_app

    transport = httpx.ASGITransport(app=create_app(lambda: services))
    # A person's mail client, unless a test says otherwise: httpx's own user agent is an
    # HTTP library's, which the classifier rightly takes for a scanner.
    headers = {"User-Agent": PERSON_USER_AGENT, "Accept": "image/*,*/*;q=0.8"}
    async with httpx.AsyncClient(
        transport=transport, base_url=TRACKING_BASE, headers=headers
    ) as http:
        yield http


@pytest.fixture
def seller_token(settings: Settings) -> str:
    return make_dev_token(settings, "ana.seller@contoso.example")


@pytest.fixture
def auth(seller_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {seller_token}"}
