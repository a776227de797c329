"""Signed tracking tokens: short, unguessable, verifiable without touching storage.

A token names a message, what it tracks (open, click, attachment) and which link or
attachment; it never carries a URL, so our domain cannot be made to redirect anywhere the
seller did not write. Layout: ``{kid}.{base64url(payload || mac)}`` where payload is
kind (1 byte) + message id (16 bytes) + index (2 bytes) and mac is the first 14 bytes of
HMAC-SHA256(key, kid || 0 || payload). A message sent to each recipient separately gives
each copy its own tokens: the kind byte is upper case and 3 bytes of copy number (1, 2, ...)
follow the index (48 characters instead of 44). The key id lets keys rotate: the active key
signs, every configured key verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from shared.core.ids import MESSAGE_ID_BYTES, message_id_from_bytes, message_id_to_bytes

Kind = Literal["open", "click", "attachment"]
_KIND_BYTE: dict[str, int] = {"open": ord("o"), "click": ord("c"), "attachment": ord("a")}
_BYTE_KIND: dict[int, Kind] = {ord("o"): "open", ord("c"): "click", ord("a"): "attachment"}
_COPY_CASE = 0x20  # the kind byte in upper case: a copy number follows the index
_MAC_BYTES = 14  # payload + mac = 33 bytes: 44 base64 characters, no padding
_PAYLOAD_BYTES = 1 + MESSAGE_ID_BYTES + 2
_COPY_BYTES = 3  # with a copy: 36 bytes, 48 characters
_LENGTHS = {  # token body length -> payload bytes
    4 * (_PAYLOAD_BYTES + _MAC_BYTES) // 3: _PAYLOAD_BYTES,
    4 * (_PAYLOAD_BYTES + _COPY_BYTES + _MAC_BYTES) // 3: _PAYLOAD_BYTES + _COPY_BYTES,
}
MAX_INDEX = 0xFFFF
MAX_COPY = 0xFFFFFF
_SHA256_BLOCK = 64


@dataclass(frozen=True, slots=True)
class TrackingRef:
    """What a valid token points at."""

    kind: Kind
    message_id: str
    index: int
    copy: int = 0  # which recipient's copy (1, 2, ...); 0 for one copy sent to everyone


class TokenSigner:
    """Signs with the active key and verifies with any configured key."""

    def __init__(self, keys: Mapping[str, bytes], active_kid: str) -> None:
        if active_kid not in keys:
            raise ValueError("active key id is not among the keys")
        self._keys = dict(keys)
        self._active = active_kid

    def _mac(self, kid: str, payload: bytes) -> bytes:
        message = kid.encode("ascii") + b"\x00" + payload
        return hmac.new(self._keys[kid], message, hashlib.sha256).digest()[:_MAC_BYTES]

    def sign(self, ref: TrackingRef) -> str:
        """The token for `ref`, signed with the active key."""
        return self.signer_for(ref.kind, ref.message_id, ref.copy)(ref.index)

    def signer_for(self, kind: Kind, message_id: str, copy: int = 0) -> Callable[[int], str]:
        """A function index -> token for one message (or one recipient's copy of it) and
        kind. Composing a newsletter signs thousands of links, so the shared prefix and the
        keyed hash state are made once."""
        if not 0 <= copy <= MAX_COPY:
            raise ValueError("copy out of range")
        kid = self._active
        kind_byte = _KIND_BYTE[kind] ^ (_COPY_CASE if copy else 0)
        prefix = bytes([kind_byte]) + message_id_to_bytes(message_id)
        tail = copy.to_bytes(_COPY_BYTES, "big") if copy else b""
        # HMAC (RFC 2104) from two keyed SHA-256 states copied per link: the same bytes as
        # hmac.new(key, msg), at half the cost of the hmac module's per-call set-up.
        key = self._keys[kid]
        if len(key) > _SHA256_BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_SHA256_BLOCK, b"\x00")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        inner.update(kid.encode("ascii") + b"\x00" + prefix)
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        encode = base64.urlsafe_b64encode

        def sign(index: int) -> str:
            if not 0 <= index <= MAX_INDEX:
                raise ValueError("index out of range")
            suffix = index.to_bytes(2, "big") + tail
            first = inner.copy()
            first.update(suffix)
            second = outer.copy()
            second.update(first.digest())
            return f"{kid}.{encode(prefix + suffix + second.digest()[:_MAC_BYTES]).decode('ascii')}"

        return sign

    def verify(self, token: str) -> TrackingRef | None:
        """The reference inside `token`, or None when it is malformed, unknown or tampered."""
        kid, dot, body = token.partition(".")
        size = _LENGTHS.get(len(body))
        if not dot or kid not in self._keys or size is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(body)
        except (binascii.Error, ValueError):
            return None
        if len(raw) != size + _MAC_BYTES:
            return None
        payload, mac = raw[:size], raw[size:]
        if not hmac.compare_digest(mac, self._mac(kid, payload)):
            return None
        with_copy = size > _PAYLOAD_BYTES
        kind = _BYTE_KIND.get(payload[0] ^ (_COPY_CASE if with_copy else 0))
        start = 1 + MESSAGE_ID_BYTES
        copy = int.from_bytes(payload[start + 2 :], "big") if with_copy else 0
        if kind is None or (with_copy and copy == 0):
            return None
        return TrackingRef(
            kind=kind,
            message_id=message_id_from_bytes(payload[1:start]),
            index=int.from_bytes(payload[start : start + 2], "big"),
            copy=copy,
        )
