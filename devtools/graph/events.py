"""Events in a mailbox's primary calendar, in the shape the calendarView delta docs show."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from devtools.graph.mailbox import Event, Mailbox, not_found
from devtools.graph.odata import Address, change_key, event_time, iso, new_item_id, recipient


def add(
    box: Mailbox,
    now: datetime,
    subject: str,
    start: datetime,
    end: datetime,
    attendees: Sequence[Address],
    categories: Iterable[str],
) -> Event:
    """A single-instance event organised by the mailbox owner."""
    data: dict[str, Any] = {
        "id": new_item_id(),
        "createdDateTime": iso(now),
        "lastModifiedDateTime": iso(now),
        "changeKey": "",
        "categories": list(categories),
        "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
        "subject": subject,
        "bodyPreview": "",
        "body": {"contentType": "html", "content": ""},
        "start": event_time(start),
        "end": event_time(end),
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "type": "singleInstance",
        "showAs": "busy",
        "location": {"displayName": ""},
        "attendees": [
            {
                "type": "required",
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                **recipient(a),
            }
            for a in attendees
        ],
        "organizer": box.owner(),
    }
    event = Event(data, start, end)
    box.events[data["id"]] = event
    touch(box, event, now)
    return event


def touch(box: Mailbox, event: Event, now: datetime) -> None:
    event.version = box.bump()
    event.data["changeKey"] = change_key(event.version)
    event.data["lastModifiedDateTime"] = iso(now)


def get(box: Mailbox, event_id: str) -> Event:
    found = box.events.get(event_id)
    if found is None:
        raise not_found()
    return found


def set_categories(box: Mailbox, event_id: str, names: Iterable[str], now: datetime) -> None:
    event = get(box, event_id)
    event.data["categories"] = list(names)
    touch(box, event, now)


def delete(box: Mailbox, event_id: str) -> None:
    get(box, event_id)
    del box.events[event_id]
    box.bump()


def to_json(event: Event) -> dict[str, Any]:
    return {"@odata.etag": f'W/"{event.data["changeKey"]}"', **copy.deepcopy(event.data)}
