"""One changed Outlook item, acted on: a reply to followed mail is counted; an item that a
tracking method claims becomes (or joins) an activity; one that lost the category is
untracked. An item that fails is recorded for the retry cycle, and after
`max_tracking_attempts` gets the "(Undeliverable)" mark beside its own categories and is left
alone until the user takes the mark off."""

from __future__ import annotations

import contextlib
import logging

from azure.core.exceptions import ResourceNotFoundError

from shared.core import telemetry
from shared.core.ids import index_key
from shared.outlook.activities import (
    Cycle,
    PendingWrite,
    activity_key,
    event_key,
    track,
    track_event,
    tracked_elsewhere,
    untrack,
)
from shared.outlook.categories import CategoryChange, has_category, undeliverable_mark
from shared.outlook.item_rules import Rejected, choose_method, classify
from shared.outlook.items import EventItem, MailItem
from shared.outlook.mail import (
    get_event,
    get_message,
)
from shared.outlook.replies import find_followed, is_automatic, record_reply

logger = logging.getLogger(__name__)
_CALENDAR = "calendar"


class CategoryWriteFailed(Exception):
    """A category write that did not land in its cycle, with the status Graph last gave."""

    def __init__(self, status: int) -> None:
        super().__init__(f"category write answered {status or 'nothing'}")
        self.response_status_code = status or None


def _mark(cycle: Cycle) -> str:
    return undeliverable_mark(cycle.services.settings.tracking_category)


async def _left_alone(cycle: Cycle, item: MailItem, folder: str) -> bool:
    """Whether an item is Undeliverable and so not processed: it carries the mark (ours
    coming back in delta causes no write and no error), or its mark is still to be written.
    An item that was marked and no longer carries the mark had it taken off by the user: its
    failure is forgotten and it is tried afresh."""
    failure = cycle.failures.get(item.id) or {}
    undeliverable, marked = bool(failure.get("undeliverable")), bool(failure.get("marked"))
    if has_category(item.categories, _mark(cycle)):
        if undeliverable and not marked:
            await set_marked(cycle, item.id)
        return True
    if undeliverable and not marked:
        queue_mark(cycle, item.id, list(item.categories), item.etag, folder)
        return True
    if undeliverable:
        await clear_failure(cycle, item.id)
    return False


async def process_item(cycle: Cycle, item: MailItem, folder: str) -> None:
    """Act on one changed message: a reply to followed mail is counted; an item that a
    tracking method claims becomes (or joins) an activity; one that lost the category is
    untracked."""
    services, mailbox = cycle.services, cycle.mailbox
    if await _left_alone(cycle, item, folder):
        return
    if not item.internet_message_id:
        raise Rejected("the item has no Internet message id")
    cycle.report.items += 1
    if item.sender == mailbox.email:  # the seller's own mail is never a reply
        followed = cycle.followed["imid"].get(index_key(item.internet_message_id))
    else:
        followed = find_followed(
            cycle.followed,
            item.header("In-Reply-To"),
            item.header("References"),
            item.conversation_id,
        )
        if followed is not None:
            await record_reply(
                services,
                followed,
                reply_key=item.internet_message_id,
                at=item.received or services.clock(),
                automatic=is_automatic(item.headers, item.subject),
            )
            cycle.report.replies += 1
    key = activity_key(item.internet_message_id)
    root = (
        cycle.conversations.get(index_key(item.conversation_id)) if item.conversation_id else None
    )
    method: str | None = choose_method(
        token=followed is not None,
        conversation=root is not None and root != key,
        folder=folder in mailbox.folders,
        category=has_category(item.categories, mailbox.category_name),
    )
    if (
        method is None
        and key not in cycle.known
        and (item.addresses & cycle.enrolled) - {mailbox.email}
    ):
        # Another enrolled mailbox is on the message and may track it: link, don't duplicate.
        method = await tracked_elsewhere(services, key)
    if method is not None:
        await track(cycle, item, method, followed, folder)
    elif cycle.known.get(key, {}).get("method") == "category":
        await untrack(cycle, key)
    if item.id not in cycle.writes:  # else once its write has landed
        await clear_failure(cycle, item.id)


async def process_event(cycle: Cycle, event: EventItem) -> None:
    """A calendar event with the tracking category becomes an appointment activity; one that
    lost it is untracked."""
    if not event.ical_uid:
        raise Rejected("the event has no iCalUId")
    cycle.report.items += 1
    key = event_key(event.ical_uid)
    if has_category(event.categories, cycle.mailbox.category_name):
        await track_event(cycle, event)
    elif cycle.known.get(key, {}).get("method") == "category":
        await untrack(cycle, key)
    await clear_failure(cycle, event.id)


async def clear_failure(cycle: Cycle, graph_id: str) -> None:
    """An item that failed before went through: forget its failure."""
    if graph_id in cycle.failures:
        with contextlib.suppress(ResourceNotFoundError):
            await cycle.services.store.mailboxes.delete_entity(
                cycle.mailbox.key, f"fail-{index_key(graph_id)}"
            )
        cycle.failures.pop(graph_id)


async def set_marked(cycle: Cycle, graph_id: str) -> None:
    row = cycle.failures.get(graph_id)
    if row is not None and not row.get("marked"):
        row["marked"] = True
        await cycle.services.store.mailboxes.upsert_entity(row)


def queue_mark(
    cycle: Cycle, graph_id: str, categories: list[str] | None, etag: str, folder: str
) -> None:
    """The "(Undeliverable)" mark, added beside the item's own categories (read first when
    not known). Events get no mark: category writes are for messages."""
    if folder != _CALENDAR:
        change = CategoryChange(graph_id, categories, add=_mark(cycle), etag=etag)
        cycle.writes[graph_id] = PendingWrite(change, folder, mark=True)


async def record_failure(
    cycle: Cycle,
    graph_id: str,
    folder: str,
    error: BaseException,
    *,
    categories: list[str] | None = None,
    etag: str = "",
) -> None:
    """Count a failure of an item in its row and the mailbox's health. Throttling does not
    use up an attempt; the last attempt makes the item Undeliverable and queues its mark."""
    services, mailbox = cycle.services, cycle.mailbox
    klass = classify(error)
    telemetry.record_error_class(klass)
    previous = cycle.failures.get(graph_id, {})
    already = bool(previous.get("undeliverable"))
    attempts = int(previous.get("attempts", 0)) + (0 if already or klass == "throttled" else 1)
    row = {
        "PartitionKey": mailbox.key,
        "RowKey": f"fail-{index_key(graph_id)}",
        "graph_id": graph_id,
        "folder": folder,
        "attempts": attempts,
        "failure_class": klass,
        "undeliverable": already or attempts >= services.settings.max_tracking_attempts,
        "marked": bool(previous.get("marked")),
        "last_error": type(error).__name__,
    }
    await services.store.mailboxes.upsert_entity(row)
    cycle.failures[graph_id] = row
    what = error if isinstance(error, CategoryWriteFailed) else type(error).__name__
    mailbox.failed(klass, services.clock(), f"{klass}: {what}")
    cycle.report.failed += 1
    telemetry.record_failed(klass)
    if row["undeliverable"] and not already:
        queue_mark(cycle, graph_id, categories, etag, folder)
    logger.warning("item failed to track in a mailbox (%s, attempt %s)", klass, attempts)


async def retry_one(cycle: Cycle, graph_id: str, folder: str) -> None:
    graph, email = cycle.services.graph(), cycle.mailbox.email
    if folder == _CALENDAR:
        event = await get_event(graph, email, graph_id)
        if event is None:
            raise Rejected("the event is gone")
        await process_event(cycle, event)
        return
    item = await get_message(graph, email, graph_id)
    if item is None:
        raise Rejected("the item is gone")
    await process_item(cycle, item, folder)
