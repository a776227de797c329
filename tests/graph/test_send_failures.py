"""Sending through Graph when Graph fails: every failure ends in a recorded state (sent,
`sending` with its next attempt, or `failed` with the reason), the dispatch cycle recovers
what a dead attempt left, and nothing is ever sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from devtools.graph_standin import GraphStandIn
from shared.core.services import Services
from shared.messages import dispatch_queue, sending
from shared.messages.dispatch import dispatch_cycle
from shared.messages.sending import outgoing
from shared.outlook.mail import create_draft, send_draft
from tests.conftest import Clock
from tests.graph.conftest import Seller
from tests.graph.test_sending import stamp
from tests.utils.factories import compose_body


async def shown(seller: Seller, message_id: str) -> dict[str, Any]:
    response = await seller.http.get(f"/api/messages/{message_id}", headers=seller.auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def queued(services: Services, message_id: str) -> list[str]:
    return [
        row["RowKey"]
        async for row in services.store.schedule.query_entities(
            "PartitionKey eq 'due' and message_id eq @id", parameters={"id": message_id}
        )
    ]


def assert_sent_once(standin: GraphStandIn, seller: Seller, message_id: str) -> None:
    assert [stamp(m) for m in standin.sent(seller.email)] == [message_id]
    assert standin.messages(seller.email, "drafts") == []


@pytest.mark.parametrize(
    ("status", "faults"),
    [(500, 1), (429, 6)],
    ids=["500-once", "429-past-the-sdk-retries"],
)
async def test_a_transient_send_failure_is_retried_by_the_dispatch_cycle(
    seller: Seller,
    standin: GraphStandIn,
    graph_services: Services,
    clock: Clock,
    status: int,
    faults: int,
) -> None:
    standin.fail_next(faults, status=status, retry_after=0, path_contains="/send", method="POST")
    response = await seller.http.post("/api/messages", json=compose_body(), headers=seller.auth)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["status"] == "sending"
    assert created["attempts"] == 1 and str(status) in created["failure"]
    assert created["next_attempt_at"] is not None
    assert standin.sent(seller.email) == []
    # the seller sees it waiting; "send" now would race the retry, so it is refused
    busy = await seller.http.post(f"/api/messages/{created['id']}/send", headers=seller.auth)
    assert busy.status_code == 409
    await dispatch_cycle(graph_services)  # before its backoff ends: left alone
    assert (await shown(seller, created["id"]))["status"] == "sending"
    clock.advance(graph_services.settings.send_retry_seconds + 1)
    await dispatch_cycle(graph_services)
    after = await shown(seller, created["id"])
    assert after["status"] == "sent" and after["failure"] is None
    assert_sent_once(standin, seller, created["id"])
    assert await queued(graph_services, created["id"]) == []


async def test_throttling_within_the_sdk_retries_only_slows_the_send(
    seller: Seller, standin: GraphStandIn
) -> None:
    standin.fail_next(3, status=429, retry_after=0, path_contains="/send", method="POST")
    response = await seller.http.post("/api/messages", json=compose_body(), headers=seller.auth)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "sent"
    assert_sent_once(standin, seller, response.json()["id"])


async def test_a_send_that_keeps_failing_ends_failed_and_can_be_sent_again(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    attempts = graph_services.settings.send_max_attempts
    standin.fail_next(attempts, status=500, retry_after=None, path_contains="/send", method="POST")
    created = (
        await seller.http.post("/api/messages", json=compose_body(), headers=seller.auth)
    ).json()
    for _ in range(attempts - 1):
        clock.advance(3601)
        await dispatch_cycle(graph_services)
    failed = await shown(seller, created["id"])
    assert failed["status"] == "failed", failed
    assert failed["attempts"] == attempts
    assert f"gave up after {attempts} attempts" in failed["failure"]
    assert await queued(graph_services, created["id"]) == []
    clock.advance(3601)
    await dispatch_cycle(graph_services)  # a failed message waits for the seller
    assert standin.sent(seller.email) == []
    assert len(standin.messages(seller.email, "drafts")) == 1  # the one stamped draft
    again = await seller.http.post(f"/api/messages/{created['id']}/send", headers=seller.auth)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "sent" and again.json()["attempts"] == 0
    assert_sent_once(standin, seller, created["id"])


async def test_a_permanent_failure_fails_at_once_with_the_reason(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    standin.fail_next(1, status=403, retry_after=None, path_contains="/send", method="POST")
    response = await seller.http.post("/api/messages", json=compose_body(), headers=seller.auth)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "failed" and "403" in created["failure"]
    clock.advance(3601)
    await dispatch_cycle(graph_services)
    assert standin.sent(seller.email) == []
    resent = await seller.http.post(f"/api/messages/{created['id']}/send", headers=seller.auth)
    assert resent.status_code == 200, resent.text
    assert_sent_once(standin, seller, created["id"])


async def test_an_attempt_that_died_after_graph_sent_is_recorded_not_resent(
    seller: Seller, standin: GraphStandIn, graph_services: Services, clock: Clock
) -> None:
    created = (
        await seller.http.post("/api/messages", json=compose_body(send=False), headers=seller.auth)
    ).json()
    message_id = created["id"]
    # An attempt claimed it, queued it, had Graph send it, and died before writing "sent".
    now = clock.now()
    await dispatch_queue.schedule(graph_services, message_id, now)
    entity = dict(await graph_services.store.messages.get_entity(message_id[:8], message_id))
    await graph_services.store.messages.update_entity(
        {
            "PartitionKey": entity["PartitionKey"],
            "RowKey": message_id,
            **sending.sending_entity(now),
        },
        mode=UpdateMode.MERGE,
    )
    draft = await create_draft(
        graph_services.graph(), seller.email, await outgoing(graph_services, entity, followed=True)
    )
    assert draft.id is not None
    await send_draft(graph_services.graph(), seller.email, draft.id)
    busy = await seller.http.post(f"/api/messages/{message_id}/send", headers=seller.auth)
    assert busy.status_code == 409  # its lease still holds
    await dispatch_cycle(graph_services)
    assert (await shown(seller, message_id))["status"] == "sending"
    clock.advance(sending.LEASE.total_seconds() + 1)
    await dispatch_cycle(graph_services)
    recovered = await shown(seller, message_id)
    assert recovered["status"] == "sent"
    assert datetime.fromisoformat(recovered["sent_at"]) <= clock.now() + timedelta(seconds=1)
    assert_sent_once(standin, seller, message_id)
    assert await queued(graph_services, message_id) == []
