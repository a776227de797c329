"""Identifiers: sellers' and mailboxes' keys, message ids that carry a message partition,
sortable event ids.

A seller is a Microsoft Entra user, known by (tenant id, object id): e-mail addresses and
UPNs change and can be reassigned, the pair does not. Everything a seller owns is keyed by
`seller_key`, the whole SHA-256 of that pair: no truncated hash anywhere two people's data
could merge. A mailbox is a Graph object named by its address; its rows are keyed by
`mailbox_key`, the whole SHA-256 of the address.

Message ids are 16 bytes because tracking tokens carry them; their first 40 bits are the
message partition (`message_partition` of the owner's key), so a tracking hit finds the row
without a lookup. Two owners may share a partition (40 bits collide): every read of a
message checks its full `owner` column, and nothing else is keyed by the partition.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime

MESSAGE_ID_BYTES = 16
_PARTITION_BYTES = 5  # 40 bits: 8 base32 characters, the messages table's partition


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.strip().lower().encode("utf-8")).digest()


def seller_key(tenant_id: str, object_id: str) -> str:
    """A seller's key (52 characters, all 256 bits of SHA-256 of tenant and object id): the
    partition of their alerts, the row of their webhook, their messages' `owner`."""
    return _b32(_digest(f"{tenant_id}/{object_id}"))


def mailbox_key(address: str) -> str:
    """A mailbox's key (52 characters, the whole SHA-256 of its address), so no address
    appears in keys or blob names."""
    return _b32(_digest(f"mailbox:{address}"))


def message_partition(owner: str) -> str:
    """The 8-character message partition of an owner (a seller's key). Messages made before
    sellers had keys live in `message_partition(their seller's address)`."""
    return _b32(_digest(owner)[:_PARTITION_BYTES])


def new_message_id(owner: str) -> str:
    """A 26-character id: the owner's message partition (8 chars) then 88 random bits."""
    raw = _digest(owner)[:_PARTITION_BYTES] + secrets.token_bytes(
        MESSAGE_ID_BYTES - _PARTITION_BYTES
    )
    return _b32(raw)


def message_id_to_bytes(message_id: str) -> bytes:
    """Raw 16 bytes of a message id, for tokens; ValueError if it is not one of ours."""
    if len(message_id) != 26:
        raise ValueError("not a message id")
    raw = base64.b32decode(message_id.upper() + "======")
    if len(raw) != MESSAGE_ID_BYTES:
        raise ValueError("not a message id")
    return raw


def message_id_from_bytes(raw: bytes) -> str:
    """Inverse of message_id_to_bytes."""
    return _b32(raw)


def partition_of(message_id: str) -> str:
    """The message partition a message id lives in (its owner's `message_partition`)."""
    return message_id[:8]


def is_message_id(value: str) -> bool:
    """True for a syntactically valid message id (26 base32 characters)."""
    try:
        message_id_to_bytes(value)
    except (ValueError, base64.binascii.Error):  # type: ignore[attr-defined]
        return False
    return value == value.lower()


def new_event_id(at: datetime | None = None) -> str:
    """Time-ordered unique id: milliseconds since the epoch in hex, then 48 random bits."""
    moment = at or datetime.now(UTC)
    return f"{int(moment.timestamp() * 1000):012x}{secrets.token_hex(6)}"


def index_key(value: str) -> str:
    """Row key for an Internet message id or conversation id (they hold '/' and '#')."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:40]
