"""Send later with the local outbox backend: scheduled, dispatched on time, exactly once,
rescheduled, cancelled."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from shared.core.services import Services
from shared.messages.dispatch import dispatch_cycle
from tests.conftest import Clock
from tests.utils.factories import compose


async def outbox_has(services: Services, message_id: str) -> bool:
    return await services.store.outbox.get_blob_client(f"{message_id}.eml").exists()


async def test_scheduled_message_goes_out_when_due_and_only_once(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    send_at = clock.now() + timedelta(minutes=30)
    created = await compose(client, auth, send_at=send_at.isoformat())
    assert created["status"] == "scheduled" and created["sent_at"] is None
    await dispatch_cycle(services)
    assert not await outbox_has(services, created["id"])
    clock.advance(31 * 60)
    reports = await asyncio.gather(dispatch_cycle(services), dispatch_cycle(services))
    assert sum(r.sent for r in reports) == 1
    assert await outbox_has(services, created["id"])
    view = (await client.get(f"/api/messages/{created['id']}", headers=auth)).json()
    assert view["status"] == "sent"
    assert (await dispatch_cycle(services)).sent == 0
    late = await client.patch(
        f"/api/messages/{created['id']}/schedule",
        json={"send_at": (clock.now() + timedelta(hours=1)).isoformat()},
        headers=auth,
    )
    assert late.status_code == 409


async def test_reschedule_and_cancel_before_it_goes_out(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    created = await compose(client, auth, send_at=(clock.now() + timedelta(hours=2)).isoformat())
    later = clock.now() + timedelta(hours=5)
    moved = await client.patch(
        f"/api/messages/{created['id']}/schedule", json={"send_at": later.isoformat()}, headers=auth
    )
    assert moved.status_code == 200 and moved.json()["send_at"].startswith(later.isoformat()[:19])
    clock.advance(3 * 3600)
    await dispatch_cycle(services)
    assert not await outbox_has(services, created["id"])  # not at the old time
    cancelled = await client.post(f"/api/messages/{created['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    clock.advance(3 * 3600)
    await dispatch_cycle(services)
    assert not await outbox_has(services, created["id"])
    again = await client.post(f"/api/messages/{created['id']}/cancel", headers=auth)
    assert again.status_code == 409


async def test_send_at_in_the_past_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str], clock: Clock
) -> None:
    from tests.utils.factories import compose_body

    past = (clock.now() - timedelta(minutes=1)).isoformat()
    response = await client.post("/api/messages", json=compose_body(send_at=past), headers=auth)
    assert response.status_code == 422 and response.json()["error"]["field"] == "send_at"
    naive = await client.post(
        "/api/messages", json=compose_body(send_at="2030-01-01T09:00:00"), headers=auth
    )
    assert naive.status_code == 422 and naive.json()["error"]["field"] == "send_at"
