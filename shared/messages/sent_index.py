"""The sent-mail index: each sent message found again from a reply by its Internet message
id and its conversation id, per mailbox it left from, so one sync cycle loads its mailbox's
index at once."""

from __future__ import annotations

from shared.core.ids import index_key, mailbox_key
from shared.core.rows import MessageRow
from shared.core.services import Services


def index_partition(kind: str, mailbox: str) -> str:
    """Sent mail is indexed per mailbox (its full key, shared.core.ids.mailbox_key), so one
    sync cycle loads its mailbox's index at once, and no two mailboxes share one."""
    return f"{kind}-{mailbox}"


async def record(
    services: Services, entity: MessageRow, imid: str, conversation: str, *, copy: int = 0
) -> None:
    """Find the message again from a reply: by its Internet message id and conversation. A
    message sent individually is recorded once per copy (`copy` 1, 2, ...), so a reply from
    any recipient finds it, and the row says whose copy it answers."""
    for kind, value in (("imid", imid), ("conv", conversation)):
        if value:
            await services.store.message_index.upsert_entity(
                {
                    "PartitionKey": index_partition(kind, mailbox_key(entity["seller"])),
                    "RowKey": index_key(value),
                    "message_id": entity["RowKey"],
                    "copy": copy,
                }
            )
