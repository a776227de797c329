"""Reading back what the app stored, to prove what was (and was not) written."""

from __future__ import annotations

from shared.core.auth import dev_seller
from shared.core.services import Services
from shared.core.storage import ATTACHMENTS, INTERACTIONS, MESSAGE_BLOBS, OUTBOX


async def event_blobs(services: Services, message_id: str) -> list[str]:
    """Names of the interaction blobs of one message."""
    names = []
    async for name in services.store.blob_service.get_container_client(
        INTERACTIONS
    ).list_blob_names():
        if f"/{message_id}/" in name:
            names.append(name)
    return names


async def seller_footprint(services: Services, seller: str) -> tuple[int, int]:
    """(message rows of a seller, blobs in the message, attachment and outbox containers)."""
    rows = [
        r
        async for r in services.store.messages.query_entities(
            "PartitionKey eq @pk", parameters={"pk": dev_seller(seller).partition}
        )
    ]
    blobs = 0
    for container in (MESSAGE_BLOBS, ATTACHMENTS, OUTBOX):
        client = services.store.blob_service.get_container_client(container)
        async for _ in client.list_blob_names():
            blobs += 1
    return len(rows), blobs
