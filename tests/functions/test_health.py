"""Health and readiness: /health is anonymous and touches nothing; readiness is for admins
and reaches storage (Azurite) and Graph (the stand-in), answering 503 naming what fails."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from devtools.graph_standin import GraphStandIn
from functions.http_app import create_app
from shared.bootstrap import build_services
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.outlook.sync import sync_mailbox
from tests.conftest import TRACKING_BASE
from tests.graph import conftest as graph_fixtures
from tests.graph.conftest import Seller
from tests.utils.azurite import ACCOUNT, KEY, free_port

# The Graph stand-in and services pointed at it, as tests/graph has them.
standin = graph_fixtures.standin
graph_services = graph_fixtures.graph_services
seller = graph_fixtures.seller


def admin_auth(settings: Settings) -> dict[str, str]:
    token = make_dev_token(settings, "it@contoso.example", roles=(ADMIN_ROLE,))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def down() -> AsyncIterator[Services]:
    """Services whose storage account is a port nothing listens on."""
    closed = free_port()
    dead = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{closed}/{ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{closed}/{ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{closed}/{ACCOUNT};"
    )
    built = build_services(
        Settings(storage_connection_string=dead, tracking_base_url=TRACKING_BASE)
    )
    yield built
    await built.close()


async def call(services: Services, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(lambda: services))
    async with httpx.AsyncClient(transport=transport, base_url=TRACKING_BASE) as client:
        return await client.get(path, headers=headers)


async def test_health_is_anonymous_and_touches_no_storage(down: Services) -> None:
    started = time.perf_counter()
    response = await call(down, "/health", {})
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "0.1.0"}
    assert time.perf_counter() - started < 1


async def test_readiness_needs_the_admin_role(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    anonymous = await client.get("/api/admin/readiness")
    assert anonymous.status_code == 401
    seller_only = await client.get("/api/admin/readiness", headers=auth)
    assert seller_only.status_code == 403


async def test_readiness_reaches_storage(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/api/admin/readiness", headers=admin_auth(settings))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"storage"}  # no Graph check with the outbox backend
    assert body["checks"]["storage"]["status"] == "ok"
    assert body["checks"]["storage"]["latency_ms"] >= 0


async def test_readiness_answers_503_naming_storage_when_unreachable(down: Services) -> None:
    response = await call(down, "/api/admin/readiness", admin_auth(down.settings))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing" and body["failing"] == ["storage"]
    assert body["checks"]["storage"]["status"] == "failing"
    assert body["checks"]["storage"]["error"]
    for secret in (KEY, "AccountKey", "127.0.0.1"):
        assert secret not in response.text


async def test_readiness_reaches_graph_and_names_it_when_it_fails(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    await sync_mailbox(graph_services, seller.email)  # the mailbox that synced well last
    admin = admin_auth(graph_services.settings)
    ready = await seller.http.get("/api/admin/readiness", headers=admin)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["graph"]["status"] == "ok"
    assert any("/mailFolders/inbox" in path for _, path, _ in standin.requests)

    standin.fail_next(1, status=500, path_contains="/mailFolders/inbox")
    failing = await seller.http.get("/api/admin/readiness", headers=admin)
    assert failing.status_code == 503
    body = failing.json()
    assert body["failing"] == ["graph"] and body["checks"]["storage"]["status"] == "ok"
    assert body["checks"]["graph"]["http_status"] == 500
    assert seller.email not in failing.text
