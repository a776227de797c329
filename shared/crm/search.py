"""Finding contacts, leads and accounts by name or address, a page at a time, however many
records there are: an index kept beside the address index (table `recordindex`).

Two partitions. `search` holds a row per term of a record, `{term}|{type}:{id}`: its whole
name, each word of its name, each address and each address's domain, folded (lower case,
accents off), so a prefix is one range query in term order. `names` holds a row per record,
`{folded name}|{type}:{id}`, for the list of every record by name. A record is indexed
before it is written and unindexed after (as its addresses are, shared.crm.records), so it
is never there without being found; a row the record no longer matches is skipped on read.

A record matching a prefix by several terms ("kim" by its name and its address) is shown
once, at the least of those terms: pages never repeat a record. A search answers in the
order of the terms matched; the list without a query, by name."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.core.errors import InvalidInput, NotFound
from shared.core.services import Services

RecordReader = Callable[[str, str], Awaitable[dict[str, Any]]]
_TERMS = "search"
_NAMES = "names"
_SEPARATOR = "|"
# Characters a RowKey may not hold (and our separator): folded into spaces.
_REFUSED = {"/", "\\", "#", "?", _SEPARATOR}
_READS = 16  # records read at once while a page is filled
_BATCH = 100  # the most operations one table transaction takes


def fold(text: str) -> str:
    """Text as the index keeps it: lower case, accents off, one space between words, no
    character a RowKey refuses. Pure."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = (
        " " if c in _REFUSED or unicodedata.category(c)[0] == "C" else c
        for c in decomposed
        if not unicodedata.combining(c)
    )
    return " ".join("".join(kept).split())


def terms(name: str, emails: Iterable[str]) -> set[str]:
    """The terms a record is found by: its name, each word of it, each address and each
    address's domain. Pure."""
    folded = fold(name)
    found = {folded, *folded.split()}
    for email in emails:
        address = fold(email)
        found |= {address, address.rpartition("@")[2]}
    return {t for t in found if t}


def _key(term: str, record_type: str, record_id: str) -> str:
    return f"{term}{_SEPARATOR}{record_type}:{record_id}"


def _rows(partition: str, keys: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    return [
        {"PartitionKey": partition, "RowKey": _key(t, kind, rid), "type": kind, "id": rid}
        for t, kind, rid in keys
    ]


async def index(
    services: Services, record_type: str, record_id: str, name: str, emails: list[str]
) -> None:
    """Make a record findable by its name and addresses (rows already there stay)."""
    table = services.store.records_index
    rows = _rows(_TERMS, ((t, record_type, record_id) for t in sorted(terms(name, emails))))
    for start in range(0, len(rows), _BATCH):
        await table.submit_transaction([("upsert", r) for r in rows[start : start + _BATCH]])
    await table.upsert_entity(_rows(_NAMES, [(fold(name), record_type, record_id)])[0])


async def unindex(
    services: Services,
    record_type: str,
    record_id: str,
    before: tuple[str, list[str]],
    after: tuple[str, list[str]],
) -> None:
    """Remove the rows of a record's old name and addresses that its new ones do not keep.
    Best effort: a row left behind is skipped on read."""
    gone = [(_TERMS, t) for t in terms(*before) - terms(*after)]
    if fold(before[0]) != fold(after[0]):
        gone.append((_NAMES, fold(before[0])))

    async def remove(partition: str, term: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            await services.store.records_index.delete_entity(
                partition, _key(term, record_type, record_id)
            )

    await asyncio.gather(*(remove(p, t) for p, t in gone))


def _continuation(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        key = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        key = ""
    if _SEPARATOR not in key:
        raise InvalidInput("continuation", "is not one this list gave")
    return key


async def _candidates(
    services: Services, partition: str, prefix: str, record_type: str | None, after: str | None
) -> AsyncIterator[dict[str, Any]]:
    """The index rows of a prefix after `after`, in key order (one query, paged lazily)."""
    query = "PartitionKey eq @pk and RowKey ge @low"
    parameters = {"pk": partition, "low": prefix}
    if prefix:  # the first key after every key that starts with the prefix
        query += " and RowKey lt @high"
        parameters["high"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    if after is not None:
        query += " and RowKey gt @after"
        parameters["after"] = after
    if record_type is not None:
        query += " and type eq @type"
        parameters["type"] = record_type
    async for row in services.store.records_index.query_entities(
        query, parameters=parameters, select=["RowKey", "type", "id"], results_per_page=_BATCH
    ):
        yield dict(row)


async def search(
    services: Services,
    query: str,
    *,
    record_type: str | None,
    limit: int,
    continuation: str | None,
    view: RecordReader,
) -> dict[str, Any]:
    """One page of the records whose name, a word of it, an address or a domain starts with
    `query` (every record, by name, when it is empty), of one type or all; `continuation`
    for the next page, null on the last. `view(type, id)` reads a record as the caller sees
    it (NotFound if it is gone). Reads at most `limit` records plus the stale rows met."""
    after = _continuation(continuation)
    prefix = fold(query)
    partition = _TERMS if prefix else _NAMES
    found: list[dict[str, Any]] = []
    last: str | None = None
    batch: list[dict[str, Any]] = []
    more = False
    async for row in _candidates(services, partition, prefix, record_type, after):
        if len(found) == limit:
            more = True  # one row beyond the page: there is a next one
            break
        batch.append(row)
        if len(batch) < min(_READS, limit - len(found)):
            continue
        last = await _take(batch, prefix, view, found)
        batch = []
    else:
        if batch:
            last = await _take(batch, prefix, view, found)
    token = base64.urlsafe_b64encode(last.encode()).decode() if more and last else None
    return {"records": found, "continuation": token}


async def _take(
    batch: list[dict[str, Any]], prefix: str, view: RecordReader, found: list[dict[str, Any]]
) -> str:
    """Read the batch's records and keep those the row still matches, each at the least of
    its matching terms only; the key of the last row of the batch."""

    async def read(row: dict[str, Any]) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = await view(row["type"], row["id"])
        except NotFound:
            return None  # indexed while being created, or gone
        return record

    records = await asyncio.gather(*(read(row) for row in batch))
    for row, record in zip(batch, records, strict=True):
        term = str(row["RowKey"]).rpartition(_SEPARATOR)[0]
        if record is None:
            continue
        if prefix:
            matching = [t for t in terms(record["name"], record["emails"]) if t.startswith(prefix)]
            if not matching or min(matching) != term:
                continue  # a stale row, or another term of the record comes first
        elif fold(record["name"]) != term:
            continue  # the record was renamed
        found.append(record)
    return str(batch[-1]["RowKey"])


async def reindex_all(services: Services) -> int:
    """Index every record (those created before this index was); how many."""
    count = 0
    async for row in services.store.records.query_entities(
        "PartitionKey eq 'contact' or PartitionKey eq 'lead' or PartitionKey eq 'account'",
        select=["PartitionKey", "RowKey", "name", "emails"],
    ):
        if not row.get("name"):
            continue  # a history row (shared.crm.records)
        await index(
            services, row["PartitionKey"], row["RowKey"], row["name"], json.loads(row["emails"])
        )
        count += 1
    return count
