"""The sync when Graph fails: category writes that fail, are throttled inside a $batch or
conflict with the user; items that end Undeliverable (and the user's way back); an odd master
category; and two workers sharing one mailbox's limit of four requests in flight. Each test
ends on the state that matters: no write lost, the user's categories kept, health counted."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from pydantic import SecretStr

from devtools.graph_standin import DEFAULT_TOKEN, GraphStandIn
from shared.bootstrap import build_services
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.messages.delivery import Outgoing
from shared.outlook import mailboxes
from shared.outlook.delivery import GraphDelivery
from shared.outlook.mail import ensure_category, get_message
from shared.outlook.mailboxes import FAILURE_CLASSES
from shared.outlook.sync import retry_mailbox, sync_mailbox
from tests.conftest import Clock
from tests.functions.test_openapi import assert_error_shape
from tests.graph.conftest import Seller
from tests.graph.test_sync import CATEGORY, CUSTOMER, activities, send_followed

MARK = f"{CATEGORY} (Undeliverable)"
USERS_OWN = "Hot lead"
_numbers = itertools.count(1)


def categories_of(standin: GraphStandIn, email: str, graph_id: str) -> list[str]:
    (found,) = [m for m in standin.messages(email) if m["id"] == graph_id]
    return list(found["categories"])


async def health(services: Services, email: str) -> dict[str, Any]:
    return mailboxes.health(services, await mailboxes.load(services, email))


async def activity_of(services: Services, item: dict[str, Any]) -> dict[str, Any]:
    return (await activities(services))[item["internetMessageId"]]


def patches_of(standin: GraphStandIn, graph_id: str) -> list[float]:
    """When each PATCH of the message arrived inside a $batch."""
    return [at for m, path, at in standin.batch_requests if m == "PATCH" and graph_id in path]


async def item_in_tracked_folder(
    seller: Seller, standin: GraphStandIn, services: Services
) -> dict[str, Any]:
    """A message the user categorised "Hot lead", in a folder the seller tracks: the cycle
    tracks it by folder and has to write our category on it."""
    folder = standin.add_folder(seller.email, "Customers")
    await mailboxes.enrol(services, seller.email, [folder])
    await sync_mailbox(services, seller.email)
    return standin.deliver(
        seller.email,
        folder=folder,
        subject="Order",
        body_html="<p>Order</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=[USERS_OWN],
    )


async def test_category_write_answering_500_is_retried_until_it_lands(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    item = await item_in_tracked_folder(seller, standin, graph_services)
    standin.fail_next(1, status=500, retry_after=None, path_contains=item["id"], method="PATCH")

    report = await sync_mailbox(graph_services, seller.email)

    assert categories_of(standin, seller.email, item["id"]) == [USERS_OWN, CATEGORY]
    assert (await activity_of(graph_services, item))["status"] == "tracked"
    assert report is not None and report.category_retries == 1
    assert report.category_failures == 0 and report.failed == 0
    shown = await health(graph_services, seller.email)
    assert shown["items_failing"] == 0 and shown["undeliverable"] == 0
    assert set(shown["errors"].values()) == {0}


async def test_throttled_batch_item_is_retried_after_its_own_retry_after(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    item = await item_in_tracked_folder(seller, standin, graph_services)
    # Throttled inside a 200 batch response: the item's own 429 and Retry-After.
    standin.fail_next(1, status=429, retry_after=2, path_contains=item["id"], method="PATCH")

    report = await sync_mailbox(graph_services, seller.email)

    assert categories_of(standin, seller.email, item["id"]) == [USERS_OWN, CATEGORY]
    first, second = patches_of(standin, item["id"])
    assert second - first >= 2.0
    assert report is not None and report.category_retries == 1 and report.failed == 0
    assert (await activity_of(graph_services, item))["status"] == "tracked"
    shown = await health(graph_services, seller.email)
    assert shown["items_failing"] == 0 and set(shown["errors"].values()) == {0}


async def test_category_write_failing_for_good_is_marked_undeliverable_keeping_user_categories(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    attempts = graph_services.settings.max_tracking_attempts
    item = await item_in_tracked_folder(seller, standin, graph_services)
    # Every write of our category on this item fails; the mark alone would go through.
    standin.fail_always(
        status=500, path_contains=item["id"], method="PATCH", body_contains=f'"{CATEGORY}"'
    )

    await sync_mailbox(graph_services, seller.email)
    assert (await activity_of(graph_services, item))["status"] == "pending"
    shown = await health(graph_services, seller.email)
    assert shown["items_failing"] == 1 and shown["errors"]["unknown"] == 1
    for _ in range(attempts - 1):
        await retry_mailbox(graph_services, seller.email)

    assert categories_of(standin, seller.email, item["id"]) == [USERS_OWN, MARK]
    assert (await activity_of(graph_services, item))["status"] == "pending"
    shown = await health(graph_services, seller.email)
    assert shown["undeliverable"] == 1 and shown["items_failing"] == 0
    assert shown["errors"]["unknown"] == attempts
    assert shown["last_error"] == "unknown: category write answered 500"

    # The cause is mended and the user takes the mark off: the item is tried afresh.
    standin.clear_faults()
    standin.set_categories(seller.email, item["id"], [USERS_OWN])
    report = await sync_mailbox(graph_services, seller.email)

    assert report is not None and report.tracked == 1
    assert categories_of(standin, seller.email, item["id"]) == [USERS_OWN, CATEGORY]
    assert (await activity_of(graph_services, item))["status"] == "tracked"
    shown = await health(graph_services, seller.email)
    assert shown["undeliverable"] == 0 and shown["items_failing"] == 0
    assert shown["errors"]["unknown"] == attempts


async def test_undeliverable_item_causes_no_echo_across_cycles(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    attempts = graph_services.settings.max_tracking_attempts
    await sync_mailbox(graph_services, seller.email)
    item = standin.deliver(
        seller.email,
        subject="Tagged",
        body_html="<p>t</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=[USERS_OWN, CATEGORY],
    )
    # No Internet message id (as on some imported items): it cannot be tracked.
    standin.drop_property(seller.email, item["id"], "internetMessageId")
    await sync_mailbox(graph_services, seller.email)
    for _ in range(attempts - 1):
        await retry_mailbox(graph_services, seller.email)
    assert categories_of(standin, seller.email, item["id"]) == [USERS_OWN, CATEGORY, MARK]
    assert len(patches_of(standin, item["id"])) == 1

    requests_per_cycle = []
    for _ in range(4):
        before = len(standin.requests) + len(standin.batch_requests)
        await sync_mailbox(graph_services, seller.email)
        await retry_mailbox(graph_services, seller.email)
        requests_per_cycle.append(len(standin.requests) + len(standin.batch_requests) - before)

    assert len(patches_of(standin, item["id"])) == 1  # our mark came back and changed nothing
    assert len(set(requests_per_cycle[1:])) == 1  # steady: the same reads each cycle
    assert categories_of(standin, seller.email, item["id"]) == [USERS_OWN, CATEGORY, MARK]
    shown = await health(graph_services, seller.email)
    assert shown["undeliverable"] == 1 and shown["items_failing"] == 0
    assert shown["errors"]["rejected"] == attempts


async def test_conflicting_user_change_is_read_again_and_kept(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    item = await item_in_tracked_folder(seller, standin, graph_services)
    standin.fail_next(1, status=429, retry_after=1, path_contains=item["id"], method="PATCH")
    cycle = asyncio.create_task(sync_mailbox(graph_services, seller.email))
    for _ in range(1000):  # the stand-in runs in its own thread: poll its log
        if patches_of(standin, item["id"]):
            break
        await asyncio.sleep(0.01)
    # While our write waits out its Retry-After, the user adds a category in Outlook.
    standin.set_categories(seller.email, item["id"], [USERS_OWN, "Customer"])

    report = await cycle

    assert categories_of(standin, seller.email, item["id"]) == [USERS_OWN, "Customer", CATEGORY]
    assert report is not None and report.category_retries == 2  # throttled, then a conflict
    assert (await activity_of(graph_services, item))["status"] == "tracked"


async def test_case_variant_master_category_is_adopted_and_replies_still_counted(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    standin.add_master_category(seller.email, "tracked to engagement")
    created, sent = await send_followed(seller, standin)

    def reply(text: str) -> None:
        standin.deliver(
            seller.email,
            subject="Re: Your quote",
            body_html=f"<p>{text}</p>",
            sender=CUSTOMER,
            to=[seller.email],
            in_reply_to=sent["internetMessageId"],
            conversation_id=sent["conversationId"],
        )

    async def replies() -> int:
        path = f"/api/messages/{created['id']}"
        return int((await seller.http.get(path, headers=seller.auth)).json()["kpis"]["replies"])

    await sync_mailbox(graph_services, seller.email)
    reply("Yes")
    report = await sync_mailbox(graph_services, seller.email)

    assert report is not None and report.replies == 1 and await replies() == 1
    mailbox = await mailboxes.load(graph_services, seller.email)
    assert mailbox.category_name == "tracked to engagement"
    names = [c["displayName"].lower() for c in standin.master_categories(seller.email)]
    assert names.count("tracked to engagement") == 1
    tagged = standin.deliver(
        seller.email,
        subject="Pricing",
        body_html="<p>How much?</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=[CATEGORY],  # the other case: the same category to Outlook
    )
    await sync_mailbox(graph_services, seller.email)
    activity = await activity_of(graph_services, tagged)
    assert activity["method"] == "category" and activity["status"] == "tracked"
    assert categories_of(standin, seller.email, tagged["id"]) == [CATEGORY]

    # The master list cannot be read at all: replies are still counted.
    standin.fail_always(status=500, path_contains=f"{seller.email}/outlook/masterCategories")
    reply("And one more thing")
    report = await sync_mailbox(graph_services, seller.email)
    standin.clear_faults()

    assert report is not None and report.replies == 1 and await replies() == 2
    shown = await health(graph_services, seller.email)
    assert shown["errors"]["unknown"] == 1 and shown["last_error"] == "unknown: ODataError"
    assert shown["last_success_at"] is not None


@pytest.fixture
def limited_standin(clock: Clock) -> Iterator[GraphStandIn]:
    """A stand-in that holds each request 20 ms and enforces Graph's limit of four requests
    in flight per mailbox, each request inside a $batch counted."""
    with GraphStandIn(clock=clock.now, latency=0.02, mailbox_concurrency_limit=4) as server:
        yield server


def worker(settings: Settings, clock: Clock, standin: GraphStandIn) -> Services:
    """One worker's services (its own Graph client and permits) on the shared storage."""
    configured = settings.model_copy(
        update={
            "delivery_backend": "graph",
            "graph_auth": "static",
            "graph_static_token": SecretStr(DEFAULT_TOKEN),
            "graph_base_url": standin.base_url,
        }
    )
    return build_services(configured, clock.now)


async def test_two_workers_creating_the_category_at_once_end_with_one(
    settings: Settings, clock: Clock, limited_standin: GraphStandIn
) -> None:
    races = 0
    for _ in range(8):  # the race is a matter of timing: tried until it has happened twice
        email = f"race{next(_numbers)}@contoso.example"
        limited_standin.add_mailbox(email)
        first, second = (
            worker(settings, clock, limited_standin),
            worker(settings, clock, limited_standin),
        )
        try:
            # Both find no category and both create it: one gets 409 and adopts the other's.
            made = await asyncio.gather(
                ensure_category(first.graph(), email, None, CATEGORY),
                ensure_category(second.graph(), email, None, CATEGORY.lower()),
            )
        finally:
            await first.close()
            await second.close()
        posts = [
            p
            for m, p, _ in limited_standin.requests
            if m == "POST" and p.endswith(f"/users/{email}/outlook/masterCategories")
        ]
        races += len(posts) == 2
        assert made[0] == made[1]
        names = [c["displayName"].lower() for c in limited_standin.master_categories(email)]
        assert names.count(CATEGORY.lower()) == 1
        if races >= 2:
            break
    assert races >= 1  # the 409 path was taken at least once


async def test_two_workers_share_the_mailbox_limit_and_lose_no_write(
    settings: Settings, clock: Clock, limited_standin: GraphStandIn
) -> None:
    standin = limited_standin
    # Two workers: separate services, separate Graph clients, one storage account.
    syncing, sending = worker(settings, clock, standin), worker(settings, clock, standin)
    await ensure_storage(syncing.store)
    email = f"busy{next(_numbers)}@contoso.example"
    standin.add_mailbox(email)
    folder = standin.add_folder(email, "Customers")
    await mailboxes.enrol(syncing, email, [folder])

    def deliver(where: str, n: int) -> str:
        return str(
            standin.deliver(
                email,
                folder=where,
                subject=f"Order {n}",
                body_html="<p>Order</p>",
                sender=f"buyer{n}@fabrikam.example",
                to=[email],
                categories=[USERS_OWN],
            )["id"]
        )

    in_folder = [deliver(folder, n) for n in range(60)]
    in_inbox = [deliver("inbox", n) for n in range(30)]
    delivery = GraphDelivery(sending.graph, clock.now)

    async def send(n: int) -> None:
        outgoing = Outgoing(f"busy-send-{n}", email, [CUSTOMER], [], [], f"Quote {n}", "<p>Q</p>")
        await delivery.deliver(outgoing)

    async def other_worker() -> None:
        """Sends mail from the mailbox and reads it, as the senders' worker does."""
        read = await asyncio.gather(
            *(send(n) for n in range(10)),
            *(get_message(sending.graph(), email, i) for i in in_inbox),
        )
        assert all(found is not None for found in read[10:])

    try:
        report, _ = await asyncio.gather(sync_mailbox(syncing, email), other_worker())
        statuses = [
            row["status"]
            async for row in syncing.store.activities.list_entities()
            if email in json.loads(row["mailboxes"])
        ]
    finally:
        await syncing.close()
        await sending.close()

    lost = [i for i in in_folder if categories_of(standin, email, i) != [USERS_OWN, CATEGORY]]
    assert lost == []
    assert statuses == ["tracked"] * len(in_folder)
    assert len(standin.sent(email)) == 10
    assert standin.max_concurrency(email) <= 4 and standin.refused(email) == 0
    assert report is not None and report.category_failures == 0 and report.failed == 0


async def test_admin_dashboard_shows_a_failing_mailbox_by_class_and_day(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    admin_token = make_dev_token(graph_services.settings, "it@contoso.example", roles=(ADMIN_ROLE,))
    admin = {"Authorization": f"Bearer {admin_token}"}

    async def mine(days: int = 3) -> dict[str, Any]:
        answer = await seller.http.get("/api/admin/mailboxes", params={"days": days}, headers=admin)
        assert answer.status_code == 200, answer.text
        return next(m for m in answer.json()["mailboxes"] if m["email"] == seller.email)

    assert (await mine())["status"] == "pending"
    await sync_mailbox(graph_services, seller.email)
    healthy = await mine()
    assert healthy["status"] == "ok" and healthy["lag_seconds"] is not None
    assert [d["date"] for d in healthy["errors_by_day"]] == [
        (clock.now().astimezone(UTC).date() - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    assert {d[c] for d in healthy["errors_by_day"] for c in FAILURE_CLASSES} == {0}

    # The app may no longer read the mailbox (consent withdrawn, an access policy): every
    # Graph call answers 403, two cycles fail.
    standin.fail_always(status=403, path_contains=f"{seller.email}/")
    for _ in range(2):
        with pytest.raises(ODataError):
            await sync_mailbox(graph_services, seller.email)
    failing = await mine()
    assert failing["status"] == "failing" and failing["last_error"] == "rejected: ODataError"
    assert failing["last_success_at"] == healthy["last_success_at"]
    assert failing["last_sync_at"] > healthy["last_sync_at"]
    today = failing["errors_by_day"][-1]
    # Each cycle: the category check, then the first folder read.
    assert today["rejected"] == failing["errors"]["rejected"] == 4
    assert today["throttled"] == today["timeout"] == today["unknown"] == 0

    # A day later it syncs again: yesterday's errors stay in their day, today has none.
    standin.clear_faults()
    clock.advance(24 * 3600)
    await sync_mailbox(graph_services, seller.email)
    recovered = await mine()
    assert recovered["status"] == "ok" and recovered["errors"]["rejected"] == 4
    assert [d["rejected"] for d in recovered["errors_by_day"]] == [0, 4, 0]
    assert len((await mine(days=30))["errors_by_day"]) == 30

    # Admins only, and a bad window is refused naming it.
    refused = await seller.http.get("/api/admin/mailboxes", headers=seller.auth)
    assert_error_shape(refused, 403, "authorization")
    for days in (0, 31):
        bad = await seller.http.get("/api/admin/mailboxes", params={"days": days}, headers=admin)
        assert_error_shape(bad, 422, "days")
