"""Sending followed mail from the seller's own Outlook mailbox: draft, then send.

Never twice: each draft carries our message id (with the copy number, for one recipient's copy
of a message sent individually) in an extended property, and delivery looks for it before
creating one, so a crash between creating and sending, or a doubled timer, sends the existing
draft (or notices it already went) instead of making a second.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from shared.messages.delivery import Outgoing, Receipt
from shared.outlook.graph_client import Graph
from shared.outlook.mail import (
    create_draft,
    delete_message,
    find_stamped,
    folder_id,
    parent_folder,
    send_draft,
    status_of,
)


class GraphDelivery:
    """The Graph delivery backend. Scheduled mail is handed over a few minutes early with
    Exchange's deferred-send time, so it leaves on the dot rather than on the next cycle."""

    lead = timedelta(minutes=5)  # the dispatch timer runs every minute: room for a miss

    def __init__(self, graph: Callable[[], Graph], clock: Callable[[], datetime]) -> None:
        self._graph = graph
        self._clock = clock

    async def deliver(self, message: Outgoing, *, send_at: datetime | None = None) -> Receipt:
        graph = self._graph()
        mailbox = message.sender
        deferred = send_at if send_at is not None and send_at > self._clock() else None
        existing = await find_stamped(graph, mailbox, message.delivery_key)
        if existing is not None and existing.is_draft is False:
            return self._receipt(existing, deferred)  # it went already: record, do not resend
        draft = existing or await create_draft(graph, mailbox, message, send_at=deferred)
        assert draft.id is not None
        await send_draft(graph, mailbox, draft.id)
        return self._receipt(draft, deferred)

    def _receipt(self, item: object, deferred: datetime | None) -> Receipt:
        sent = getattr(item, "sent_date_time", None)
        return Receipt(
            sent_at=deferred
            or (sent if isinstance(sent, datetime) else self._clock()).astimezone(UTC),
            internet_message_id=getattr(item, "internet_message_id", None) or "",
            conversation_id=getattr(item, "conversation_id", None) or "",
            provider_id=getattr(item, "id", None) or "",
        )

    async def cancel(self, mailbox: str, provider_id: str) -> bool:
        """Delete a deferred message from the Outbox before Exchange sends it; False once it
        has left (it is then in Sent Items, which we never touch)."""
        graph = self._graph()
        try:
            folder = await parent_folder(graph, mailbox, provider_id)
            if folder is None or folder != await folder_id(graph, mailbox, "outbox"):
                return False
            await delete_message(graph, mailbox, provider_id)
        except ODataError as error:
            if status_of(error) == 404:
                return False
            raise
        return True
