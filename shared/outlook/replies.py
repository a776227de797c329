"""Replies to followed mail: recognising them, and counting each exactly once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared.core import list_index
from shared.core.ids import index_key, partition_of
from shared.core.services import Services
from shared.engagement import history
from shared.engagement.kpis import Occurrence, from_columns, to_columns
from shared.messages.sent_index import index_partition

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?reply|out of (the )?office|abwesenheitsnotiz|"
    r"réponse automatique|respuesta automática|risposta automatica)\b",
    re.IGNORECASE,
)


def referenced_ids(in_reply_to: str | None, references: str | None) -> list[str]:
    """The Internet message ids a reply points at, nearest first."""
    found = _MESSAGE_ID.findall(in_reply_to or "")
    found += reversed(_MESSAGE_ID.findall(references or ""))
    return list(dict.fromkeys(found))


def is_automatic(headers: Mapping[str, str], subject: str | None) -> bool:
    """Out-of-office and other machine answers (RFC 3834 Auto-Submitted, Exchange's own
    markers, and the usual subjects), which are recorded but not counted as replies."""
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    if lowered.get("auto-submitted", "no") != "no":
        return True
    if "x-autoreply" in lowered or "x-autorespond" in lowered:
        return True
    if lowered.get("x-ms-exchange-inbox-rules-loop") or lowered.get("precedence") in (
        "auto_reply",
        "bulk",
        "junk",
    ):
        return True
    return bool(_AUTO_SUBJECT.match(subject or ""))


async def load_followed(services: Services, mailbox: str) -> dict[str, dict[str, str]]:
    """The mail sent from a mailbox (its key) by Internet message id and by conversation
    ("imid", "conv"), read once per cycle: a cycle then matches thousands of messages
    without a storage call each."""
    index: dict[str, dict[str, str]] = {"imid": {}, "conv": {}}
    for kind, found in index.items():
        rows = services.store.message_index.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": index_partition(kind, mailbox)},
            select=["RowKey", "message_id"],
        )
        async for row in rows:
            found[row["RowKey"]] = row["message_id"]
    return index


def find_followed(
    index: Mapping[str, Mapping[str, str]],
    in_reply_to: str | None,
    references: str | None,
    conversation: str | None,
) -> str | None:
    """Our message id that a received message answers: by its headers, else its thread."""
    for value in referenced_ids(in_reply_to, references):
        found = index["imid"].get(index_key(value))
        if found is not None:
            return found
    return index["conv"].get(index_key(conversation)) if conversation else None


async def record_reply(
    services: Services, message_id: str, *, reply_key: str, at: datetime, automatic: bool
) -> None:
    """Store a reply event once (keyed by the reply's own id) and set the message's reply
    count from the stored events, so seeing the same reply again changes nothing."""
    await services.store.events.upsert_entity(
        {
            **history.keys(message_id, f"reply-{index_key(reply_key)}"),
            "kind": "auto_reply" if automatic else "reply",
            "index": 0,
            "at": at.isoformat(),
            "device": "",
        }
    )
    replies = sorted(
        [
            datetime.fromisoformat(row["at"])
            for row in await history.read(services.store, message_id, kind="reply")
        ]
    )
    keys = {"partition_key": partition_of(message_id), "row_key": message_id}
    for _ in range(20):
        try:
            entity = await services.store.messages.get_entity(**keys)
        except ResourceNotFoundError:
            return
        kpis = from_columns(entity)
        first, last = dict(kpis.first), dict(kpis.last)
        if replies:
            first["reply"] = Occurrence("reply", replies[0], 0, "")
            last["reply"] = Occurrence("reply", replies[-1], 0, "")
        updated = replace(kpis, replies=len(replies), first=first, last=last)
        if updated == kpis:
            return
        if kpis.replies == 0 and replies:  # before the count is stored: a crash loses nothing
            await services.milestones.replied(entity)
        patch: dict[str, Any] = {"PartitionKey": keys["partition_key"], "RowKey": message_id}
        patch.update(to_columns(updated))
        try:  # the reply count moves the message in the list index: one transaction
            await list_index.update_message(
                services.store.messages, entity, patch, str(entity.metadata["etag"])
            )
            return
        except ResourceModifiedError:
            continue
    raise RuntimeError("message kept changing while recording a reply")
