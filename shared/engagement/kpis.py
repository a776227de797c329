"""Engagement KPIs of one message, folded from its events. Pure: no I/O.

Folding is exact and idempotent per time bucket: a KPI record remembers the newest bucket it
has absorbed, and the fold ignores events from buckets it already holds, so a cycle that runs
twice, or two cycles racing, never count an event twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.classification.devices import device_type
from shared.classification.evidence import how_opened
from shared.classification.mail_clients import mail_client
from shared.classification.message_rules import flooded
from shared.core.vocabulary import COUNTED_BY_DEFAULT, counted_set, current_class
from shared.tracking.events import Event


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One event as the timeline shows it."""

    kind: str  # an event kind, or "reply"
    at: datetime
    index: int
    device: str
    how: str = ""  # for an open: "opened in Outlook on Windows", "opened via Gmail — ..."
    copy: int = 0  # which recipient's copy, for a message sent individually

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "index": self.index,
            "device": self.device,
            "how": self.how,
            "copy": self.copy,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Occurrence:
        return cls(
            kind=data["kind"],
            at=datetime.fromisoformat(data["at"]),
            index=int(data["index"]),
            device=str(data["device"]),
            how=str(data.get("how") or ""),
            copy=int(data.get("copy") or 0),
        )


@dataclass(frozen=True, slots=True)
class CopyKpis:
    """The counted events of one recipient's copy (a message sent individually)."""

    opens: int = 0
    link_clicks: int = 0
    attachment_views: int = 0
    first: dict[str, datetime] = field(default_factory=dict)  # by event kind
    last: dict[str, datetime] = field(default_factory=dict)

    def counted(self, kind: str, at: datetime) -> CopyKpis:
        """These counters with one more counted event."""
        first = dict(self.first)
        first.setdefault(kind, at)
        return replace(
            self,
            opens=self.opens + (kind == "open"),
            link_clicks=self.link_clicks + (kind == "click"),
            attachment_views=self.attachment_views + (kind == "attachment"),
            first=first,
            last={**self.last, kind: at},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "opens": self.opens,
            "link_clicks": self.link_clicks,
            "attachment_views": self.attachment_views,
            "first": {k: v.isoformat() for k, v in self.first.items()},
            "last": {k: v.isoformat() for k, v in self.last.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CopyKpis:
        return cls(
            opens=int(data.get("opens") or 0),
            link_clicks=int(data.get("link_clicks") or 0),
            attachment_views=int(data.get("attachment_views") or 0),
            first={k: datetime.fromisoformat(v) for k, v in (data.get("first") or {}).items()},
            last={k: datetime.fromisoformat(v) for k, v in (data.get("last") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Kpis:
    """Counters of one message. Events before the message was sent are previews, not counted."""

    opens: int = 0
    link_clicks: int = 0
    attachment_views: int = 0
    replies: int = 0
    previews: int = 0
    clicks_by_link: dict[int, int] = field(default_factory=dict)
    views_by_attachment: dict[int, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    # Every event after sending by kind and class, counted or not ({"open": {"scanner": 3}}).
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    clients: dict[str, int] = field(default_factory=dict)  # counted opens by mail client
    first: dict[str, Occurrence] = field(default_factory=dict)
    last: dict[str, Occurrence] = field(default_factory=dict)
    # Counted events per recipient's copy (1, 2, ...) of a message sent individually.
    by_copy: dict[int, CopyKpis] = field(default_factory=dict)
    folded_bucket: str = ""

    @property
    def first_opened_at(self) -> datetime | None:
        return self.first["open"].at if "open" in self.first else None

    @property
    def last_opened_at(self) -> datetime | None:
        return self.last["open"].at if "open" in self.last else None


# The classes the headline KPIs count by default: people, and proxies fetching for a person
# who opens (the open happened; only who and when are hidden); never a prefetch at delivery.
# "" is an event recorded before classification.
COUNTED: frozenset[str] = counted_set(COUNTED_BY_DEFAULT)


def counts(event: Event, sent_at: datetime | None) -> bool:
    """Whether an event happened after the message went out (before, it is a preview)."""
    return sent_at is not None and event.at >= sent_at


def occurrence(event: Event) -> Occurrence:
    """The timeline view of an event."""
    how = how_opened(event.user_agent, event.label) if event.kind == "open" else ""
    return Occurrence(
        event.kind, event.at, event.index, device_type(event.user_agent), how, event.copy
    )


def fold(
    kpis: Kpis,
    events: Iterable[Event],
    sent_at: datetime | None,
    counted: frozenset[str] = COUNTED,
) -> Kpis:
    """`kpis` plus the events from buckets newer than the ones it already holds. Every
    event is tallied by class; the headline counters, per-link and per-attachment counts,
    devices and the timeline take only the `counted` classes, and never a flood's repeats."""
    fresh = sorted(
        (e for e in events if e.bucket > kpis.folded_bucket), key=lambda e: (e.at, e.event_id)
    )
    if not fresh:
        return kpis
    opens, clicks, views, previews = (
        kpis.opens,
        kpis.link_clicks,
        kpis.attachment_views,
        kpis.previews,
    )
    by_link, by_attachment = dict(kpis.clicks_by_link), dict(kpis.views_by_attachment)
    devices, first, last = dict(kpis.devices), dict(kpis.first), dict(kpis.last)
    by_class = {kind: dict(tally) for kind, tally in kpis.by_class.items()}
    clients, by_copy = dict(kpis.clients), dict(kpis.by_copy)
    for event in fresh:
        if not counts(event, sent_at):
            previews += 1
            continue
        tally = by_class.setdefault(event.kind, {})
        label = current_class(event.label, event.reasons) if event.label else ""
        tally[label or "unknown"] = tally.get(label or "unknown", 0) + 1
        if label not in counted or flooded(event.reasons):
            continue
        seen = occurrence(event)
        if event.copy:
            by_copy[event.copy] = by_copy.get(event.copy, CopyKpis()).counted(event.kind, event.at)
        first.setdefault(event.kind, seen)
        last[event.kind] = seen
        if event.kind == "open":
            opens += 1
            devices[seen.device] = devices.get(seen.device, 0) + 1
            client = mail_client(event.user_agent)
            clients[client] = clients.get(client, 0) + 1
        elif event.kind == "click":
            clicks += 1
            by_link[event.index] = by_link.get(event.index, 0) + 1
        else:
            views += 1
            by_attachment[event.index] = by_attachment.get(event.index, 0) + 1
    return replace(
        kpis,
        opens=opens,
        link_clicks=clicks,
        attachment_views=views,
        previews=previews,
        clicks_by_link=by_link,
        views_by_attachment=by_attachment,
        devices=devices,
        by_class=by_class,
        clients=clients,
        first=first,
        last=last,
        by_copy=by_copy,
        folded_bucket=max(kpis.folded_bucket, max(e.bucket for e in fresh)),
    )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """A line of a message's timeline: what happened, when, and whether it was the first
    or the most recent of its type."""

    event: str
    at: datetime
    occurrence: str
    index: int | None = None
    device: str | None = None
    how: str = ""  # for an open: how we know ("opened in Outlook on Windows")
    copy: int = 0  # which recipient's copy, for a message sent individually


def _entry(kind: str, seen: Occurrence, occurrence: str) -> TimelineEntry:
    return TimelineEntry(kind, seen.at, occurrence, seen.index, seen.device, seen.how, seen.copy)


def timeline(kpis: Kpis, sent_at: datetime | None) -> list[TimelineEntry]:
    """First and most recent occurrence of each event type, newest first (as Dynamics 365
    shows it); a type that happened once shows once."""
    entries: list[TimelineEntry] = []
    for kind, first in kpis.first.items():
        latest = kpis.last.get(kind, first)
        only = latest == first
        entries.append(_entry(kind, first, "only" if only else "first"))
        if not only:
            entries.append(_entry(kind, latest, "latest"))
    if sent_at is not None:
        entries.append(TimelineEntry("sent", sent_at, "only"))
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries


_INT_KEYED = ("clicks_by_link", "views_by_attachment")


def to_columns(kpis: Kpis) -> dict[str, Any]:
    """Table-entity columns for the KPIs (maps as JSON text)."""
    return {
        "opens": kpis.opens,
        "link_clicks": kpis.link_clicks,
        "attachment_views": kpis.attachment_views,
        "replies": kpis.replies,
        "previews": kpis.previews,
        "first_opened_at": kpis.first_opened_at.isoformat() if kpis.first_opened_at else "",
        "last_opened_at": kpis.last_opened_at.isoformat() if kpis.last_opened_at else "",
        "clicks_by_link": json.dumps(kpis.clicks_by_link),
        "views_by_attachment": json.dumps(kpis.views_by_attachment),
        "devices": json.dumps(kpis.devices),
        "by_class": json.dumps(kpis.by_class),
        "clients": json.dumps(kpis.clients),
        "first_json": json.dumps({k: o.to_json() for k, o in kpis.first.items()}),
        "last_json": json.dumps({k: o.to_json() for k, o in kpis.last.items()}),
        "by_copy": json.dumps({str(c): k.to_json() for c, k in kpis.by_copy.items()}),
        "folded_bucket": kpis.folded_bucket,
    }


def from_columns(row: Mapping[str, Any]) -> Kpis:
    """Inverse of to_columns; absent columns read as zero."""
    maps = {
        name: {int(k): int(v) for k, v in json.loads(row.get(name) or "{}").items()}
        for name in _INT_KEYED
    }
    return Kpis(
        opens=int(row.get("opens") or 0),
        link_clicks=int(row.get("link_clicks") or 0),
        attachment_views=int(row.get("attachment_views") or 0),
        replies=int(row.get("replies") or 0),
        previews=int(row.get("previews") or 0),
        clicks_by_link=maps["clicks_by_link"],
        views_by_attachment=maps["views_by_attachment"],
        devices={k: int(v) for k, v in json.loads(row.get("devices") or "{}").items()},
        by_class={
            kind: {label: int(n) for label, n in tally.items()}
            for kind, tally in json.loads(row.get("by_class") or "{}").items()
        },
        clients={k: int(v) for k, v in json.loads(row.get("clients") or "{}").items()},
        first={
            k: Occurrence.from_json(v) for k, v in json.loads(row.get("first_json") or "{}").items()
        },
        last={
            k: Occurrence.from_json(v) for k, v in json.loads(row.get("last_json") or "{}").items()
        },
        by_copy={
            int(c): CopyKpis.from_json(k) for c, k in json.loads(row.get("by_copy") or "{}").items()
        },
        folded_bucket=str(row.get("folded_bucket") or ""),
    )
