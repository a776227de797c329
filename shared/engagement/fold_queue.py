"""Handing fold shards to workers that scale out: a Storage queue, with the timer as the
backstop.

The fold timer (a singleton, every 10 s) lists the shard folders of the buckets closed since
(one listing a bucket), moves on the cursor of each shard without events, and puts one
message on the `fold-shards` queue for each shard with some. Queue-triggered workers (as
many instances as the queue's length calls for) each fold the shard of the message they got.
Delivery is at least once: a doubled message, or one seen again after its worker died
mid-fold, folds what is left or nothing (cursors, and the KPIs' folded buckets, make every
fold idempotent). A shard the workers leave more than FOLD_BACKSTOP_SECONDS behind (no
worker running, a poisoned message) the timer folds itself. While events named without a
shard may still come (minutes after an upgrade), the timer folds everything itself
(shared.engagement.shards).

Why a queue and not Event Grid's blob-created events: a queue message per shard per cycle
(at most 16 every 10 s), not one per tracking hit; it works on Azurite, so the tests drive
the same code; and its retries, visibility timeout and poison queue are the at-least-once
delivery the cursors are built for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.core.services import Services
from shared.core.storage import Store
from shared.engagement import shards
from shared.engagement.fold import FoldReport, fold_cycle, fold_shards, started_cursors
from shared.tracking.events import SHARDS, last_closed_bucket, next_bucket

logger = logging.getLogger(__name__)
_MESSAGE_TTL_SECONDS = 600  # an unread message past this is stale: the timer sends others
_LOOK_BUCKETS = 60  # past ten minutes behind, every shard behind is queued without looking


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What one timer cycle did."""

    queued: int  # shards handed to the workers
    backstop: int  # shards the timer folded itself, the workers being behind
    folded: FoldReport  # what it folded itself (the legacy layout, the shards behind)


def message(shard: int, through: str) -> str:
    """The queue message asking a worker to fold a shard up to a bucket."""
    return json.dumps({"shard": shard, "through": through}, separators=(",", ":"))


def parse(text: str) -> int | None:
    """The shard a queue message names, or None for one that is not ours."""
    try:
        shard = json.loads(text)["shard"]
    except (ValueError, KeyError, TypeError):
        return None
    return shard if isinstance(shard, int) and 0 <= shard < SHARDS else None


async def _with_events(store: Store, after: str, through: str) -> set[int] | None:
    """The shards with events in the closed buckets (after, through], from one listing of each
    bucket's shard folders; None when that is too many buckets to look at (catching up)."""
    buckets: list[str] = []
    bucket = next_bucket(after)
    while bucket <= through:
        buckets.append(bucket)
        if len(buckets) > _LOOK_BUCKETS:
            return None
        bucket = next_bucket(bucket)

    async def shards_in(bucket: str) -> set[int]:
        found = set()
        async for item in store.interactions.walk_blobs(
            name_starts_with=f"{bucket}/", delimiter="/"
        ):
            name = str(item.name)[len(bucket) + 1 :].rstrip("/")
            if len(name) == 2 and name.isdigit():
                found.add(int(name))
        return found

    return set().union(*await asyncio.gather(*(shards_in(b) for b in buckets)))


async def dispatch_cycle(services: Services, *, now: datetime | None = None) -> DispatchReport:
    """The timer's cycle: queue each shard with events to fold (a shard without any just has
    its cursor moved on: closed buckets never change), and fold any shard the workers have
    left behind by more than FOLD_BACKSTOP_SECONDS. Safe to run twice."""
    store = services.store
    moment = now or services.clock()
    closed = last_closed_bucket(moment, services.grace)
    cursors = await started_cursors(services, moment, closed)
    if not cursors.legacy_done:  # both layouts are folded together, here, for a while
        return DispatchReport(0, 0, await fold_cycle(services, now=moment))
    # where each shard has got to (one no worker has folded yet: where shards start)
    done = [
        c.bucket if (c := cursors.shards.get(k)) else cursors.shards_from for k in range(SHARDS)
    ]
    behind = [k for k in range(SHARDS) if done[k] < closed]
    busy = await _with_events(store, min(done), closed) if behind else set()
    idle = [] if busy is None else [k for k in behind if k not in busy]
    await asyncio.gather(
        *(shards.save(store, shards.row_key(k), closed, cursors.shards.get(k)) for k in idle)
    )
    behind = [k for k in behind if k not in idle]
    wait = timedelta(seconds=services.settings.fold_backstop_seconds)
    late = last_closed_bucket(moment - wait, services.grace)  # closed that long ago
    lagging = [k for k in behind if done[k] < late]
    await asyncio.gather(
        *(
            store.fold_queue.send_message(message(k, closed), time_to_live=_MESSAGE_TTL_SECONDS)
            for k in behind
            if k not in lagging
        )
    )
    folded = await fold_shards(services, lagging, now=moment) if lagging else None
    if lagging:
        logger.warning("fold: the timer folded %s shards the workers had left behind", len(lagging))
    return DispatchReport(
        len(behind) - len(lagging),
        len(lagging),
        folded or FoldReport(closed, 0, 0, 0, 0),
    )


async def fold_from_queue(services: Services, text: str) -> FoldReport | None:
    """A worker's fold of the shard one queue message names (None: not our message, dropped)."""
    shard = parse(text)
    if shard is None:
        logger.warning("fold: dropped a queue message that names no shard")
        return None
    return await fold_shards(services, [shard])
