"""Identifiers: message ids that carry their seller's partition, sortable event ids."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime

MESSAGE_ID_BYTES = 16
_SELLER_KEY_BYTES = 5  # 40 bits: 8 base32 characters, the messages table's partition


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def seller_key(seller: str) -> str:
    """Partition key for a seller: a hash, so no address appears in keys or blob names."""
    return _b32(hashlib.sha256(seller.strip().lower().encode("utf-8")).digest()[:_SELLER_KEY_BYTES])


def new_message_id(seller: str) -> str:
    """A 26-character id: the seller's partition (8 chars) then 88 random bits."""
    digest = hashlib.sha256(seller.strip().lower().encode("utf-8")).digest()
    raw = digest[:_SELLER_KEY_BYTES] + secrets.token_bytes(MESSAGE_ID_BYTES - _SELLER_KEY_BYTES)
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
    """The seller partition a message id lives in."""
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
