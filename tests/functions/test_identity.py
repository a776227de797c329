"""Sellers are (tenant id, object id), keyed in full: two sellers whose addresses collided
under the old 40-bit key, or who share a message partition now, never see or change each
other's messages, alerts or webhooks."""

from __future__ import annotations

import httpx

from shared.assistant.first_open_alerts import first_open_cycle
from shared.core.auth import dev_seller, make_dev_token
from shared.core.ids import message_partition
from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from tests.conftest import Clock
from tests.functions.test_fast_alerts import OUTLOOK, after_delivery, pixel_of
from tests.utils.factories import compose

# Found by a birthday search: the old key of a seller, 40 bits of SHA-256 of the address,
# is the same for both ("2dca376f"), so before they shared alerts and a webhook row.
COLLIDED = ("seller289866@contoso.example", "seller893903@contoso.example")
# Two object ids whose sellers' message partitions are the same ("ik46odai"): their messages
# share a partition, and only the owner column tells them apart.
SHARED_PARTITION = ("00000000-0000-4000-8000-00000004dade", "00000000-0000-4000-8000-0000000fdd52")


def bearer(services: Services, email: str, object_id: str | None = None) -> dict[str, str]:
    token = make_dev_token(services.settings, email, object_id=object_id)
    return {"Authorization": f"Bearer {token}"}


async def alert_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    answer = await client.get("/api/alerts", headers=headers)
    assert answer.status_code == 200, answer.text
    return [a["id"] for a in answer.json()["alerts"]]


async def first_open_alert(
    client: httpx.AsyncClient, services: Services, clock: Clock, seller: dict[str, str], to: str
) -> str:
    """A followed message of `seller`, opened by a person: its first-open alert's id."""
    sent = await compose(client, seller, to=[to])
    after_delivery(clock)
    await client.get(pixel_of(sent), headers=OUTLOOK)
    now = clock.advance(60)
    await first_open_cycle(services, now)
    await fold_cycle(services, now=now, grace=services.grace)
    alert = f"open-{sent['id']}"
    assert alert in await alert_ids(client, seller)
    return alert


def test_the_collided_pair_did_collide_under_the_old_key() -> None:
    ana, bruno = COLLIDED
    assert message_partition(ana) == message_partition(bruno)  # the old seller key, exactly
    assert dev_seller(ana).key != dev_seller(bruno).key
    x, y = (dev_seller(f"{n}@contoso.example") for n in ("x", "y"))
    assert len({x.key, y.key}) == 2 and all(len(k) == 52 for k in (x.key, y.key))


async def test_sellers_whose_old_keys_collided_keep_their_own_alerts_and_webhooks(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    ana, bruno = (bearer(services, email) for email in COLLIDED)
    for headers, path in ((ana, "ana"), (bruno, "bruno")):
        answer = await client.put(
            "/api/alerts/webhook", json={"url": f"http://127.0.0.1:9/{path}"}, headers=headers
        )
        assert answer.status_code == 200, answer.text
    alert = await first_open_alert(client, services, clock, ana, "collided.reader@fabrikam.example")

    assert alert not in await alert_ids(client, bruno)
    for action, body in (("dismiss", None), ("snooze", {"until": "2999-01-01T00:00:00Z"})):
        refused = await client.post(f"/api/alerts/{alert}/{action}", json=body, headers=bruno)
        assert refused.status_code == 404
    assert alert in await alert_ids(client, ana)
    # Bruno replacing and removing his webhook leaves Ana's, and her alert's delivery, alone.
    assert (await client.get("/api/alerts/webhook", headers=ana)).json()["url"].endswith("/ana")
    assert (await client.delete("/api/alerts/webhook", headers=bruno)).status_code == 204
    assert (await client.get("/api/alerts/webhook", headers=ana)).json()["url"].endswith("/ana")
    pending = [
        row["RowKey"]
        async for row in services.store.webhooks.query_entities("PartitionKey eq 'pending'")
    ]
    assert f"{dev_seller(COLLIDED[0]).key}|{alert}" in pending


async def test_sellers_sharing_a_message_partition_see_only_their_own_messages(
    client: httpx.AsyncClient, services: Services, clock: Clock
) -> None:
    x_oid, y_oid = SHARED_PARTITION
    x = bearer(services, "x.partition@contoso.example", x_oid)
    y = bearer(services, "y.partition@contoso.example", y_oid)
    sent = await compose(client, x, to=["shared.partition.reader@fabrikam.example"])
    theirs = await compose(client, y, to=["shared.partition.reader@fabrikam.example"])
    assert sent["id"][:8] == theirs["id"][:8]  # the same partition, by construction

    mine = await client.get("/api/messages", params={"follow_state": "any"}, headers=x)
    assert sent["id"] in [m["id"] for m in mine.json()["items"]]
    listed = await client.get("/api/messages", params={"follow_state": "any"}, headers=y)
    assert [m["id"] for m in listed.json()["items"]] == [theirs["id"]]
    for method, path, body in (
        ("GET", f"/api/messages/{sent['id']}", None),
        ("GET", f"/api/messages/{sent['id']}/preferences", None),
        ("POST", f"/api/messages/{sent['id']}/send", None),
        ("POST", f"/api/messages/{sent['id']}/cancel", None),
        ("DELETE", f"/api/messages/{sent['id']}/reminder", None),
        ("PATCH", f"/api/messages/{sent['id']}/schedule", {"send_at": "2999-01-01T09:00:00Z"}),
    ):
        answer = await client.request(method, path, json=body, headers=y)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await client.get(f"/api/messages/{sent['id']}", headers=x)).status_code == 200

    alert = await first_open_alert(
        client, services, clock, x, "shared.partition.reader2@fabrikam.example"
    )
    assert alert not in await alert_ids(client, y)


async def test_an_address_change_keeps_the_sellers_messages(
    client: httpx.AsyncClient, services: Services
) -> None:
    before = bearer(services, "kim.before@contoso.example")
    sent = await compose(client, before, to=["renamed.reader@fabrikam.example"])
    oid = dev_seller("kim.before@contoso.example").object_id
    after = bearer(services, "kim.after@contoso.example", oid)
    assert (await client.get(f"/api/messages/{sent['id']}", headers=after)).status_code == 200
    # Someone who is given the old address later is someone else.
    newcomer = bearer(
        services, "kim.before@contoso.example", "00000000-0000-4000-8000-0000000000aa"
    )
    assert (await client.get(f"/api/messages/{sent['id']}", headers=newcomer)).status_code == 404
