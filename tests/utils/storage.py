"""Reading back what the app stored, to prove what was (and was not) written."""

from __future__ import annotations

from shared.core import list_index
from shared.core.auth import dev_seller
from shared.core.list_index import MESSAGE_ROWS_FILTER
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
    """(message rows of a seller, blobs in the message, attachment and outbox containers).
    A message's list index rows come and go with its row: not counted apart."""
    rows = [
        r
        async for r in services.store.messages.query_entities(
            f"PartitionKey eq @pk and {MESSAGE_ROWS_FILTER}",
            parameters={"pk": dev_seller(seller).partition},
        )
    ]
    blobs = 0
    for container in (MESSAGE_BLOBS, ATTACHMENTS, OUTBOX):
        client = services.store.blob_service.get_container_client(container)
        async for _ in client.list_blob_names():
            blobs += 1
    return len(rows), blobs


async def list_index_disagreement(services: Services, partition: str) -> dict[str, set[str]]:
    """How a message partition's list index differs from what its message rows say:
    {"missing": keys no index row has, "extra": index rows no message row accounts for}.
    Both empty when the index agrees with the rows."""
    expected: set[str] = set()
    actual: set[str] = set()
    async for row in services.store.messages.query_entities(
        "PartitionKey eq @pk", parameters={"pk": partition}
    ):
        if list_index.is_index_key(row["RowKey"]):
            actual.add(row["RowKey"])
        else:
            expected |= set(list_index.index_rows(row))
    return {"missing": expected - actual, "extra": actual - expected}
