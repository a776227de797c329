"""Recording a tracking hit: the whole path below the web layer. Build the event from the
request, label it with the per-event stage of the classifier (microseconds), and write its
blob: the one storage write of a tracking request. Never raises for a recipient to see."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.classification.devices import client_ip
from shared.core.services import Services
from shared.core.storage import Store
from shared.tracking.events import Event, new_event
from shared.tracking.labelling import label_event
from shared.tracking.tokens import TrackingRef

logger = logging.getLogger(__name__)
_STORAGE_TIMEOUT_SECONDS = 3


@dataclass(frozen=True, slots=True)
class Hit:
    """What a tracking request tells about who fetched it."""

    user_agent: str
    forwarded_for: str | None
    peer: str | None
    method: str
    has_accept: bool


async def record_hit(services: Services, ref: TrackingRef, hit: Hit) -> bool:
    """Record one open, click or attachment view (nothing while the organisation has
    engagement off); False when nothing was recorded."""
    if not await services.org.enabled():
        return False
    event = new_event(
        message_id=ref.message_id,
        kind=ref.kind,
        index=ref.index,
        user_agent=hit.user_agent,
        ip=client_ip(hit.forwarded_for, hit.peer),
        method=hit.method,
        has_accept=hit.has_accept,
        at=services.clock(),
        copy=ref.copy,
    )
    # Labelled here so that the stored event carries its class at once; the fold judges it
    # again with the send time and the message's other events.
    return await record_event(services.store, label_event(event))


async def record_event(store: Store, event: Event) -> bool:
    """Write the event blob: the one storage write of a tracking request. False when storage
    failed; the caller still answers the recipient."""
    try:
        await store.tracking_interactions.upload_blob(
            event.blob_name,
            event.body(),
            metadata=event.metadata(),
            timeout=_STORAGE_TIMEOUT_SECONDS,
        )
    except Exception:  # any storage failure: a lost event beats an error in an inbox
        logger.exception("could not record a %s event", event.kind)
        return False
    return True
