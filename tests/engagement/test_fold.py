"""Folding on Azurite: catching up after an outage, unknown messages, doubled cycles."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.bootstrap import build_services
from shared.core.ids import new_message_id
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.engagement.fold import fold_cycle, read_cursor
from shared.tracking.events import new_event
from shared.tracking.recording import record_event
from tests.conftest import PERSON_USER_AGENT, TRACKING_BASE, Clock
from tests.utils.factories import compose


@pytest.fixture
async def worker(settings: Settings, clock: Clock) -> AsyncIterator[Services]:
    """A fold worker's own services (clients of its own, as each instance has)."""
    built = build_services(settings, clock.now)
    await ensure_storage(built.store)
    yield built
    await built.store.close()


@pytest.fixture
async def worker_client(worker: Services) -> AsyncIterator[httpx.AsyncClient]:
    from functions.http_app import create_app

    transport = httpx.ASGITransport(app=create_app(lambda: worker))
    headers = {"User-Agent": PERSON_USER_AGENT, "Accept": "image/*,*/*;q=0.8"}
    async with httpx.AsyncClient(
        transport=transport, base_url=TRACKING_BASE, headers=headers
    ) as http:
        yield http


async def test_catching_up_after_an_hour_folds_every_event_once(
    worker_client: httpx.AsyncClient, auth: dict[str, str], worker: Services, clock: Clock
) -> None:
    client, services = worker_client, worker
    grace = services.grace
    await fold_cycle(services, now=clock.advance(60), grace=grace)  # settle earlier tests
    sent = await compose(client, auth)
    stranger = new_message_id("nobody@contoso.example")  # signed tokens of a deleted message
    writes = []
    for minute in range(0, 90, 7):  # events spread over an hour and a half
        at = clock.advance(7 * 60)
        writes.append(
            record_event(
                services.store,
                new_event(
                    message_id=sent["id"],
                    kind="open",
                    index=0,
                    user_agent=PERSON_USER_AGENT,
                    ip="",
                    at=at,
                ),
            )
        )
        writes.append(
            record_event(
                services.store,
                new_event(
                    message_id=stranger, kind="click", index=minute, user_agent="", ip="", at=at
                ),
            )
        )
    assert all(await asyncio.gather(*writes))
    now = clock.advance(grace.total_seconds() + 20)
    report = await fold_cycle(services, now=now, grace=grace)
    assert report.events == 26 and report.orphans == 13
    again = await fold_cycle(services, now=now, grace=grace)
    assert again.events == 0
    entity = await services.store.messages.get_entity(sent["id"][:8], sent["id"])
    assert entity["opens"] == 13
    assert await read_cursor(services.store, sent["id"]) >= entity["folded_bucket"]
    shown = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    assert shown["kpis"]["opens"] == 13 and shown["kpis_complete"] is True
