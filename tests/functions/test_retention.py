"""Retention of interaction blobs, and erasure of one person's interaction data."""

from __future__ import annotations

from datetime import timedelta

import httpx

from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.ids import new_message_id
from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from shared.ops.retention import purge_cycle
from shared.tracking.events import new_event
from shared.tracking.recording import record_event
from tests.conftest import Clock
from tests.utils.factories import compose
from tests.utils.storage import event_blobs


async def test_blobs_older_than_retention_are_purged(services: Services, clock: Clock) -> None:
    message = new_message_id("old@contoso.example")
    days = services.settings.retention_days
    for age in (days + 30, days + 1, days - 1, 0):
        event = new_event(
            message_id=message,
            kind="open",
            index=0,
            user_agent="",
            ip="",
            at=clock.now() - timedelta(days=age),
        )
        assert await record_event(services.store, event)
    report = await purge_cycle(services)
    assert report.blobs_deleted == 2
    assert len(await event_blobs(services, message)) == 2
    assert (await purge_cycle(services)).blobs_deleted == 0
    for name in await event_blobs(services, message):  # leave no old buckets to other tests' folds
        await services.store.interactions.delete_blob(name)


async def test_erasure_removes_one_addresss_interaction_data(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    admin = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'dpo@contoso.example', roles=(ADMIN_ROLE,))}"
    }
    theirs = await compose(client, auth, to=["erase.me@fabrikam.example"])
    kept = await compose(client, auth, to=["stays@fabrikam.example"])
    for sent in (theirs, kept):
        pixel = sent["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
        link = sent["html"].split('href="http://track.test', 1)[1].split('"', 1)[0]
        await client.get(pixel)
        clock.advance(45)  # a person reads before clicking (open-and-click at once: a scanner)
        await client.get(link)
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    assert (
        await client.post(
            "/api/admin/erasure", json={"email": "erase.me@fabrikam.example"}, headers=auth
        )
    ).status_code == 403
    bad = await client.post("/api/admin/erasure", json={"email": "nope"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "email"
    report = (
        await client.post(
            "/api/admin/erasure", json={"email": "Erase.Me@fabrikam.example"}, headers=admin
        )
    ).json()
    assert report == {
        "email": "erase.me@fabrikam.example",
        "messages": 1,
        "interaction_blobs_deleted": 2,
        "event_rows_deleted": 2,
        "activities_deleted": 0,
    }
    gone = (await client.get(f"/api/messages/{theirs['id']}?history=full", headers=auth)).json()
    assert gone["history"] == [] and gone["kpis"]["opens"] == 0 and gone["kpis"]["link_clicks"] == 0
    stays = (await client.get(f"/api/messages/{kept['id']}?history=full", headers=auth)).json()
    assert stays["kpis"]["opens"] == 1 and len(stays["history"]) == 2
