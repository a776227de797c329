"""Sending from the seller's mailbox through Graph: draft then send, stamped, never twice,
deferred for send-later, cancellable until it leaves."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from devtools.graph_standin import GraphStandIn
from shared.core.services import Services
from shared.messages.dispatch import dispatch_cycle
from shared.messages.sending import outgoing
from shared.outlook.mail import DEFERRED_SEND_PROPERTY, STAMP_PROPERTY, create_draft
from tests.conftest import Clock
from tests.graph.conftest import Seller
from tests.utils.factories import attachment, compose_body


def stamp(message: dict) -> str | None:  # type: ignore[type-arg]
    for prop in message.get("singleValueExtendedProperties") or []:
        if prop["id"].lower() == STAMP_PROPERTY.lower():
            return str(prop["value"])
    return None


async def test_followed_mail_leaves_from_the_sellers_mailbox(
    seller: Seller, standin: GraphStandIn
) -> None:
    response = await seller.http.post(
        "/api/messages",
        json=compose_body(
            attachments=[attachment("terms.pdf", b"%PDF", followed=False), attachment("quote.pdf")]
        ),
        headers=seller.auth,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "sent"
    (sent,) = standin.sent(seller.email)
    assert stamp(sent) == created["id"]
    assert sent["body"]["content"] == created["html"]  # the followed body, pixel and links
    assert [a["name"] for a in sent.get("attachments", [])] == ["terms.pdf"]
    assert standin.messages(seller.email, "drafts") == []
    shown = (await seller.http.get(f"/api/messages/{created['id']}", headers=seller.auth)).json()
    assert shown["status"] == "sent"


async def test_crash_between_draft_and_send_does_not_send_twice(
    seller: Seller, standin: GraphStandIn, graph_services: Services
) -> None:
    created = (
        await seller.http.post("/api/messages", json=compose_body(send=False), headers=seller.auth)
    ).json()
    entity = dict(await graph_services.store.messages.get_entity(created["id"][:8], created["id"]))
    # the first attempt created the draft and died before sending it
    await create_draft(
        graph_services.graph(), seller.email, await outgoing(graph_services, entity, followed=True)
    )
    assert len(standin.messages(seller.email, "drafts")) == 1
    response = await seller.http.post(f"/api/messages/{created['id']}/send", headers=seller.auth)
    assert response.status_code == 200, response.text
    assert [stamp(m) for m in standin.sent(seller.email)] == [created["id"]]
    assert standin.messages(seller.email, "drafts") == []
    again = await seller.http.post(f"/api/messages/{created['id']}/send", headers=seller.auth)
    assert again.status_code == 409
    assert len(standin.sent(seller.email)) == 1


async def test_send_later_is_deferred_by_exchange_and_sent_once(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    send_at = clock.now() + timedelta(minutes=3)
    created = (
        await seller.http.post(
            "/api/messages", json=compose_body(send_at=send_at.isoformat()), headers=seller.auth
        )
    ).json()
    assert created["status"] == "scheduled"
    assert standin.sent(seller.email) == [] and standin.messages(seller.email, "outbox") == []
    # within the lead time: handed over with the deferred-send time; a doubled timer is harmless
    await asyncio.gather(dispatch_cycle(graph_services), dispatch_cycle(graph_services))
    (waiting,) = standin.messages(seller.email, "outbox")
    assert stamp(waiting) == created["id"]
    deferred = [
        p["value"]
        for p in waiting["singleValueExtendedProperties"]
        if p["id"].lower() == DEFERRED_SEND_PROPERTY.lower()
    ]
    assert deferred and deferred[0].startswith(send_at.strftime("%Y-%m-%dT%H:%M"))
    assert standin.sent(seller.email) == []
    clock.advance(4 * 60)
    standin.tick()
    (sent,) = standin.sent(seller.email)
    assert stamp(sent) == created["id"]
    await dispatch_cycle(graph_services)
    assert len(standin.sent(seller.email)) == 1


async def test_cancel_a_handed_over_message_before_it_leaves(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    send_at = clock.now() + timedelta(minutes=4)
    created = (
        await seller.http.post(
            "/api/messages", json=compose_body(send_at=send_at.isoformat()), headers=seller.auth
        )
    ).json()
    await dispatch_cycle(graph_services)
    assert len(standin.messages(seller.email, "outbox")) == 1
    cancelled = await seller.http.post(f"/api/messages/{created['id']}/cancel", headers=seller.auth)
    assert cancelled.status_code == 200, cancelled.text
    assert standin.messages(seller.email, "outbox") == []
    clock.advance(10 * 60)
    standin.tick()
    assert standin.sent(seller.email) == []
