"""Building the followed-emails list's index for messages written before it existed
(`python -m shared.ops.cli build-list-index`).

Partition by partition: the message rows (their sort columns and ETags), then the index rows
already there, summed per message. A message whose index is what its row says, and whose
row is `listed`, is left alone; any other gets its missing index rows, loses the ones that
do not match, and is marked `listed`, all in one transaction conditional on the ETag the row
was read with. So it is idempotent (a second run writes nothing), restartable (a run cut
short leaves every message either done or untouched), and safe while the app runs: a row
changed since it was read is read again, and a row the app has listed meanwhile has the
index the app wrote with it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient

from shared.core import list_index
from shared.core.storage import Store

_COLUMNS = [
    "PartitionKey",
    "RowKey",
    "owner",
    "follow_state",
    list_index.LISTED,
    *list_index.SORT_FIELDS,
]
_BATCH = 100
_TRIES = 20
_IN_FLIGHT = 8  # messages written at once
_PROGRESS = 1000  # messages between progress lines


@dataclass
class BuildReport:
    """What one run did."""

    partitions: int = 0
    messages: int = 0  # message rows read
    indexed: int = 0  # given their index rows (or had them repaired) by this run
    already: int = 0  # listed with the right index rows already (or listed by the app meanwhile)
    unowned: int = 0  # without an owner: not listed until `migrate-identities` gives one
    reread: int = 0  # changed between the read and the write: read again
    index_rows_written: int = 0
    index_rows_deleted: int = 0


def _digest(keys: Iterable[str]) -> tuple[int, int]:
    """(count, order-free 64-bit sum of hashes) of a set of index keys: a partition's index
    rows are tallied per message without holding every key."""
    count = total = 0
    for key in keys:
        count += 1
        total = (total + int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest())) % (
            1 << 64
        )
    return count, total


async def _partitions(table: TableClient) -> AsyncIterator[list[dict[str, Any]]]:
    """The message rows (sort columns, with their ETags), one partition at a time."""
    rows: list[dict[str, Any]] = []
    async for entity in table.query_entities(list_index.MESSAGE_ROWS_FILTER, select=_COLUMNS):
        if rows and rows[0]["PartitionKey"] != entity["PartitionKey"]:
            yield rows
            rows = []
        row = dict(entity)
        row["etag"] = str(entity.metadata["etag"])
        rows.append(row)
    if rows:
        yield rows


def _index_query(table: TableClient, partition: str) -> Any:
    return table.query_entities(
        "PartitionKey eq @pk and RowKey ge @low",
        parameters={"pk": partition, "low": list_index.PREFIX},
        select=["RowKey", "message"],
    )


async def _tallies(table: TableClient, partition: str) -> dict[str, tuple[int, int]]:
    """Per message id: (count, digest) of the index rows the partition holds for it."""
    keys: dict[str, list[str]] = defaultdict(list)
    tallies: dict[str, tuple[int, int]] = {}
    async for row in _index_query(table, partition):
        message = str(row.get("message") or "")
        keys[message].append(str(row["RowKey"]))
        if len(keys[message]) == 2 * len(list_index.SORT_FIELDS) * len(list_index.ORDERS):
            count, total = tallies.get(message, (0, 0))
            more, add = _digest(keys.pop(message))
            tallies[message] = (count + more, (total + add) % (1 << 64))
    for message, held in keys.items():
        count, total = tallies.get(message, (0, 0))
        more, add = _digest(held)
        tallies[message] = (count + more, (total + add) % (1 << 64))
    return tallies


async def _keys_of(table: TableClient, partition: str, ids: set[str]) -> dict[str, set[str]]:
    """The index keys the partition holds for these messages (the ones to repair)."""
    found: dict[str, set[str]] = defaultdict(set)
    async for row in _index_query(table, partition):
        if row.get("message") in ids:
            found[str(row["message"])].add(str(row["RowKey"]))
    return found


async def _write(
    table: TableClient, row: Mapping[str, Any], found: set[str], report: BuildReport
) -> None:
    """Mark the row `listed` and move its index from `found` to what the row says, in one
    transaction conditional on the row's ETag (more than one only past 99 index changes,
    each carrying the row's ETag as the last one left it)."""
    expected = list_index.index_rows(list_index.listed(row))
    operations: list[list_index.Operation] = [
        ("delete", {"PartitionKey": row["PartitionKey"], "RowKey": key})
        for key in sorted(found - set(expected))
    ]
    operations += [("upsert", entity) for key, entity in expected.items() if key not in found]
    keys = {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]}
    etag = str(row["etag"])
    for start in range(0, max(len(operations), 1), _BATCH - 1):
        chunk = operations[start : start + _BATCH - 1]
        mark: list_index.Operation = (
            "update",
            {**keys, list_index.LISTED: list_index.VERSION},
            {
                "mode": UpdateMode.MERGE,
                "etag": etag,
                "match_condition": MatchConditions.IfNotModified,
            },
        )
        try:
            done = await table.submit_transaction([mark, *chunk])
        except TableTransactionError as error:
            list_index.raise_for(error)
        etag = str(done[0]["etag"])
        report.index_rows_written += sum(1 for op in chunk if op[0] == "upsert")
        report.index_rows_deleted += sum(1 for op in chunk if op[0] == "delete")


async def _index_one(
    table: TableClient, row: dict[str, Any], found: set[str], report: BuildReport
) -> None:
    for _ in range(_TRIES):
        try:
            await _write(table, row, found, report)
            report.indexed += 1
            return
        except ResourceModifiedError:
            report.reread += 1
        try:
            entity = await table.get_entity(row["PartitionKey"], row["RowKey"])
        except ResourceNotFoundError:
            return  # deleted meanwhile
        if list_index.is_listed(entity):
            report.already += 1  # listed by the app meanwhile, with its index rows
            return
        row = {**dict(entity), "etag": str(entity.metadata["etag"])}
        # Not listed: the app leaves its index alone, so `found` still holds.
    raise RuntimeError(f"message {row['RowKey']} kept changing while its index was built")


async def _index_many(
    table: TableClient,
    rows: list[dict[str, Any]],
    found: Mapping[str, set[str]],
    report: BuildReport,
) -> None:
    gate = asyncio.Semaphore(_IN_FLIGHT)

    async def one(row: dict[str, Any]) -> None:
        async with gate:
            await _index_one(table, row, found.get(row["RowKey"], set()), report)

    await asyncio.gather(*(one(row) for row in rows))


async def build(
    store: Store, progress: Callable[[BuildReport, str], None] | None = None
) -> BuildReport:
    """Build (or repair) the list index of every message row; see the module's docstring."""
    report = BuildReport()
    table = store.messages
    async for rows in _partitions(table):
        partition = rows[0]["PartitionKey"]
        report.partitions += 1
        report.messages += len(rows)
        tallies = await _tallies(table, partition)
        todo: list[dict[str, Any]] = []
        for row in rows:
            if not row.get("owner"):
                report.unowned += 1
                continue
            expected = _digest(list_index.index_rows(list_index.listed(row)))
            if list_index.is_listed(row) and tallies.get(row["RowKey"], (0, 0)) == expected:
                report.already += 1
            else:
                todo.append(row)
        stale = {r["RowKey"] for r in todo if r["RowKey"] in tallies}
        found = await _keys_of(table, partition, stale) if stale else {}
        for start in range(0, len(todo), _PROGRESS):
            await _index_many(table, todo[start : start + _PROGRESS], found, report)
            if progress is not None and start + _PROGRESS < len(todo):
                progress(report, partition)
        if progress is not None:
            progress(report, partition)
    return report
