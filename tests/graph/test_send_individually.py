"""Each recipient's own copy (`send_individually`) sent from the seller's mailbox through
Graph: one stamped draft per copy, never twice per copy through a failure, deferred and
cancelled together, a reply from any recipient found, opens told apart per recipient."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from devtools.graph_standin import GraphStandIn
from shared.core.ids import partition_of
from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from shared.messages.dispatch import dispatch_cycle
from shared.outlook.sync import sync_mailbox
from tests.conftest import PERSON_USER_AGENT, Clock
from tests.graph.conftest import Seller
from tests.graph.test_sending import stamp
from tests.utils.factories import compose_body, ensure_contacts

RECIPIENTS = ["ida@fabrikam.example", "jo@fabrikam.example", "kim@fabrikam.example"]


def to_of(message: dict[str, Any]) -> list[str]:
    return [r["emailAddress"]["address"] for r in message["toRecipients"]]


def sent_to(standin: GraphStandIn, seller: Seller) -> list[list[str]]:
    """Each sent message's To, and that nobody is on Cc or Bcc."""
    sent = standin.sent(seller.email)
    assert all(not m["ccRecipients"] and not m["bccRecipients"] for m in sent)
    return sorted(to_of(m) for m in sent)


async def send_individually(seller: Seller, **overrides: Any) -> dict[str, Any]:
    await ensure_contacts(seller.http, seller.auth, RECIPIENTS)
    body = compose_body(to=RECIPIENTS[:2], cc=RECIPIENTS[2:], send_individually=True)
    body.update(overrides)
    response = await seller.http.post("/api/messages", json=body, headers=seller.auth)
    assert response.status_code in (201, 202), response.text
    return dict(response.json())


async def shown(seller: Seller, message_id: str) -> dict[str, Any]:
    response = await seller.http.get(f"/api/messages/{message_id}", headers=seller.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_each_copy_is_its_own_stamped_message_and_opens_are_told_apart(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    created = await send_individually(seller)
    assert created["status"] == "sent"
    sent = {to_of(m)[0]: m for m in standin.sent(seller.email)}
    assert sent_to(standin, seller) == [[r] for r in RECIPIENTS]
    assert {stamp(m) for m in sent.values()} == {f"{created['id']}.{n}" for n in (1, 2, 3)}
    refs = {
        address: {
            graph_services.signer.verify(t)
            for t in re.findall(r"/t/[oc]/([A-Za-z0-9]+\.[A-Za-z0-9_-]+)", m["body"]["content"])
        }
        for address, m in sent.items()
    }
    assert {a: {r.copy for r in found if r} for a, found in refs.items()} == {
        RECIPIENTS[0]: {1},
        RECIPIENTS[1]: {2},
        RECIPIENTS[2]: {3},
    }
    pixel = re.search(
        r'src="http://track\.test(/t/o/[^"]+)"', sent[RECIPIENTS[1]]["body"]["content"]
    )
    assert pixel is not None
    clock.advance(600)
    opened = await seller.http.get(pixel[1], headers={"User-Agent": PERSON_USER_AGENT})
    assert opened.status_code == 200
    await fold_cycle(graph_services, now=clock.advance(60), grace=graph_services.grace)
    view = await shown(seller, created["id"])
    assert [(r["address"], r["opens"]) for r in view["by_recipient"]] == [
        (RECIPIENTS[0], 0),
        (RECIPIENTS[1], 1),
        (RECIPIENTS[2], 0),
    ]
    row = await graph_services.store.messages.get_entity(partition_of(created["id"]), created["id"])
    copies = json.loads(row["copies"])
    assert [c["provider_id"] for c in copies] == [sent[r]["id"] for r in RECIPIENTS]
    assert [c["conversation_id"] for c in copies] == [sent[r]["conversationId"] for r in RECIPIENTS]


async def test_a_failed_send_of_copy_2_is_retried_alone(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    standin.fail_next(
        1, status=500, retry_after=None, path_contains="/send", method="POST", after=1
    )
    created = await send_individually(seller)
    assert created["status"] == "sending", created
    assert created["attempts"] == 1 and "500" in created["failure"]
    assert "copy 2 of 3" in created["failure"]
    assert sent_to(standin, seller) == [[RECIPIENTS[0]]]  # copy 1 went; copy 2 failed
    clock.advance(graph_services.settings.send_retry_seconds + 1)
    await dispatch_cycle(graph_services)
    after = await shown(seller, created["id"])
    assert after["status"] == "sent" and after["failure"] is None
    assert sent_to(standin, seller) == [[r] for r in RECIPIENTS]  # each exactly once
    assert standin.messages(seller.email, "drafts") == []
    await dispatch_cycle(graph_services)
    assert len(standin.sent(seller.email)) == 3


async def test_send_later_hands_over_every_copy_and_cancel_stops_them_all(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    send_at = clock.now() + timedelta(minutes=3)
    created = await send_individually(seller, send_at=send_at.isoformat())
    assert created["status"] == "scheduled"
    await dispatch_cycle(graph_services)
    waiting = standin.messages(seller.email, "outbox")
    assert sorted(to_of(m) for m in waiting) == [[r] for r in RECIPIENTS]
    cancelled = await seller.http.post(f"/api/messages/{created['id']}/cancel", headers=seller.auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert standin.messages(seller.email, "outbox") == []
    clock.advance(10 * 60)
    standin.tick()
    assert standin.sent(seller.email) == []


async def test_a_reply_from_any_recipient_is_counted(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    created = await send_individually(seller)
    await sync_mailbox(graph_services, seller.email)  # baseline
    second = next(m for m in standin.sent(seller.email) if to_of(m) == [RECIPIENTS[1]])
    standin.deliver(
        seller.email,
        subject="Re: Your quote",
        body_html="<p>Yes</p>",
        sender=RECIPIENTS[1],
        to=[seller.email],
        in_reply_to=second["internetMessageId"],
        references=second["internetMessageId"],
        conversation_id=second["conversationId"],
    )
    third = next(m for m in standin.sent(seller.email) if to_of(m) == [RECIPIENTS[2]])
    standin.deliver(  # a client that keeps only the thread
        seller.email,
        subject="Re: Your quote",
        body_html="<p>Me too</p>",
        sender=RECIPIENTS[2],
        to=[seller.email],
        conversation_id=third["conversationId"],
    )
    report = await sync_mailbox(graph_services, seller.email)
    assert report is not None and report.replies == 2
    assert (await shown(seller, created["id"]))["kpis"]["replies"] == 2
    tracked = {
        row["internet_message_id"] async for row in graph_services.store.activities.list_entities()
    }
    copies = {m["internetMessageId"] for m in standin.sent(seller.email)}
    assert copies <= tracked  # each copy in Sent Items is an activity of its own


async def test_the_group_send_is_still_one_message(seller: Seller, standin: GraphStandIn) -> None:
    await ensure_contacts(seller.http, seller.auth, RECIPIENTS)
    body = compose_body(to=RECIPIENTS[:2], cc=RECIPIENTS[2:])
    created = (await seller.http.post("/api/messages", json=body, headers=seller.auth)).json()
    (sent,) = standin.sent(seller.email)
    assert stamp(sent) == created["id"]
    assert to_of(sent) == RECIPIENTS[:2] and created["send_individually"] is False
