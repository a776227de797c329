"""The side effects of a message's milestones, in one place: "sent", "opened" and
"replied" count the message for its template; the first counted open raises the first-open
alert, and a fold that takes every counted open back uncounts and withdraws them. The fold,
the sync and sending call these through `Services.milestones`
(shared.core.services.Milestones) and import neither the templates nor the assistant."""

from __future__ import annotations

import asyncio
from datetime import datetime

from shared.assistant import first_open_alerts
from shared.core.services import Message, OpenEvidence
from shared.core.settings import Settings
from shared.core.storage import Store
from shared.templates import library


class StoredMilestones:
    """Milestones recorded in storage (idempotent: each may be called again after a crash)."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def sent(self, message: Message) -> None:
        await self._mark(message, "sent")

    async def opened(self, message: Message, first: OpenEvidence, now: datetime) -> None:
        await self._mark(message, "opened")
        await first_open_alerts.on_first_open(self._store, self._settings, message, first, now)

    async def opened_all(self, opened: list[tuple[Message, OpenEvidence]], now: datetime) -> None:
        await asyncio.gather(*(self._mark(message, "opened") for message, _ in opened))
        await first_open_alerts.on_first_opens(self._store, self._settings, opened, now)

    async def unopened(self, message: Message, reason: str, now: datetime) -> None:
        await first_open_alerts.on_no_open(self._store, message, reason, now)
        await library.unmark(
            self._store, message.get("template_id") or "", message["RowKey"], "opened"
        )

    async def replied(self, message: Message) -> None:
        await self._mark(message, "replied")

    async def _mark(self, message: Message, what: library.Marker) -> None:
        await library.mark(self._store, message.get("template_id") or "", message["RowKey"], what)
