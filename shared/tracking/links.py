"""What a click or attachment token leads to: a message's stored link targets (cached per
worker: they never change once sent) and short-lived download links for followed
attachments. Reads only; recording the hit is shared.tracking.recording."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict

from azure.core.exceptions import ResourceNotFoundError

from shared.core.storage import ATTACHMENTS, Store
from shared.tracking.urls import redirect_location

logger = logging.getLogger(__name__)
_STORAGE_TIMEOUT_SECONDS = 3


def links_blob_name(message_id: str) -> str:
    """Where a message's followed links are kept."""
    return f"{message_id}/links.json"


def attachment_blob_name(message_id: str, index: int, *, followed: bool) -> str:
    """Where an attachment's content is kept (followed ones are reachable from a token)."""
    return f"{message_id}/{'f' if followed else 'd'}{index}"


class LinkResolver:
    """Finds the stored target of a followed link. A message's links never change once
    composed, so each worker keeps the recent ones in memory."""

    def __init__(self, store: Store, capacity: int = 2048) -> None:
        self._store = store
        self._capacity = capacity
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    async def links(self, message_id: str) -> tuple[str, ...] | None:
        """The message's followed link targets in index order; None if it has none stored."""
        cached = self._cache.get(message_id)
        if cached is not None:
            self._cache.move_to_end(message_id)
            return cached
        try:
            downloader = await self._store.tracking_message_blobs.download_blob(
                links_blob_name(message_id), timeout=_STORAGE_TIMEOUT_SECONDS
            )
            targets = tuple(json.loads(await downloader.readall()))
        except ResourceNotFoundError:
            return None
        self._cache[message_id] = targets
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return targets

    async def location(self, message_id: str, index: int) -> str | None:
        """The redirect Location for link `index` of a message, or None if there is none."""
        targets = await self.links(message_id)
        if targets is None or not 0 <= index < len(targets):
            return None
        try:
            return redirect_location(targets[index])
        except ValueError:
            return None


async def attachment_link(store: Store, message_id: str, index: int, *, minutes: int) -> str:
    """A short-lived download link for a followed attachment."""
    return await store.read_sas_url(
        ATTACHMENTS, attachment_blob_name(message_id, index, followed=True), minutes=minutes
    )
