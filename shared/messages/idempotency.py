"""Idempotent compose: the `Idempotency-Key` header (as Stripe's API and the IETF draft
"The Idempotency-Key HTTP Header Field" use it).

The first request with a key reserves it for a message id before anything else is written;
a retry with the same key and the same body gets that message back, as it is now, and never
creates or sends a second one. The same key with another body is refused (422); a retry
while the first request is still at work is told to wait (409). Keys are kept
`idempotency_hours` (24 by default), longer than any client retries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)

from shared.core.auth import Seller
from shared.core.errors import Conflict, InvalidInput
from shared.core.services import Services
from shared.core.storage import update_if_unchanged

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A first request still at work holds its key this long; past it, a retry takes over.
_IN_FLIGHT = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Reservation:
    """The message id a key stands for, and whether an earlier request reserved it."""

    message_id: str
    replay: bool
    reserved_at: datetime

    def in_flight(self, now: datetime) -> bool:
        """Whether the request that reserved the key may still be at work."""
        return self.replay and self.reserved_at + _IN_FLIGHT > now


def check_key(key: str) -> str:
    """A key is 1 to 255 visible ASCII characters."""
    if not (0 < len(key) <= MAX_KEY_LENGTH) or not all(" " < c < "\x7f" for c in key):
        raise InvalidInput(HEADER, f"must be 1 to {MAX_KEY_LENGTH} visible ASCII characters")
    return key


def fingerprint(body: Any) -> str:
    """The request body, hashed canonically (key order does not matter). Pure."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _row_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]


async def reserve(
    services: Services, seller: Seller, key: str, body_hash: str, message_id: str
) -> Reservation:
    """Reserve `key` for `message_id`, or find what it was reserved for."""
    now = services.clock()
    row = {
        "PartitionKey": seller.key,
        "RowKey": _row_key(check_key(key)),
        "owner": seller.key,
        "fingerprint": body_hash,
        "message_id": message_id,
        "created_at": now.isoformat(),
    }
    table = services.store.idempotency
    try:
        await table.create_entity(row)
        return Reservation(message_id, False, now)
    except ResourceExistsError:
        pass
    try:
        found = await table.get_entity(seller.key, row["RowKey"])
    except ResourceNotFoundError:  # removed meanwhile by the purge: start afresh
        return await reserve(services, seller, key, body_hash, message_id)
    expired = datetime.fromisoformat(found["created_at"]) < now - timedelta(
        hours=services.settings.idempotency_hours
    )
    if expired or found.get("owner") != seller.key:
        try:
            await update_if_unchanged(table, row, found.metadata["etag"], replace=True)
        except ResourceModifiedError:
            raise Conflict(f"a request with this {HEADER} is in progress; retry") from None
        return Reservation(message_id, False, now)
    if found["fingerprint"] != body_hash:
        raise InvalidInput(HEADER, "was already used with a different request body")
    return Reservation(str(found["message_id"]), True, datetime.fromisoformat(found["created_at"]))


async def purge(services: Services) -> int:
    """Forget keys older than `idempotency_hours`; returns how many."""
    cutoff = services.clock() - timedelta(hours=services.settings.idempotency_hours)
    table = services.store.idempotency
    purged = 0
    async for row in table.query_entities(
        "created_at lt @cutoff", parameters={"cutoff": cutoff.isoformat()}
    ):
        await table.delete_entity(row["PartitionKey"], row["RowKey"])
        purged += 1
    return purged
