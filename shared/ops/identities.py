"""Moving data keyed the old way to sellers keyed by their Entra id
(`python -m shared.ops.cli migrate-identities`).

Before, a seller was a 40-bit hash of their address: their messages' partition, their
alerts' partition and their webhook's row. Now a seller is (tenant id, object id)
(shared.core.auth), and a mailbox is the whole hash of its address (shared.core.ids). Data
written before stays readable only once it is moved:

- messages keep their ids and partitions (links already sent carry the ids); each gets its
  `owner`, and the seller's older partitions are recorded (shared.core.sellers) so their
  list finds them;
- alerts move to their message's owner, webhooks (and deliveries queued for them) to the
  seller's key, templates get their creator's key;
- mailboxes' rows and the sent-mail index move to the mailbox's whole key.

Which address is which seller comes from a map (a CSV file of `email,tenant_id,object_id`,
as `az ad user list` gives them) or, on a laptop, from the development identities
(`--dev`). Every step is idempotent: run it again after adding to the map. Nothing is
removed that was not written again first.
"""

from __future__ import annotations

import contextlib
import csv
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.core import list_index, sellers
from shared.core.auth import DEV_TENANT_ID, dev_object_id, email_address
from shared.core.ids import mailbox_key, message_partition, partition_of, seller_key
from shared.core.services import Services
from shared.core.storage import Store
from shared.messages.sent_index import index_partition

_LEGACY = 8  # length of the old keys (40 bits in base32)
_INDEX_KINDS = ("imid", "conv")


@dataclass
class MigrationReport:
    """What one run moved, and what it could not (addresses the map does not name)."""

    messages_owned: int = 0
    sellers_with_older_partitions: int = 0
    alerts_moved: int = 0
    webhooks_moved: int = 0
    deliveries_moved: int = 0
    templates_owned: int = 0
    mailbox_rows_moved: int = 0
    index_rows_moved: int = 0
    unmapped_sellers: list[str] = field(default_factory=list)
    webhooks_left: int = 0  # of sellers the map does not name (or two addresses that collided)


def read_map(path: Path) -> dict[str, str]:
    """Address -> seller key, from a CSV file with the columns email, tenant_id, object_id."""
    keys: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as file:
        for number, row in enumerate(csv.DictReader(file), start=2):
            try:
                address = email_address(row["email"])
                tenant, user = str(uuid.UUID(row["tenant_id"])), str(uuid.UUID(row["object_id"]))
            except (KeyError, ValueError, TypeError, AttributeError) as error:
                raise ValueError(f"{path}, line {number}: {error}") from None
            keys[address] = seller_key(tenant, user)
    return keys


def dev_map(addresses: Iterable[str]) -> dict[str, str]:
    """Address -> seller key as development tokens name them (shared.core.auth.dev_seller)."""
    keys = {}
    for address in addresses:
        try:
            keys[email_address(address)] = seller_key(DEV_TENANT_ID, dev_object_id(address))
        except ValueError:
            continue
    return keys


async def seller_addresses(store: Store) -> set[str]:
    """Every seller address the old data names (messages' senders, templates' creators)."""
    found = {
        str(row["seller"]).lower()
        async for row in store.messages.query_entities(
            list_index.MESSAGE_ROWS_FILTER, select=["seller"]
        )
        if row.get("seller")
    }
    async for row in store.templates.list_entities(select=["created_by"]):
        if row.get("created_by"):
            found.add(str(row["created_by"]).lower())
    return found


async def migrate(services: Services, keys: Mapping[str, str]) -> MigrationReport:
    """Move everything keyed the old way that `keys` (address -> seller key) accounts for."""
    report = MigrationReport()
    store = services.store
    await _messages(store, keys, report)
    await _alerts(store, report)
    await _webhooks(store, keys, report)
    await _templates(store, keys, report)
    await _mailboxes(store, report)
    await _sent_index(store, report)
    return report


async def _messages(store: Store, keys: Mapping[str, str], report: MigrationReport) -> None:
    older: dict[str, set[str]] = defaultdict(set)
    unmapped: set[str] = set()
    rows = store.messages.query_entities(
        list_index.MESSAGE_ROWS_FILTER, select=["PartitionKey", "RowKey", "seller", "owner"]
    )
    async for row in rows:
        owner = row.get("owner")
        if not owner:
            owner = keys.get(str(row.get("seller", "")).lower())
            if owner is None:
                unmapped.add(str(row.get("seller", "")))
                continue
            await _own(store, row["PartitionKey"], row["RowKey"], owner)
            report.messages_owned += 1
        if row["PartitionKey"] != message_partition(owner):
            older[owner].add(row["PartitionKey"])
    for owner, partitions in older.items():
        await sellers.add_partitions(store, owner, partitions)
    report.sellers_with_older_partitions = len(older)
    report.unmapped_sellers = sorted(unmapped)


async def _own(store: Store, partition: str, message_id: str, owner: str) -> None:
    """Give a message its owner, which lists it: its list index rows are written with it
    (shared.core.list_index), in one transaction."""
    keys = {"PartitionKey": partition, "RowKey": message_id}
    await list_index.merge_message(
        store.messages,
        partition,
        message_id,
        {**keys, "owner": owner, list_index.LISTED: list_index.VERSION},
    )


async def _owner_of_message(store: Store, message_id: str) -> str | None:
    try:
        row = await store.messages.get_entity(
            partition_of(message_id), message_id, select=["owner"]
        )
    except ResourceNotFoundError:
        return None
    return str(row["owner"]) if row.get("owner") else None


async def _move(table: Any, row: Mapping[str, Any], partition: str, row_key: str) -> None:
    """Write `row` under new keys (unless something is there already), then remove it."""
    moved = {k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey")}
    # Already there: moved by an earlier run that stopped before the delete, or made anew.
    with contextlib.suppress(ResourceExistsError):
        await table.create_entity({"PartitionKey": partition, "RowKey": row_key, **moved})
    await table.delete_entity(row["PartitionKey"], row["RowKey"])


async def _alerts(store: Store, report: MigrationReport) -> None:
    async for row in store.alerts.list_entities():
        if len(row["PartitionKey"]) != _LEGACY:
            continue
        owner = await _owner_of_message(store, str(row.get("message_id", "")))
        if owner is not None:
            await _move(store.alerts, row, owner, row["RowKey"])
            report.alerts_moved += 1


async def _webhooks(store: Store, keys: Mapping[str, str], report: MigrationReport) -> None:
    by_old: dict[str, set[str]] = defaultdict(set)
    for address, key in keys.items():
        by_old[message_partition(address)].add(key)
    async for row in store.webhooks.list_entities():
        old = row["RowKey"].partition("|")[0]
        if len(old) != _LEGACY:
            continue
        owners = by_old.get(old, set())
        if len(owners) != 1:  # not in the map, or two mapped addresses shared the old key
            if row["PartitionKey"] == "config":
                report.webhooks_left += 1
            continue
        (owner,) = owners
        await _move(store.webhooks, row, row["PartitionKey"], owner + row["RowKey"][_LEGACY:])
        if row["PartitionKey"] == "config":
            report.webhooks_moved += 1
        else:
            report.deliveries_moved += 1


async def _templates(store: Store, keys: Mapping[str, str], report: MigrationReport) -> None:
    rows = store.templates.list_entities(
        select=["PartitionKey", "RowKey", "created_by", "created_by_id"]
    )
    async for row in rows:
        key = keys.get(str(row.get("created_by", "")).lower())
        if row.get("created_by_id") or key is None:
            continue
        await store.templates.update_entity(
            {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "created_by_id": key},
            mode=UpdateMode.MERGE,
        )
        report.templates_owned += 1


async def _mailboxes(store: Store, report: MigrationReport) -> None:
    partitions: dict[str, list[Any]] = defaultdict(list)
    async for row in store.mailboxes.list_entities():
        if len(row["PartitionKey"]) == _LEGACY:
            partitions[row["PartitionKey"]].append(row)
    for rows in partitions.values():
        state = next((r for r in rows if r["RowKey"] == "state" and r.get("email")), None)
        if state is None:
            continue  # no address to key them by: left as they are
        new = mailbox_key(str(state["email"]))
        for row in sorted(rows, key=lambda r: r["RowKey"] == "state"):  # the state row last
            await _move(store.mailboxes, row, new, row["RowKey"])
            report.mailbox_rows_moved += 1


async def _sent_index(store: Store, report: MigrationReport) -> None:
    async for row in store.message_index.list_entities():
        kind, _, old = row["PartitionKey"].partition("-")
        if kind not in _INDEX_KINDS or len(old) != _LEGACY:
            continue
        message_id = str(row.get("message_id", ""))
        try:
            message = await store.messages.get_entity(
                partition_of(message_id), message_id, select=["seller"]
            )
        except ResourceNotFoundError:
            continue
        new = index_partition(kind, mailbox_key(str(message["seller"])))
        await _move(store.message_index, row, new, row["RowKey"])
        report.index_rows_moved += 1
