"""Tracked Outlook activities and a record's timeline through the HTTP app, with the sync
cycle against the Graph stand-in: by mailbox, by record, by followed message, one with its
body; newest first and paged; only the seller's own mailbox (an admin's: every one)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from devtools.graph_standin import GraphStandIn
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.ids import new_message_id, partition_of
from shared.core.services import Services
from shared.crm import timeline_index
from shared.ops import timeline_index_build
from shared.outlook import mailboxes
from shared.outlook.sync import sync_mailbox
from tests.conftest import Clock
from tests.functions.test_openapi import assert_error_shape
from tests.graph.conftest import Seller
from tests.utils.factories import compose_body

CATEGORY = "Tracked to Engagement"


async def _other_seller(
    services: Services, standin: GraphStandIn, *, admin: bool = False
) -> dict[str, str]:
    email = f"other-{uuid.uuid4().hex[:8]}@contoso.example"
    standin.add_mailbox(email)
    await mailboxes.enrol(services, email, [])
    roles = (ADMIN_ROLE,) if admin else ()
    return {"Authorization": f"Bearer {make_dev_token(services.settings, email, roles=roles)}"}


async def _json(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def _lead_with_mail(
    seller: Seller, standin: GraphStandIn, services: Services, clock: Clock
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A lead, a followed message sent to it, then a categorised mail from it, synced."""
    address = f"lead-{uuid.uuid4().hex[:8]}@northwind.example"
    lead = await _json(
        await seller.http.post(
            "/api/records/lead",
            json={"name": "Northwind", "emails": [address]},
            headers=seller.auth,
        ),
        201,
    )
    sent = await _json(
        await seller.http.post(
            "/api/messages", json=compose_body(to=[address]), headers=seller.auth
        ),
        201,
    )
    assert sent["status"] == "sent" and sent["follow_state"] == "followed"
    await sync_mailbox(services, seller.email)  # baseline
    item = standin.deliver(
        seller.email,
        subject="Pricing question",
        body_html="<p>How much for 5 seats?</p>",
        sender=address,
        to=[seller.email],
        categories=[CATEGORY],
        received=clock.now() + timedelta(minutes=5),
    )
    report = await sync_mailbox(services, seller.email)
    assert report is not None and report.failed == 0
    return lead, sent, item


async def test_activities_by_mailbox_record_and_one_with_its_body(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    lead, sent, item = await _lead_with_mail(seller, standin, graph_services, clock)
    mine = await _json(await seller.http.get("/api/activities", headers=seller.auth))
    (activity,) = [
        a for a in mine["items"] if a["internet_message_id"] == item["internetMessageId"]
    ]
    assert activity["kind"] == "email" and activity["method"] == "category"
    assert activity["mailboxes"] == [seller.email] and activity["subject"] == "Pricing question"
    assert activity["regarding"] == [{"type": "lead", "id": lead["id"]}]
    one = await _json(
        await seller.http.get(f"/api/activities/{activity['id']}", headers=seller.auth)
    )
    assert "How much for 5 seats?" in one["body_html"]
    assert {k: v for k, v in one.items() if k != "body_html"} == activity
    by_record = await _json(
        await seller.http.get(f"/api/records/lead/{lead['id']}/activities", headers=seller.auth)
    )
    # The categorised mail (received later), then the followed mail's copy in Sent Items.
    ids = [a["id"] for a in by_record["items"]]
    assert ids[0] == activity["id"] and len(ids) == 2
    assert by_record["items"][1]["subject"] == "Your quote"
    assert by_record["continuation"] is None

    # The timeline: those items and the message with its KPIs, newest first.
    path = f"/api/records/lead/{lead['id']}/timeline"
    whole = await _json(await seller.http.get(path, headers=seller.auth))
    assert sorted(i["type"] for i in whole["items"]) == ["activity", "activity", "message"]
    assert whole["items"][0]["activity"]["id"] == activity["id"]
    assert [i["at"] for i in whole["items"]] == sorted(
        (i["at"] for i in whole["items"]), reverse=True
    )
    (message,) = [i["message"] for i in whole["items"] if i["type"] == "message"]
    assert message["id"] == sent["id"] and message["opens"] == 0 and "by_class" in message
    paged: list[dict[str, Any]] = []
    continuation = None
    for _ in range(4):
        params: dict[str, Any] = {"limit": 1}
        if continuation:
            params["continuation"] = continuation
        page = await _json(await seller.http.get(path, params=params, headers=seller.auth))
        paged += page["items"]
        continuation = page["continuation"]
        if continuation is None:
            break
    assert paged == whole["items"] and continuation is None
    bad = await seller.http.get(path, params={"continuation": "x"}, headers=seller.auth)
    assert_error_shape(bad, 422, "continuation")
    assert_error_shape(
        await seller.http.get("/api/records/lead/nope/timeline", headers=seller.auth), 404, "id"
    )
    assert_error_shape(
        await seller.http.get(
            f"/api/records/opportunity/{lead['id']}/timeline", headers=seller.auth
        ),
        422,
        "type",
    )


async def test_another_seller_sees_none_of_it_and_an_admin_sees_all(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    lead, sent, _ = await _lead_with_mail(seller, standin, graph_services, clock)
    mine = await _json(await seller.http.get("/api/activities", headers=seller.auth))
    activity_id = mine["items"][0]["id"]  # the categorised mail: the newest
    other = await _other_seller(graph_services, standin)
    assert_error_shape(
        await seller.http.get(f"/api/activities/{activity_id}", headers=other), 404, "id"
    )
    theirs = await _json(await seller.http.get("/api/activities", headers=other))
    assert activity_id not in [a["id"] for a in theirs["items"]]
    assert_error_shape(
        await seller.http.get("/api/activities", params={"mailbox": seller.email}, headers=other),
        404,
        "id",
    )
    for path in ("activities", "timeline"):
        shown = await _json(
            await seller.http.get(f"/api/records/lead/{lead['id']}/{path}", headers=other)
        )
        assert shown["items"] == []
    assert_error_shape(
        await seller.http.get(f"/api/messages/{sent['id']}/activities", headers=other), 404, "id"
    )
    admin = await _other_seller(graph_services, standin, admin=True)
    seen = await _json(
        await seller.http.get("/api/activities", params={"mailbox": seller.email}, headers=admin)
    )
    assert [a["id"] for a in seen["items"]] == [a["id"] for a in mine["items"]]
    await _json(await seller.http.get(f"/api/activities/{activity_id}", headers=admin))
    by_record = await _json(
        await seller.http.get(f"/api/records/lead/{lead['id']}/activities", headers=admin)
    )
    assert len(by_record["items"]) == 2 and by_record["items"][0]["id"] == activity_id
    # The admin's timeline has the items, but not another seller's message.
    timeline = await _json(
        await seller.http.get(f"/api/records/lead/{lead['id']}/timeline", headers=admin)
    )
    assert [i["type"] for i in timeline["items"]] == ["activity", "activity"]


async def test_replies_to_a_followed_message_are_its_activities(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    customer = "customer@fabrikam.example"
    created = await _json(
        await seller.http.post(
            "/api/messages", json=compose_body(to=[customer]), headers=seller.auth
        ),
        201,
    )
    (sent,) = [m for m in standin.sent(seller.email) if m["subject"] == "Your quote"][-1:]
    await sync_mailbox(graph_services, seller.email)
    reply = standin.deliver(
        seller.email,
        subject="Re: Your quote",
        body_html="<p>Yes please</p>",
        sender=customer,
        to=[seller.email],
        in_reply_to=sent["internetMessageId"],
        references=sent["internetMessageId"],
        conversation_id=sent["conversationId"],
        # Graph's times are whole seconds: a reply in the same second would tie with the sent
        # copy, and a tie is ordered by id.
        received=clock.now() + timedelta(minutes=5),
    )
    await sync_mailbox(graph_services, seller.email)
    found = await _json(
        await seller.http.get(f"/api/messages/{created['id']}/activities", headers=seller.auth)
    )
    # The reply (newest), and the followed mail's own copy in Sent Items.
    assert found["items"][0]["internet_message_id"] == reply["internetMessageId"]
    assert found["items"][0]["method"] == "token"
    assert {a["followed_message_id"] for a in found["items"]} == {created["id"]}


async def test_build_timeline_index_restores_missing_index_rows(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    lead, sent, _ = await _lead_with_mail(seller, standin, graph_services, clock)
    path = f"/api/records/lead/{lead['id']}/timeline"
    before = await _json(await seller.http.get(path, headers=seller.auth))
    assert len(before["items"]) == 3
    # Data stored before the index existed: no index rows for this seller at all.
    mailbox = timeline_index.mailbox(seller.email)
    async for row in graph_services.store.timeline_index.list_entities():
        if row["PartitionKey"].startswith(mailbox) or row["RowKey"].endswith(sent["id"]):
            await graph_services.store.timeline_index.delete_entity(
                row["PartitionKey"], row["RowKey"]
            )
    assert (await _json(await seller.http.get(path, headers=seller.auth)))["items"] == []
    report = await timeline_index_build.build(graph_services)
    assert report.activities >= 1 and report.messages >= 1
    assert await _json(await seller.http.get(path, headers=seller.auth)) == before


async def test_build_timeline_index_passes_over_a_sent_row_without_a_send_time(
    graph_services: Services,
) -> None:
    # A row marked sent with no `sent_at` (older data): the migration skips it, not fails.
    message_id = new_message_id("timeline.undated@contoso.example")
    await graph_services.store.messages.create_entity(
        {
            "PartitionKey": partition_of(message_id),
            "RowKey": message_id,
            "owner": "o" * 52,
            "status": "sent",
            "sent_at": "",
            "to": '["someone@fabrikam.example"]',
            "cc": "[]",
            "bcc": "[]",
        }
    )
    report = await timeline_index_build.build(graph_services)
    assert report.messages >= 0  # it finished
    found = [
        row
        async for row in graph_services.store.timeline_index.list_entities()
        if str(row["RowKey"]).endswith(message_id)
    ]
    assert found == []  # and indexed nothing for the undated row
