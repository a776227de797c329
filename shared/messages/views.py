"""How messages are shown to sellers: the JSON views of the API. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.core.rows import MessageRow
from shared.core.vocabulary import EVENT_CLASSES, current_class
from shared.engagement.kpis import CopyKpis, Kpis, timeline
from shared.messages import copies


def parse_time(value: Any) -> datetime | None:
    """A stored ISO time, or None for an empty column."""
    return datetime.fromisoformat(value) if value else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def message_view(
    entity: MessageRow, kpis: Kpis, links: list[str], *, html: str | None = None
) -> dict[str, Any]:
    """A message with its KPIs, per-link and per-attachment counts and its timeline."""
    attachments = json.loads(entity.get("attachments") or "[]")
    sent_at = parse_time(entity.get("sent_at"))
    followed = entity["follow_state"] == "followed"
    recipients = copies.addresses(entity)
    view: dict[str, Any] = {
        "id": entity["RowKey"],
        "status": entity["status"],
        "follow_state": entity["follow_state"],
        "subject": entity["subject"],
        "to": json.loads(entity["to"]),
        "cc": json.loads(entity["cc"]),
        "bcc": json.loads(entity["bcc"]),
        "regarding": json.loads(entity["regarding"]) if entity.get("regarding") else None,
        "created_at": entity["created_at"],
        "sent_at": entity.get("sent_at") or None,
        "send_at": entity.get("send_at") or None,
        # Sending: how many attempts failed, why the last one did, and when the next is due
        # (while `sending`); a `failed` message says why, and the seller may send it again.
        "attempts": int(entity.get("attempts") or 0),
        "failure": entity.get("failure") or None,
        "next_attempt_at": entity.get("next_attempt_at") or None,
        "reminder": json.loads(entity["reminder"]) if entity.get("reminder") else None,
        "send_individually": bool(entity.get("send_individually")),
        "kpis": kpis_view(kpis),
        "links": [
            {"index": i, "url": url, "clicks": kpis.clicks_by_link.get(i, 0)}
            for i, url in enumerate(links)
        ],
        "attachments": [
            {
                **a,
                "followed": a["followed"] and followed,
                "views": kpis.views_by_attachment.get(a["index"], 0)
                if a["followed"] and followed
                else None,
            }
            for a in attachments
        ],
        "timeline": [
            {
                "event": t.event,
                "at": t.at.isoformat(),
                "occurrence": t.occurrence,
                "index": t.index,
                "device": t.device,
                "how": t.how or None,
                "recipient": recipients.get(t.copy),
            }
            for t in timeline(kpis, sent_at)
        ],
    }
    if view["send_individually"]:
        view["by_recipient"] = recipient_rows(entity, kpis)
    if entity.get("blocked"):
        view["blocked_recipients"] = json.loads(entity["blocked"])
    if html is not None:
        view["html"] = html
    return view


def recipient_rows(entity: MessageRow, kpis: Kpis) -> list[dict[str, Any]]:
    """Each recipient's copy of a message sent individually, with its counted events."""
    rows = []
    for copy, address in sorted(copies.addresses(entity).items()):
        counted = kpis.by_copy.get(copy, CopyKpis())
        rows.append(
            {
                "copy": copy,
                "address": address,
                "opens": counted.opens,
                "first_opened_at": _iso(counted.first.get("open")),
                "last_opened_at": _iso(counted.last.get("open")),
                "link_clicks": counted.link_clicks,
                "attachment_views": counted.attachment_views,
            }
        )
    return rows


_KINDS = {"open": "opens", "click": "link_clicks", "attachment": "attachment_views"}


def by_class(tallies: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Every event after sending by class, counted or not: {"opens": {"human": 2, ...}}.
    Tallies of the one proxy class of before (no reasons kept) show as opens through a proxy,
    which is how they were counted."""
    shown: dict[str, dict[str, int]] = {}
    for kind, name in _KINDS.items():
        counts: dict[str, int] = dict.fromkeys(EVENT_CLASSES, 0)
        for label, n in tallies.get(kind, {}).items():
            counts[current_class(label, ("",))] += int(n)
        shown[name] = counts
    return shown


def list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of the followed-emails list."""
    return {
        "id": row["RowKey"],
        "subject": row["subject"],
        "to": json.loads(row["to"]),
        "status": row["status"],
        "follow_state": row["follow_state"],
        "sent_at": row.get("sent_at") or None,
        "opens": row.get("opens", 0),
        "first_opened_at": row.get("first_opened_at") or None,
        "last_opened_at": row.get("last_opened_at") or None,
        "link_clicks": row.get("link_clicks", 0),
        "attachment_views": row.get("attachment_views", 0),
        "replies": row.get("replies", 0),
        "by_class": by_class(json.loads(row.get("by_class") or "{}")),
    }


def kpis_view(kpis: Kpis) -> dict[str, Any]:
    """The headline KPIs of a message, with the per-class totals beside them."""
    return {
        "opens": kpis.opens,
        "first_opened_at": _iso(kpis.first_opened_at),
        "last_opened_at": _iso(kpis.last_opened_at),
        "link_clicks": kpis.link_clicks,
        "attachment_views": kpis.attachment_views,
        "replies": kpis.replies,
        "devices": kpis.devices,
        "mail_clients": kpis.clients,
        "previews_not_counted": kpis.previews,
        "by_class": by_class(kpis.by_class),
    }
