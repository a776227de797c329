"""Where each fold shard has got to: one cursor per shard, and the legacy layout's.

Every cursor is a row of the `state` table's partition "fold", so one query reads them all
(the timer that hands out work, the alert cycle, the live view). A shard's cursor is the
newest bucket every message of the shard has absorbed; cycles move it with an etag, so two
workers folding one shard at once (a doubled queue delivery, the backstop) do the same
idempotent work and one of them moves it.

Events recorded before shards existed are named without one (shared.tracking.events) and are
followed by the "legacy" cursor, the single cursor of that layout, until it has passed the
moment the first sharded fold ran plus LEGACY_DRAIN (time for the tracking instances of the
previous version to stop writing it). Until then one fold (the timer's) folds both layouts
in the same listings: a message's events are folded a bucket at a time, so its events of one
bucket must all be folded together, whatever their names. One race is left, in the minutes
of an upgrade: a sharded event in a bucket whose other events of the same message the
previous version's fold had already folded is not counted (its fold did not know the name).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import UpdateMode

from shared.core.storage import Store, update_if_unchanged
from shared.tracking.events import SHARDS, bucket_of, shard_of

PARTITION = "fold"
LEGACY = "cursor"  # the RowKey of the cursor from before shards
LEGACY_DRAIN = timedelta(minutes=10)


def row_key(shard: int) -> str:
    return f"shard-{shard:02d}"


@dataclass(frozen=True, slots=True)
class Cursor:
    bucket: str
    etag: str


@dataclass(frozen=True, slots=True)
class Cursors:
    """Every cursor, as read at one moment."""

    shards: Mapping[int, Cursor] = field(default_factory=dict)
    legacy: Cursor | None = None  # None: no legacy row yet (first sharded run to come)
    legacy_until: str = ""  # the legacy layout is done once its cursor reaches this bucket
    shards_from: str = ""  # where a shard without a cursor starts (before any sharded event)

    @property
    def legacy_started(self) -> bool:
        """The first sharded run has set the legacy layout's end (a row left by the previous
        version has a cursor but no end)."""
        return self.legacy is not None and bool(self.legacy_until)

    @property
    def legacy_done(self) -> bool:
        return (
            self.legacy is not None
            and self.legacy_started
            and (self.legacy.bucket >= self.legacy_until)
        )

    def folded(self, message_id: str) -> str:
        """The newest bucket of which every event of the message is folded ("" if none)."""
        shard = self.shards.get(shard_of(message_id))
        if shard is None:
            return ""
        if self.legacy_done:
            return shard.bucket
        return min(shard.bucket, self.legacy.bucket if self.legacy else "")


async def read(store: Store) -> Cursors:
    """Every cursor, in one query."""
    shards: dict[int, Cursor] = {}
    legacy: Cursor | None = None
    until = start = ""
    async for row in store.state.query_entities(
        "PartitionKey eq @pk", parameters={"pk": PARTITION}
    ):
        cursor = Cursor(str(row.get("bucket") or ""), str(row.metadata["etag"]))
        key = str(row["RowKey"])
        if key == LEGACY:
            legacy, until = cursor, str(row.get("until") or "")
            start = str(row.get("shards_from") or "")
        elif key.startswith("shard-") and key[6:].isdigit() and int(key[6:]) < SHARDS:
            shards[int(key[6:])] = cursor
    return Cursors(shards, legacy, until, start)


async def start_legacy(
    store: Store, legacy_from: str | None, first_bucket: str | None, closed: str, now: datetime
) -> None:
    """Start the legacy cursor on the first sharded run.
    - With events of the previous version (`legacy_from`: the bucket before its earliest one)
      or its cursor: fold them from there (or where its cursor got to) until now +
      LEGACY_DRAIN; shards start 2 x LEGACY_DRAIN ago (the previous version's fold ignored
      sharded names, and they can only exist since the new version started).
    - Without: done at once, and shards start before the earliest event (`first_bucket`)."""
    drained, recent = bucket_of(now + LEGACY_DRAIN), bucket_of(now - 2 * LEGACY_DRAIN)
    row = {
        "PartitionKey": PARTITION,
        "RowKey": LEGACY,
        "bucket": legacy_from or closed,
        "until": drained if legacy_from else closed,
        "shards_from": recent if legacy_from else (first_bucket or closed),
    }
    try:
        await store.state.create_entity(row)
    except ResourceExistsError:
        found = await store.state.get_entity(PARTITION, LEGACY)
        if found.get("until"):
            return  # another worker started it first
        # the previous version's cursor: keep where it got to
        update = {
            "PartitionKey": PARTITION,
            "RowKey": LEGACY,
            "until": drained,
            "shards_from": recent,
        }
        with contextlib.suppress(ResourceModifiedError):
            await update_if_unchanged(store.state, update, str(found.metadata["etag"]))


async def save(store: Store, key: str, bucket: str, cursor: Cursor | None) -> Cursor | None:
    """Move a cursor (the shard's row key, or LEGACY) to `bucket` if nobody moved it since it
    was read; None when someone did (their cycle did the same work, idempotently)."""
    entity = {"PartitionKey": PARTITION, "RowKey": key, "bucket": bucket}
    try:
        if cursor is None:
            written = await store.state.create_entity(entity)
        else:
            written = await store.state.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=cursor.etag,
                match_condition=MatchConditions.IfNotModified,
            )
    except (ResourceExistsError, ResourceModifiedError):
        return None
    return Cursor(bucket, str(written["etag"]))
