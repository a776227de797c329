"""Build the record timeline's index (shared.crm.timeline_index) for what was stored before
it existed: every tracked activity and every sent message. Idempotent (index rows are
written by key), so it may run again, or while the app runs: writers index new items
themselves. `python -m shared.ops.cli build-timeline-index`."""

from __future__ import annotations

from dataclasses import dataclass

from shared.core import list_index
from shared.core.services import Services
from shared.messages.sending import index_sent
from shared.outlook.activities import ACTIVITY, index


@dataclass
class TimelineIndexReport:
    activities: int = 0
    messages: int = 0
    unowned: int = 0  # sent before sellers had ids: run migrate-identities first


async def build(services: Services) -> TimelineIndexReport:
    """Index every activity and every sent message."""
    report = TimelineIndexReport()
    store = services.store
    async for row in store.activities.query_entities(
        "PartitionKey eq @pk", parameters={"pk": ACTIVITY}
    ):
        if row.get("mailboxes"):  # an activity row
            await index(services, dict(row), str(row["RowKey"]))
            report.activities += 1
    async for row in store.messages.query_entities(
        f"status eq 'sent' and {list_index.MESSAGE_ROWS_FILTER}",
        select=["PartitionKey", "RowKey", "owner", "to", "cc", "bcc", "regarding", "sent_at"],
    ):
        if not row.get("owner"):
            report.unowned += 1
            continue
        if not row.get("sent_at"):
            continue  # marked sent without a time (a row from before `sent_at` was kept)
        await index_sent(services, dict(row), str(row["sent_at"]))  # type: ignore[arg-type]
        report.messages += 1
    return report
