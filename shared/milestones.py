"""The side effects of a message's milestones, in one place: "sent", "opened" and
"replied" count the message for its template; the first open no scanner made raises the
first-open alert. The fold, the sync and sending call these through `Services.milestones`
(shared.core.services.Milestones) and import neither the templates nor the assistant."""

from __future__ import annotations

from datetime import datetime

from shared.assistant import alerts
from shared.core.services import Message
from shared.core.storage import Store
from shared.templates import library


class StoredMilestones:
    """Milestones recorded in storage (idempotent: each may be called again after a crash)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def sent(self, message: Message) -> None:
        await self._mark(message, "sent")

    async def opened(self, message: Message) -> None:
        await self._mark(message, "opened")

    async def replied(self, message: Message) -> None:
        await self._mark(message, "replied")

    async def someone_opened(self, message: Message, at: datetime) -> None:
        await alerts.first_open(self._store, dict(message), at)

    async def _mark(self, message: Message, what: library.Marker) -> None:
        await library.mark(self._store, message.get("template_id") or "", message["RowKey"], what)
