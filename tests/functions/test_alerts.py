"""First-open alerts: created once by the fold, listed, snoozed, dismissed, per seller."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from shared.core.auth import make_dev_token
from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from tests.conftest import Clock
from tests.utils.factories import compose


async def alert_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    return [a["id"] for a in (await client.get("/api/alerts", headers=headers)).json()["alerts"]]


async def test_first_open_alert_is_created_once_and_can_be_snoozed_and_dismissed(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    seller = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'alerted@contoso.example')}"
    }
    draft = await compose(client, seller, send=False, regarding={"type": "contact", "id": "c-1"})
    pixel = draft["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
    await client.get(pixel)  # the seller's own preview: no alert
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    assert f"open-{draft['id']}" not in await alert_ids(client, seller)
    await client.post(f"/api/messages/{draft['id']}/send", headers=seller)
    await asyncio.gather(*(client.get(pixel) for _ in range(3)))
    now = clock.advance(60)
    await asyncio.gather(
        fold_cycle(services, now=now, grace=services.grace),
        fold_cycle(services, now=now, grace=services.grace),
    )
    listed = (await client.get("/api/alerts", headers=seller)).json()["alerts"]
    assert [a["id"] for a in listed] == [f"open-{draft['id']}"]
    assert listed[0]["kind"] == "first_open" and listed[0]["regarding"] == {
        "type": "contact",
        "id": "c-1",
    }
    await client.get(pixel)
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    assert len(await alert_ids(client, seller)) == 1  # later opens make no new alert
    other = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'someone.else@contoso.example')}"
    }
    assert await alert_ids(client, other) == []
    assert (
        await client.post(f"/api/alerts/open-{draft['id']}/dismiss", headers=other)
    ).status_code == 404
    until = (clock.now() + timedelta(hours=1)).isoformat()
    snoozed = await client.post(
        f"/api/alerts/open-{draft['id']}/snooze", json={"until": until}, headers=seller
    )
    assert snoozed.status_code == 200
    assert await alert_ids(client, seller) == []
    clock.advance(2 * 3600)
    assert await alert_ids(client, seller) == [f"open-{draft['id']}"]
    past = await client.post(
        f"/api/alerts/open-{draft['id']}/snooze",
        json={"until": "2020-01-01T00:00:00Z"},
        headers=seller,
    )
    assert past.status_code == 422 and past.json()["error"]["field"] == "until"
    assert (
        await client.post(f"/api/alerts/open-{draft['id']}/dismiss", headers=seller)
    ).status_code == 200
    assert await alert_ids(client, seller) == []


async def test_the_list_answers_304_while_nothing_changed(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    seller = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'polling@contoso.example')}"
    }

    async def poll(tag: str | None) -> httpx.Response:
        headers = {**seller, **({"If-None-Match": tag} if tag else {})}
        return await client.get("/api/alerts", headers=headers)

    empty = await poll(None)
    assert empty.status_code == 200 and empty.json() == {"alerts": []}
    tag = empty.headers["etag"]
    assert tag.startswith('W/"') and empty.headers["cache-control"] == "private, no-cache"
    same = await poll(tag)
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == tag
    assert (await poll(f'"other", {tag.removeprefix("W/")}')).status_code == 304

    # A first open: a new card, a new tag.
    sent = await compose(client, seller)
    pixel = sent["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
    await client.get(pixel)
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    fresh = await poll(tag)
    assert fresh.status_code == 200 and [a["id"] for a in fresh.json()["alerts"]] == [
        f"open-{sent['id']}"
    ]
    assert fresh.headers["etag"] != tag
    assert (await poll(fresh.headers["etag"])).status_code == 304
    # Snoozed, the card goes: the list changed; when the snooze ends, it is back.
    until = (clock.now() + timedelta(hours=1)).isoformat()
    await client.post(
        f"/api/alerts/open-{sent['id']}/snooze", json={"until": until}, headers=seller
    )
    snoozed = await poll(fresh.headers["etag"])
    assert snoozed.status_code == 200 and snoozed.json() == {"alerts": []}
    assert snoozed.headers["etag"] == tag  # the same answer as before: the same tag
    clock.advance(2 * 3600)
    assert (await poll(tag)).status_code == 200
    # Another seller's tag never hides this seller's cards.
    other = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'other.poll@contoso.example')}"
    }
    theirs = (await client.get("/api/alerts", headers=other)).headers["etag"]
    assert (await poll(theirs)).status_code == 200
