"""Enrolled mailboxes and their sync state: delta links per folder, the tracking category's
id, counters and errors — what the admin's health view shows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from shared.core.errors import InvalidInput, NotFound
from shared.core.ids import mailbox_key
from shared.core.services import Services

_STATE = "state"
FAILURE_CLASSES = ("throttled", "timeout", "rejected", "unknown")
ERROR_DAYS = 30  # days of errors by class kept per mailbox (UTC days), for the dashboard


@dataclass
class Mailbox:
    """One mailbox's sync state (a row of the mailboxes table)."""

    email: str
    enrolled_at: str
    folders: list[str] = field(default_factory=list)
    delta_links: dict[str, str] = field(default_factory=dict)
    category_id: str = ""
    category_name: str = ""
    last_sync_at: str = ""
    last_success_at: str = ""
    items_tracked: int = 0
    items_failing: int = 0
    undeliverable: int = 0
    last_error: str = ""
    errors: dict[str, int] = field(default_factory=dict)
    errors_by_day: dict[str, dict[str, int]] = field(default_factory=dict)
    lease_until: str = ""
    etag: str = ""

    @property
    def key(self) -> str:
        return mailbox_key(self.email)

    def failed(self, klass: str, at: datetime, last_error: str) -> None:
        """Count a failed Graph call of the mailbox's sync: in its totals by class, in the
        day's bucket (the last ERROR_DAYS days are kept), and as its last error. The one
        place a mailbox's error counters change; saved with the cycle's state."""
        self.errors[klass] = self.errors.get(klass, 0) + 1
        day = at.astimezone(UTC).date()
        bucket = self.errors_by_day.setdefault(day.isoformat(), {})
        bucket[klass] = bucket.get(klass, 0) + 1
        oldest = (day - timedelta(days=ERROR_DAYS - 1)).isoformat()
        self.errors_by_day = {d: b for d, b in self.errors_by_day.items() if d >= oldest}
        self.last_error = last_error

    def to_entity(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("etag")
        for name in _JSON_COLUMNS:
            row[name] = json.dumps(row[name])
        return {"PartitionKey": self.key, "RowKey": _STATE, **row}

    @classmethod
    def from_entity(cls, row: Any) -> Mailbox:
        values = {k: row[k] for k in cls.__dataclass_fields__ if k in row and k != "etag"}
        for name in _JSON_COLUMNS:
            values[name] = json.loads(values.get(name) or ("[]" if name == "folders" else "{}"))
        return cls(**values, etag=row.metadata["etag"])


_JSON_COLUMNS = ("folders", "delta_links", "errors", "errors_by_day")


def _address(email: str) -> str:
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not (local and at and "." in domain) or any(c.isspace() for c in value):
        raise InvalidInput("email", "is not an e-mail address")
    return value


async def enrol(services: Services, email: str, folders: list[str]) -> dict[str, Any]:
    """Enrol a seller's mailbox (again: keeps its sync state, updates its folders)."""
    address = _address(email)
    if any(not f.strip() or "/" in f for f in folders):
        raise InvalidInput("folders", "must be folder ids or well-known names")
    try:
        current = await load(services, address)
        current.folders = folders
        await save(services, current)
    except NotFound:
        current = Mailbox(email=address, enrolled_at=services.clock().isoformat(), folders=folders)
        await services.store.mailboxes.upsert_entity(current.to_entity())
    return health(services, await load(services, address))


async def load(services: Services, email: str) -> Mailbox:
    try:
        row = await services.store.mailboxes.get_entity(mailbox_key(email), _STATE)
    except ResourceNotFoundError:
        raise NotFound("mailbox") from None
    return Mailbox.from_entity(row)


async def save(services: Services, mailbox: Mailbox) -> None:
    """Write the state back only if nobody else changed it since it was read."""
    await services.store.mailboxes.update_entity(
        mailbox.to_entity(),
        mode=UpdateMode.REPLACE,
        etag=mailbox.etag,
        match_condition=MatchConditions.IfNotModified,
    )
    row = await services.store.mailboxes.get_entity(mailbox.key, _STATE)
    mailbox.etag = str(row.metadata["etag"])


async def claim(services: Services, email: str, minutes: int = 10) -> Mailbox | None:
    """Take the mailbox for one sync cycle; None if another cycle holds it."""
    mailbox = await load(services, email)
    now = services.clock()
    if mailbox.lease_until and datetime.fromisoformat(mailbox.lease_until) > now:
        return None
    mailbox.lease_until = (now + timedelta(minutes=minutes)).isoformat()
    try:
        await save(services, mailbox)
    except ResourceModifiedError:
        return None
    return mailbox


async def all_mailboxes(services: Services) -> list[Mailbox]:
    return [
        Mailbox.from_entity(row)
        async for row in services.store.mailboxes.query_entities(
            "RowKey eq @state", parameters={"state": _STATE}
        )
    ]


def health(services: Services, mailbox: Mailbox, *, days: int = 14) -> dict[str, Any]:
    """The mailbox as the admin dashboard shows it, with its errors by class for each of
    the last `days` UTC days (today last, days without errors as zeros)."""
    now = services.clock()
    lag = (
        (now - datetime.fromisoformat(mailbox.last_success_at)).total_seconds()
        if mailbox.last_success_at
        else None
    )
    today = now.astimezone(UTC).date()
    dates = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    return {
        "email": mailbox.email,
        "enrolled_at": mailbox.enrolled_at,
        "folders": mailbox.folders,
        "status": status(mailbox),
        "last_sync_at": mailbox.last_sync_at or None,
        "last_success_at": mailbox.last_success_at or None,
        "lag_seconds": lag,
        "items_tracked": mailbox.items_tracked,
        "items_failing": mailbox.items_failing,
        "undeliverable": mailbox.undeliverable,
        "last_error": mailbox.last_error or None,
        "errors": {c: mailbox.errors.get(c, 0) for c in FAILURE_CLASSES},
        "errors_by_day": [
            {"date": d, **{c: mailbox.errors_by_day.get(d, {}).get(c, 0) for c in FAILURE_CLASSES}}
            for d in dates
        ],
        "category": {"id": mailbox.category_id or None, "name": mailbox.category_name or None},
    }


def status(mailbox: Mailbox) -> str:
    """The dashboard's verdict: `pending` (never synced), `failing` (the last cycle
    failed), `degraded` (it synced, but items are failing to track), or `ok`. Pure."""
    if not mailbox.last_sync_at:
        return "pending"
    if mailbox.last_success_at != mailbox.last_sync_at:
        return "failing"
    return "degraded" if mailbox.items_failing else "ok"
