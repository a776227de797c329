"""Graph fixtures: the stand-in server, and the app's services pointed at it through the
real msgraph SDK (delivery from the seller's mailbox, sync cycles)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn
from functions.http_app import create_app
from shared.bootstrap import build_services
from shared.core.auth import make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.outlook import mailboxes
from tests.conftest import TRACKING_BASE, Clock
from tests.utils.factories import compose_body, ensure_contacts

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def standin(clock: Clock) -> Iterator[GraphStandIn]:
    with GraphStandIn(clock=clock.now) as server:
        yield server


@pytest.fixture(scope="session")
async def graph_services(
    settings: Settings, clock: Clock, standin: GraphStandIn
) -> AsyncIterator[Services]:
    configured = settings.model_copy(
        update={
            "delivery_backend": "graph",
            "graph_auth": "static",
            "graph_static_token": SecretStr(DEFAULT_TOKEN),
            "graph_base_url": standin.base_url,
        }
    )
    built = build_services(configured, clock.now)
    await ensure_storage(built.store)
    yield built
    await built.close()


@dataclass
class Seller:
    """A seller with an enrolled mailbox in the stand-in and an API client."""

    email: str
    auth: dict[str, str]
    http: httpx.AsyncClient


@pytest.fixture
async def seller(graph_services: Services, standin: GraphStandIn) -> AsyncIterator[Seller]:
    """A fresh seller per test, so tests never share a mailbox."""
    email = f"seller{next(_numbers)}@contoso.example"
    standin.add_mailbox(email)
    await mailboxes.enrol(graph_services, email, [])
    token = make_dev_token(graph_services.settings, email)
    transport = httpx.ASGITransport(app=create_app(lambda: graph_services))
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url=TRACKING_BASE) as http:
        # compose_body's recipient is a contact, so mail to it is followed whichever tests
        # ran before (records are organisation-wide).
        await ensure_contacts(http, auth, [compose_body()["to"][0]])
        yield Seller(email, auth, http)
