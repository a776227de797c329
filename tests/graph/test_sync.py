"""The mailbox sync cycle against the stand-in: replies, category and folder tracking,
lost delta tokens, throttling, the concurrency limit, retries and the admin health view."""

from __future__ import annotations

import json
from typing import Any

import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from devtools.graph_standin import GraphStandIn
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.services import Services
from shared.outlook import mailboxes
from shared.outlook.sync import retry_mailbox, sync_mailbox
from tests.graph.conftest import Seller
from tests.utils.factories import compose_body

CUSTOMER = "customer@fabrikam.example"
CATEGORY = "Tracked to Engagement"


async def send_followed(
    seller: Seller, standin: GraphStandIn
) -> tuple[dict[str, Any], dict[str, Any]]:
    created = (
        await seller.http.post(
            "/api/messages", json=compose_body(to=[CUSTOMER]), headers=seller.auth
        )
    ).json()
    (sent,) = [m for m in standin.sent(seller.email) if m["subject"] == "Your quote"][-1:]
    return created, sent


async def activities(services: Services) -> dict[str, dict[str, Any]]:
    return {
        row["internet_message_id"]: dict(row)
        async for row in services.store.activities.list_entities()
    }


async def test_replies_are_counted_once_and_automatic_ones_not(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    created, sent = await send_followed(seller, standin)
    await sync_mailbox(graph_services, seller.email)  # baseline
    standin.deliver(
        seller.email,
        subject="Re: Your quote",
        body_html="<p>Yes please</p>",
        sender=CUSTOMER,
        to=[seller.email],
        in_reply_to=sent["internetMessageId"],
        references=sent["internetMessageId"],
        conversation_id=sent["conversationId"],
    )
    standin.deliver(
        seller.email,
        subject="Automatic reply: Your quote",
        body_html="<p>Away</p>",
        sender=CUSTOMER,
        to=[seller.email],
        in_reply_to=sent["internetMessageId"],
        headers={"Auto-Submitted": "auto-replied"},
        conversation_id=sent["conversationId"],
    )
    standin.deliver(
        seller.email,
        subject="Re: Your quote",
        body_html="<p>Also from me</p>",
        sender=seller.email,
        to=[CUSTOMER],
        conversation_id=sent["conversationId"],
        folder="inbox",
    )
    standin.deliver(
        seller.email,
        subject="Unrelated",
        body_html="<p>Hi</p>",
        sender="other@fabrikam.example",
        to=[seller.email],
    )
    report = await sync_mailbox(graph_services, seller.email)
    assert report is not None and report.replies == 2  # the real one and the automatic one
    shown = (
        await seller.http.get(f"/api/messages/{created['id']}?history=full", headers=seller.auth)
    ).json()
    assert shown["kpis"]["replies"] == 1
    kinds = sorted((h["event"], h["counted"]) for h in shown["history"] if "reply" in h["event"])
    assert kinds == [("auto_reply", False), ("reply", True)]
    assert any(t["event"] == "reply" for t in shown["timeline"])
    await sync_mailbox(graph_services, seller.email)  # nothing new: nothing changes
    again = (await seller.http.get(f"/api/messages/{created['id']}", headers=seller.auth)).json()
    assert again["kpis"]["replies"] == 1
    # replies to followed mail are tracked as activities too (conversation tracking)
    tracked = await activities(graph_services)
    reply_ids = [
        m["internetMessageId"]
        for m in standin.messages(seller.email, "inbox")
        if m["subject"].startswith("Re:")
    ]
    assert all(
        tracked[i]["method"] == "token" for i in reply_ids if tracked[i]["sender"] == CUSTOMER
    )


async def test_category_tracks_untracks_and_survives_deletion_and_rename(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    await sync_mailbox(graph_services, seller.email)
    mailbox = await mailboxes.load(graph_services, seller.email)
    assert CATEGORY in [c["displayName"] for c in standin.master_categories(seller.email)]
    lead = (
        await seller.http.post(
            "/api/records/lead",
            json={"name": "Northwind lead", "emails": ["lead@northwind.example"]},
            headers=seller.auth,
        )
    ).json()
    item = standin.deliver(
        seller.email,
        subject="Pricing question",
        body_html="<p>How much?</p>",
        sender="lead@northwind.example",
        to=[seller.email],
        categories=[CATEGORY],
    )
    await sync_mailbox(graph_services, seller.email)
    activity = (await activities(graph_services))[item["internetMessageId"]]
    assert activity["status"] == "tracked" and activity["method"] == "category"
    assert json.loads(activity["regarding"]) == [{"type": "lead", "id": lead["id"]}]
    blob = await graph_services.store.activity_blobs.download_blob(f"{activity['RowKey']}.html")
    assert await blob.readall() == b"<p>How much?</p>"
    standin.set_categories(seller.email, item["id"], [])
    await sync_mailbox(graph_services, seller.email)
    assert (await activities(graph_services))[item["internetMessageId"]]["status"] == "untracked"
    # the category is deleted from the master list: the next cycle recreates it
    standin.delete_master_category(seller.email, mailbox.category_id)
    await sync_mailbox(graph_services, seller.email)
    recreated = await mailboxes.load(graph_services, seller.email)
    assert recreated.category_id != mailbox.category_id
    assert CATEGORY in [c["displayName"] for c in standin.master_categories(seller.email)]
    # renamed: known by id, tracking follows the new name
    standin.rename_master_category(seller.email, recreated.category_id, "Engagement")
    other = standin.deliver(
        seller.email,
        subject="Renewal",
        body_html="<p>Renew</p>",
        sender="lead@northwind.example",
        to=[seller.email],
        categories=["Engagement"],
    )
    await sync_mailbox(graph_services, seller.email)
    assert (await activities(graph_services))[other["internetMessageId"]]["status"] == "tracked"
    assert (await mailboxes.load(graph_services, seller.email)).category_name == "Engagement"


async def test_folder_tracking_writes_the_category_back_in_batches(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    folder = standin.add_folder(seller.email, "Customers")
    await mailboxes.enrol(graph_services, seller.email, [folder])
    for n in range(25):
        standin.deliver(
            seller.email,
            folder=folder,
            subject=f"Order {n}",
            body_html="<p>Order</p>",
            sender=f"buyer{n}@fabrikam.example",
            to=[seller.email],
        )
    batches_before = len([r for r in standin.requests if "$batch" in r[1]])
    report = await sync_mailbox(graph_services, seller.email)
    assert report is not None and report.tracked == 25
    # Each request inside a batch counts against the mailbox's 4 in flight: batches of 4.
    assert len([r for r in standin.requests if "$batch" in r[1]]) - batches_before == 7
    assert all(CATEGORY in m["categories"] for m in standin.messages(seller.email, folder))
    tracked = await activities(graph_services)
    assert {
        tracked[m["internetMessageId"]]["method"] for m in standin.messages(seller.email, folder)
    } == {"folder"}
    report = await sync_mailbox(graph_services, seller.email)  # the category changes come back
    assert report is not None
    assert len(await activities(graph_services)) == len(tracked)


async def test_same_message_in_two_mailboxes_is_one_activity(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    colleague = f"colleague-of-{seller.email}"
    standin.add_mailbox(colleague)
    await mailboxes.enrol(graph_services, colleague, [])
    shared_id = f"<shared-{seller.email}@fabrikam.example>"
    mine = standin.deliver(
        seller.email,
        subject="Team deal",
        body_html="<p>Deal</p>",
        sender=CUSTOMER,
        to=[seller.email, colleague],
        internet_message_id=shared_id,
        categories=[CATEGORY],
    )
    theirs = standin.deliver(
        colleague,
        subject="Team deal",
        body_html="<p>Deal</p>",
        sender=CUSTOMER,
        to=[seller.email, colleague],
        internet_message_id=shared_id,
    )
    await sync_mailbox(graph_services, colleague)
    await sync_mailbox(graph_services, seller.email)
    await sync_mailbox(graph_services, colleague)
    activity = (await activities(graph_services))[shared_id]
    import json

    assert json.loads(activity["mailboxes"]) == {seller.email: mine["id"], colleague: theirs["id"]}
    (colleague_copy,) = standin.messages(colleague, "inbox")
    assert CATEGORY in colleague_copy["categories"]


async def test_lost_delta_token_resyncs_without_duplicates(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    created, sent = await send_followed(seller, standin)
    standin.deliver(
        seller.email,
        subject="Re: Your quote",
        body_html="<p>ok</p>",
        sender=CUSTOMER,
        to=[seller.email],
        in_reply_to=sent["internetMessageId"],
        conversation_id=sent["conversationId"],
    )
    standin.deliver(
        seller.email,
        subject="Tagged",
        body_html="<p>t</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=[CATEGORY],
    )
    await sync_mailbox(graph_services, seller.email)
    count = len(await activities(graph_services))
    standin.expire_delta_tokens(seller.email)
    report = await sync_mailbox(graph_services, seller.email)
    assert report is not None and set(report.resynced) >= {"inbox", "sentitems"}
    assert len(await activities(graph_services)) == count
    shown = (await seller.http.get(f"/api/messages/{created['id']}", headers=seller.auth)).json()
    assert shown["kpis"]["replies"] == 1


async def test_throttling_is_waited_out_and_a_storm_is_recorded(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    await sync_mailbox(graph_services, seller.email)
    standin.deliver(
        seller.email,
        subject="Tagged",
        body_html="<p>t</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=[CATEGORY],
    )
    standin.fail_next(2, status=429, retry_after=1, path_contains=seller.email)
    report = await sync_mailbox(graph_services, seller.email)
    assert report is not None and report.tracked == 1  # the SDK honoured Retry-After
    # a storm on its reads longer than the SDK's retries (5): the cycle fails and says why
    standin.fail_next(6, status=503, retry_after=1, path_contains="/messages/delta")
    with pytest.raises(ODataError):
        await sync_mailbox(graph_services, seller.email)
    health = mailboxes.health(graph_services, await mailboxes.load(graph_services, seller.email))
    assert health["errors"]["throttled"] >= 1 and health["last_error"].startswith("throttled")
    assert (await mailboxes.load(graph_services, seller.email)).lease_until == ""
    assert await sync_mailbox(graph_services, seller.email) is not None  # the storm is over


async def test_at_most_four_requests_in_flight_per_mailbox(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    folder = standin.add_folder(seller.email, "Busy")
    await mailboxes.enrol(graph_services, seller.email, [folder])
    for n in range(60):
        standin.deliver(
            seller.email,
            folder=folder,
            subject=f"n{n}",
            body_html="<p>x</p>",
            sender=CUSTOMER,
            to=[seller.email],
        )
    await sync_mailbox(graph_services, seller.email)
    assert 1 <= standin.max_concurrency(seller.email) <= 4


async def test_failing_items_are_retried_then_marked_undeliverable(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    await sync_mailbox(graph_services, seller.email)
    item = standin.deliver(
        seller.email,
        subject="Tagged",
        body_html="<p>t</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=[CATEGORY],
    )
    # the item's Internet message id is missing (as on some imported items): it cannot be tracked
    standin.drop_property(seller.email, item["id"], "internetMessageId")
    await sync_mailbox(graph_services, seller.email)
    for _ in range(graph_services.settings.max_tracking_attempts):
        await retry_mailbox(graph_services, seller.email)
    health = mailboxes.health(graph_services, await mailboxes.load(graph_services, seller.email))
    assert health["undeliverable"] == 1 and health["items_failing"] == 0
    assert health["errors"]["rejected"] >= graph_services.settings.max_tracking_attempts
    (stored,) = [m for m in standin.messages(seller.email, "inbox") if m["id"] == item["id"]]
    assert f"{CATEGORY} (Undeliverable)" in stored["categories"]
    report = await retry_mailbox(graph_services, seller.email)  # not retried any more
    assert report is not None and report.failed == 0


async def test_admin_enrols_and_reads_mailbox_health(
    seller: Seller, graph_services: Services
) -> None:
    admin = {
        "Authorization": f"Bearer {make_dev_token(graph_services.settings, 'it@contoso.example', roles=(ADMIN_ROLE,))}"
    }
    forbidden = await seller.http.get("/api/admin/mailboxes", headers=seller.auth)
    assert forbidden.status_code == 403
    bad = await seller.http.post(
        "/api/admin/mailboxes", json={"email": "not an address"}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "email"
    created = await seller.http.post(
        "/api/admin/mailboxes", json={"email": "new.seller@contoso.example"}, headers=admin
    )
    assert created.status_code == 201
    await sync_mailbox(graph_services, seller.email)
    listed = (await seller.http.get("/api/admin/mailboxes", headers=admin)).json()["mailboxes"]
    mine = next(m for m in listed if m["email"] == seller.email)
    assert mine["last_success_at"] is not None and mine["lag_seconds"] is not None
    assert set(mine["errors"]) == {"throttled", "timeout", "rejected", "unknown"}
    assert any(m["email"] == "new.seller@contoso.example" for m in listed)


async def test_calendar_event_with_the_category_is_tracked_and_untracked(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Any
) -> None:
    from datetime import timedelta

    await sync_mailbox(graph_services, seller.email)
    start = clock.now() + timedelta(days=2)
    event = standin.add_event(
        seller.email,
        "Demo call",
        start,
        start + timedelta(hours=1),
        [CUSTOMER],
        categories=[CATEGORY],
    )
    await sync_mailbox(graph_services, seller.email)
    rows = {
        row["ical_uid"]: dict(row)
        async for row in graph_services.store.activities.query_entities("kind eq 'appointment'")
    }
    assert rows[event["iCalUId"]]["status"] == "tracked"
    assert CUSTOMER in rows[event["iCalUId"]]["addresses"]
    standin.set_event_categories(seller.email, event["id"], [])
    await sync_mailbox(graph_services, seller.email)
    rows = {
        row["ical_uid"]: dict(row)
        async for row in graph_services.store.activities.query_entities("kind eq 'appointment'")
    }
    assert rows[event["iCalUId"]]["status"] == "untracked"


async def test_doubled_sync_timer_runs_one_cycle_per_mailbox(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    import asyncio

    standin.deliver(
        seller.email,
        subject="Tagged",
        body_html="<p>t</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=[CATEGORY],
    )
    first, second = await asyncio.gather(
        sync_mailbox(graph_services, seller.email), sync_mailbox(graph_services, seller.email)
    )
    reports = [r for r in (first, second) if r is not None]
    assert len(reports) == 1 and reports[0].tracked == 1
    again = await sync_mailbox(graph_services, seller.email)
    assert again is not None and again.tracked == 0
