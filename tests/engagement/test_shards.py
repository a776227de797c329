"""The fold split into shards, handed to workers through the Storage queue: workers side by
side, doubled deliveries, a worker killed mid-shard, the timer as backstop, and events of the
layout before shards. Each on an Azurite of its own, since cursors and the queue are global."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from azure.core.exceptions import ServiceRequestError
from pydantic import SecretStr

from shared.bootstrap import build_services
from shared.core.auth import dev_seller
from shared.core.services import Services
from shared.core.settings import Settings
from shared.core.storage import ensure_storage
from shared.crm import records
from shared.crm.records import RecordIn
from shared.engagement import history, shards
from shared.engagement.fold import fold_cycle
from shared.engagement.fold_queue import dispatch_cycle, fold_from_queue
from shared.engagement.kpis import from_columns
from shared.messages.compose import compose
from shared.messages.models import ComposeIn
from shared.tracking.events import Event, bucket_of, new_event, shard_of
from shared.tracking.recording import record_event
from tests.conftest import PERSON_USER_AGENT, Clock
from tests.utils.azurite import azurite
from tests.utils.faulty_storage import Cut, cuttable_services

MESSAGES = 24
OPENS = 3


@pytest.fixture
async def own() -> AsyncIterator[tuple[Services, Clock, str]]:
    with azurite(in_memory=True) as connection_string:
        clock = Clock()
        settings = Settings(storage_connection_string=SecretStr(connection_string))
        services = build_services(settings, clock.now)
        await ensure_storage(services.store)
        yield services, clock, connection_string
        await services.close()


async def _sent(services: Services, clock: Clock, name: str) -> list[str]:
    seller = dev_seller(f"{name}@contoso.example")
    address = f"{name}.reader@fabrikam.example"
    await records.create(services, seller, "contact", RecordIn(name="Reader", emails=[address]))
    made = [
        await compose(services, seller, ComposeIn(to=[address], subject=f"n{n}", html="<p>Hi</p>"))
        for n in range(MESSAGES)
    ]
    clock.advance(3 * 3600)  # read in the afternoon: people's opens, counted
    return [str(view["id"]) for view in made]


async def _opened(services: Services, clock: Clock, ids: list[str]) -> None:
    """OPENS opens of each message, from readers of their own, a few seconds apart."""
    for reader in range(OPENS):
        at = clock.advance(4)
        written = await asyncio.gather(
            *(
                record_event(
                    services.store,
                    new_event(
                        message_id=m,
                        kind="open",
                        index=0,
                        user_agent=PERSON_USER_AGENT,
                        ip=f"81.2.{n}.{reader + 1}",
                        at=at,
                    ),
                )
                for n, m in enumerate(ids)
            )
        )
        assert all(written)


async def _exact(services: Services, ids: list[str]) -> None:
    for message_id in ids:
        row = await services.store.messages.get_entity(message_id[:8], message_id)
        assert from_columns(row).opens == OPENS, message_id
        assert sum(from_columns(row).by_class["open"].values()) == OPENS
        rows = await history.read(services.store, message_id)
        assert len(rows) == OPENS  # one row per event, none doubled


async def test_workers_side_by_side_with_doubled_and_lost_deliveries_fold_exactly_once(
    own: tuple[Services, Clock, str],
) -> None:
    services, clock, connection_string = own
    ids = await _sent(services, clock, "shards.workers")
    assert len({shard_of(m) for m in ids}) > 4  # spread over many shards
    await _opened(services, clock, ids)
    now = clock.advance(services.settings.fold_grace_seconds + 20)
    report = await dispatch_cycle(services, now=now)
    busy = {shard_of(m) for m in ids}
    assert report.queued == len(busy) and report.backstop == 0  # the others just moved on
    queue = services.store.fold_queue
    delivered = [m async for m in queue.receive_messages(max_messages=32, visibility_timeout=2)]
    assert sorted(json.loads(m.content)["shard"] for m in delivered) == sorted(busy)
    # One worker dies mid-shard: storage cut at its third write. Its message is not deleted.
    killed, *rest = delivered
    cut = Cut(2)
    dying = cuttable_services(services, connection_string, cut)
    try:
        await fold_from_queue(dying, killed.content)
    except (ServiceRequestError, ExceptionGroup):
        pass  # storage went away mid-shard
    else:
        pytest.fail("the worker folded its shard with storage cut")
    assert cut.down
    await dying.close()

    async def worker(text: str) -> None:
        await fold_from_queue(services, text)

    # Every other message delivered twice, to workers running side by side.
    await asyncio.gather(*(worker(m.content) for m in rest for _ in range(2)))
    for message in rest:
        await queue.delete_message(message)
    await asyncio.sleep(2.5)  # the killed worker's message comes back
    again = [m async for m in queue.receive_messages(max_messages=32)]
    assert [m.content for m in again] == [killed.content]
    await asyncio.gather(worker(again[0].content), worker(again[0].content))
    await queue.delete_message(again[0])
    await _exact(services, ids)
    cursors = await shards.read(services.store)
    assert min(c.bucket for c in cursors.shards.values()) >= bucket_of(now - timedelta(seconds=40))
    assert (await dispatch_cycle(services, now=now)).queued == 0  # nothing left behind


async def test_the_timer_folds_shards_the_workers_left_behind(
    own: tuple[Services, Clock, str],
) -> None:
    services, clock, _ = own
    ids = await _sent(services, clock, "shards.backstop")
    await dispatch_cycle(services)  # shard cursors made, their messages never read
    await _opened(services, clock, ids)
    # No worker runs: the queue only grows; once the shards are FOLD_BACKSTOP_SECONDS
    # behind, the timer folds them itself, once however often it runs.
    clock.advance(services.settings.fold_grace_seconds + 10)
    early = await dispatch_cycle(services)
    assert early.backstop == 0 and early.folded.events == 0
    later = clock.advance(services.settings.fold_backstop_seconds + 20)
    reports = await asyncio.gather(
        dispatch_cycle(services, now=later), dispatch_cycle(services, now=later)
    )
    assert max(r.backstop for r in reports) == len({shard_of(m) for m in ids})
    await _exact(services, ids)


async def test_events_of_the_layout_before_shards_are_folded_first_and_once(
    own: tuple[Services, Clock, str],
) -> None:
    services, clock, _ = own
    ids = await _sent(services, clock, "shards.legacy")
    first, second = ids[: MESSAGES // 2], ids[MESSAGES // 2 :]
    # The previous version recorded two opens of every message under names without a shard,
    # and its fold got through none of them (its cursor is before them).
    old: list[Event] = []
    for reader in range(2):
        at = clock.advance(4)
        old += [
            new_event(
                message_id=m,
                kind="open",
                index=0,
                user_agent=PERSON_USER_AGENT,
                ip=f"81.3.{n}.{reader + 1}",
                at=at,
            )
            for n, m in enumerate(ids)
        ]
    for event in old:
        name = f"{event.bucket}/{event.message_id}/{event.event_id}"
        await services.store.interactions.upload_blob(name, event.body(), metadata=event.metadata())
    before = bucket_of(old[0].at - timedelta(seconds=10))
    await services.store.state.create_entity(
        {"PartitionKey": shards.PARTITION, "RowKey": shards.LEGACY, "bucket": before}
    )
    # The new version records the third open of each, sharded, while the old one drains.
    at = clock.advance(4)
    for n, m in enumerate(ids):
        event = new_event(
            message_id=m,
            kind="open",
            index=0,
            user_agent=PERSON_USER_AGENT,
            ip=f"81.4.{n}.1",
            at=at,
        )
        assert await record_event(services.store, event)
    now = clock.advance(services.settings.fold_grace_seconds + 20)
    await asyncio.gather(fold_cycle(services, now=now), fold_cycle(services, now=now))
    await _exact(services, first + second)
    cursors = await shards.read(services.store)
    assert cursors.legacy_started and not cursors.legacy_done  # it drains for a while yet
    later = clock.advance(shards.LEGACY_DRAIN.total_seconds() + 60)
    await fold_cycle(services, now=later)
    assert (await shards.read(services.store)).legacy_done
    await _exact(services, ids)
