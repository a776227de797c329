"""Interaction events and how they are named in blob storage.

Each event is one blob, written once by a tracking endpoint (its only storage write).
Blobs are named ``{bucket}/{shard}/{message_id}/{event_id}``:
- the bucket is the UTC time floored to BUCKET_SECONDS, so a fold reads new events by listing
  a few time prefixes, the alert cycle lists the newest two buckets whole, and retention
  deletes whole old prefixes;
- the shard (two digits, SHARDS of them) is a hash of the message id, so shard workers fold
  disjoint sets of messages side by side, each from its own cursor, listing
  ``{bucket}/{shard}/``.
Blobs written before shards existed are named ``{bucket}/{message_id}/{event_id}`` (the
"legacy" layout, folded until its last bucket is done: shared.engagement.shards).
The event's fields travel in the blob's metadata, so a listing returns whole events without
downloading a blob each.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from shared.core.ids import new_event_id
from shared.core.vocabulary import EventKind

BUCKET_SECONDS = 10
# Fixed for the life of a deployment: a message's events must all be folded by one shard (a
# shard folds in bucket order; two shards folding one message could skip each other's).
SHARDS = 16
_BUCKET_FORMAT = "%Y%m%d%H%M%S"
MAX_USER_AGENT = 512


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded interaction, as a tracking endpoint saw it."""

    event_id: str
    message_id: str
    kind: EventKind
    index: int
    at: datetime
    user_agent: str
    ip: str
    method: str = "GET"
    has_accept: bool = True  # the request carried an Accept header (mail clients do)
    # Who made it (shared/classification/classifier.py): human, scanner, privacy_proxy or
    # unknown, and why. "" for an event not classified yet.
    label: str = ""
    reasons: tuple[str, ...] = ()
    copy: int = 0  # which recipient's copy (1, 2, ...) of a message sent individually; 0: one

    @property
    def bucket(self) -> str:
        return bucket_of(self.at)

    @property
    def blob_name(self) -> str:
        prefix = bucket_prefix(shard_of(self.message_id), self.bucket)
        return f"{prefix}{self.message_id}/{self.event_id}"

    def metadata(self) -> dict[str, str]:
        """Blob metadata (ASCII only, as storage requires)."""
        return {
            "kind": self.kind,
            "index": str(self.index),
            "at": self.at.isoformat(),
            "ua": quote(self.user_agent, safe=""),
            "ip": self.ip,
            "method": self.method,
            "acc": "1" if self.has_accept else "0",
            "cls": self.label,
            "why": " ".join(self.reasons),
            "cp": str(self.copy),
        }

    def body(self) -> bytes:
        """The blob's content: the same event as JSON, for export and audit."""
        record = {
            "event_id": self.event_id,
            "message_id": self.message_id,
            "kind": self.kind,
            "index": self.index,
            "at": self.at.isoformat(),
            "user_agent": self.user_agent,
            "ip": self.ip,
            "method": self.method,
            "has_accept": self.has_accept,
            "class": self.label,
            "reasons": list(self.reasons),
            "copy": self.copy,
        }
        return json.dumps(record, separators=(",", ":")).encode("utf-8")


def new_event(
    *,
    message_id: str,
    kind: EventKind,
    index: int,
    user_agent: str,
    ip: str,
    method: str = "GET",
    has_accept: bool = True,
    at: datetime | None = None,
    copy: int = 0,
) -> Event:
    """An event stamped now, with its user agent cut to a sane length."""
    moment = at or datetime.now(UTC)
    return Event(
        event_id=new_event_id(moment),
        message_id=message_id,
        kind=kind,
        index=index,
        at=moment,
        user_agent=user_agent[:MAX_USER_AGENT],
        ip=ip,
        method=method,
        has_accept=has_accept,
        copy=copy,
    )


def shard_of(message_id: str) -> int:
    """The shard that folds a message's events."""
    return zlib.crc32(message_id.encode("ascii", "replace")) % SHARDS


def bucket_prefix(shard: int, bucket: str) -> str:
    """The blob prefix of a shard's events in one bucket."""
    return f"{bucket}/{shard:02d}/"


def shard_of_blob(name: str) -> int | None:
    """The shard in an event blob's name; None for the legacy layout."""
    parts = name.split("/")
    return int(parts[1]) if len(parts) == 4 and parts[1].isdigit() else None


def message_of_blob(name: str) -> str | None:
    """The message id in an event blob's name (either layout), or None."""
    parts = name.split("/")
    if len(parts) == 4:
        return parts[2]
    if len(parts) == 3:
        return parts[1]
    return None


def event_from_blob(name: str, metadata: Mapping[str, str]) -> Event | None:
    """The event a listed blob holds (either layout), or None for a blob not one of ours."""
    parts = name.split("/")
    if len(parts) == 4:
        parts = parts[1:]
    if len(parts) != 3:
        return None
    try:
        kind = metadata["kind"]
        if kind not in ("open", "click", "attachment"):
            return None
        return Event(
            event_id=parts[2],
            message_id=parts[1],
            kind=kind,  # type: ignore[arg-type]  # checked just above
            index=int(metadata["index"]),
            at=datetime.fromisoformat(metadata["at"]),
            user_agent=unquote(metadata.get("ua") or ""),
            ip=metadata.get("ip") or "",
            method=metadata.get("method") or "GET",
            has_accept=metadata.get("acc", "1") != "0",
            label=metadata.get("cls") or "",
            reasons=tuple((metadata.get("why") or "").split()),
            copy=int(metadata.get("cp") or 0),
        )
    except (KeyError, ValueError):
        return None


def bucket_of(at: datetime) -> str:
    """The bucket name for a moment: UTC, floored to BUCKET_SECONDS."""
    moment = at.astimezone(UTC)
    floored = moment.replace(second=moment.second - moment.second % BUCKET_SECONDS, microsecond=0)
    return floored.strftime(_BUCKET_FORMAT)


def bucket_start(bucket: str) -> datetime:
    """When a bucket begins."""
    return datetime.strptime(bucket, _BUCKET_FORMAT).replace(tzinfo=UTC)


def next_bucket(bucket: str) -> str:
    """The bucket right after `bucket`."""
    return bucket_of(bucket_start(bucket) + timedelta(seconds=BUCKET_SECONDS))


def last_closed_bucket(now: datetime, grace: timedelta) -> str:
    """The newest bucket that no tracking write can still land in: it ended `grace` ago."""
    return bucket_of(now - grace - timedelta(seconds=BUCKET_SECONDS))
