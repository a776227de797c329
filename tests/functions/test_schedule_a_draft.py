"""A saved draft scheduled to go out later (PATCH /api/messages/{id}/schedule): it leaves the
drafts, waits for its time and goes out once, through the dispatch cycle, as the compose
page's Send later does for a draft."""

from __future__ import annotations

from datetime import timedelta

import httpx

from shared.core.services import Services
from shared.messages.dispatch import dispatch_cycle
from tests.conftest import Clock
from tests.functions.test_openapi import assert_error_shape
from tests.functions.test_scheduling import outbox_has
from tests.utils.factories import compose


async def test_a_draft_is_scheduled_and_goes_out_when_due(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    draft = await compose(client, auth, send=False, subject="Scheduled from a draft")
    assert draft["status"] == "draft"
    past = await client.patch(
        f"/api/messages/{draft['id']}/schedule",
        json={"send_at": (clock.now() - timedelta(minutes=1)).isoformat()},
        headers=auth,
    )
    assert_error_shape(past, 422, "send_at")
    send_at = clock.now() + timedelta(minutes=30)
    scheduled = await client.patch(
        f"/api/messages/{draft['id']}/schedule",
        json={"send_at": send_at.isoformat()},
        headers=auth,
    )
    assert scheduled.status_code == 200, scheduled.text
    view = scheduled.json()
    assert view["status"] == "scheduled" and view["send_at"].startswith(send_at.isoformat()[:19])
    drafts = (await client.get("/api/messages/drafts", headers=auth)).json()["items"]
    assert draft["id"] not in [d["id"] for d in drafts]
    edited = await client.patch(
        f"/api/messages/{draft['id']}", json={"subject": "Too late"}, headers=auth
    )
    assert edited.status_code == 409  # no longer a draft

    await dispatch_cycle(services)
    assert not await outbox_has(services, draft["id"])
    clock.advance(31 * 60)
    await dispatch_cycle(services)
    assert await outbox_has(services, draft["id"])
    sent = (await client.get(f"/api/messages/{draft['id']}", headers=auth)).json()
    assert sent["status"] == "sent"
    again = await client.patch(
        f"/api/messages/{draft['id']}/schedule",
        json={"send_at": (clock.now() + timedelta(hours=1)).isoformat()},
        headers=auth,
    )
    assert again.status_code == 409
