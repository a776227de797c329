"""What a click or attachment token leads to: a message's stored link targets (cached per
worker once they can no longer change) and short-lived download links for followed
attachments. Reads only, but for `finalise`; recording the hit is shared.tracking.recording.

A draft's links change when the draft is edited (shared.messages.drafts), on whichever
worker takes the edit, so no worker may keep them. Only links marked final (`FINAL_METADATA`
on their blob) are cached: a message composed to be sent is stored marked, a draft is marked
as it is sent (`finalise`); anything unmarked (a draft, or links stored before the mark
existed) is read afresh on every click."""

from __future__ import annotations

import contextlib
import json
import logging
from collections import OrderedDict

from azure.core.exceptions import ResourceNotFoundError

from shared.core.storage import ATTACHMENTS, Store
from shared.tracking.urls import redirect_location

logger = logging.getLogger(__name__)
_STORAGE_TIMEOUT_SECONDS = 3
# Blob metadata of links that can no longer change (the message is sent or on its way):
# the only ones a worker may cache.
FINAL_METADATA = {"final": "true"}


def links_blob_name(message_id: str) -> str:
    """Where a message's followed links are kept."""
    return f"{message_id}/links.json"


def attachment_blob_name(message_id: str, index: int, *, followed: bool) -> str:
    """Where an attachment's content is kept (followed ones are reachable from a token)."""
    return f"{message_id}/{'f' if followed else 'd'}{index}"


class LinkResolver:
    """Finds the stored target of a followed link. A message's links never change once it
    leaves the draft state, so each worker keeps the recent final ones (FINAL_METADATA) in
    memory; the others are read every time."""

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
        if not downloader.properties.metadata.get("final"):
            return targets  # a draft's: an edit on any worker may change them
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


async def finalise(store: Store, message_id: str) -> None:
    """Mark a draft's links final as it is sent: they can no longer change, and workers may
    cache them. Nothing to do for a message without followed links."""
    blob = store.message_blobs.get_blob_client(links_blob_name(message_id))
    with contextlib.suppress(ResourceNotFoundError):
        await blob.set_blob_metadata(FINAL_METADATA)


async def attachment_link(store: Store, message_id: str, index: int, *, minutes: int) -> str:
    """A short-lived download link for a followed attachment."""
    return await store.read_sas_url(
        ATTACHMENTS, attachment_blob_name(message_id, index, followed=True), minutes=minutes
    )
