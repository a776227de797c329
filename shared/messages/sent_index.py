"""The sent-mail index: each sent message found again from a reply by its Internet message
id and its conversation id, per seller, so one sync cycle loads its seller's index at
once."""

from __future__ import annotations

from shared.core.ids import index_key
from shared.core.rows import MessageRow
from shared.core.services import Services


def index_partition(kind: str, seller_partition: str) -> str:
    """Sent mail is indexed per seller, so one sync cycle loads its seller's index at once."""
    return f"{kind}-{seller_partition}"


async def record(services: Services, entity: MessageRow, imid: str, conversation: str) -> None:
    """Find the message again from a reply: by its Internet message id and conversation."""
    for kind, value in (("imid", imid), ("conv", conversation)):
        if value:
            await services.store.message_index.upsert_entity(
                {
                    "PartitionKey": index_partition(kind, entity["PartitionKey"]),
                    "RowKey": index_key(value),
                    "message_id": entity["RowKey"],
                }
            )
