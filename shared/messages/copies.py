"""A message sent individually (`send_individually`): one copy per recipient, numbered 1, 2,
... in the order To, Cc, Bcc (an address once, whatever its case), each addressed to that
recipient alone and signed with tracking tokens of its own, so the KPIs (`Kpis.by_copy`) and
the history say which recipient opened or clicked. The message row keeps what went out in its
`copies` column: a JSON list of `SentCopy`, in copy order.

The default, one message to everyone, carries one set of tokens (copy 0) and cannot tell its
recipients apart."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from shared.core.rows import MessageRow
from shared.core.services import Services
from shared.messages.delivery import Receipt
from shared.tracking.followed_body import FollowedBody, FollowedFile, followed_body


class SentCopy(TypedDict, total=False):
    """One recipient's copy as it went out: an entry of the `copies` column."""

    copy: int
    address: str
    internet_message_id: str
    conversation_id: str
    provider_id: str  # the copy's id in the seller's mailbox (Graph)
    cancelled: bool  # stopped before it left (set only when others had gone already)


def recipients(to: Sequence[str], cc: Sequence[str], bcc: Sequence[str]) -> list[str]:
    """Each recipient once, in the order To, Cc, Bcc, as first written (addresses compared
    without case): copy n goes to the n-th. Pure."""
    found: dict[str, str] = {}
    for address in [*to, *cc, *bcc]:
        found.setdefault(address.lower(), address)
    return list(found.values())


def planned(entity: MessageRow) -> list[tuple[int, str]]:
    """(copy, address) of every copy of a message sent individually. Pure."""
    found = recipients(
        json.loads(entity["to"]), json.loads(entity["cc"]), json.loads(entity["bcc"])
    )
    return list(enumerate(found, start=1))


def sent(entity: Mapping[str, Any]) -> list[SentCopy]:
    """The copies that went out (the `copies` column); [] before sending, or for a message
    sent to everyone at once. Pure."""
    found: list[SentCopy] = json.loads(entity.get("copies") or "[]")
    return found


def addresses(entity: MessageRow) -> dict[int, str]:
    """Each copy's recipient, as sent or else as it will be; {} for a message sent to
    everyone at once. Pure."""
    if not entity.get("send_individually"):
        return {}
    went = sent(entity)
    return {c["copy"]: c["address"] for c in went} if went else dict(planned(entity))


def entry(copy: int, address: str, receipt: Receipt) -> SentCopy:
    """The column entry of one copy delivered. Pure."""
    return {
        "copy": copy,
        "address": address,
        "internet_message_id": receipt.internet_message_id,
        "conversation_id": receipt.conversation_id,
        "provider_id": receipt.provider_id,
    }


def column(copies: Iterable[SentCopy]) -> str:
    """The `copies` column. Pure."""
    return json.dumps(list(copies))


def signed_body(
    services: Services,
    message_id: str,
    html: str,
    files: Sequence[FollowedFile],
    *,
    copy: int = 0,
) -> FollowedBody:
    """The seller's HTML with its links, followed attachments and pixel signed for one copy
    (0: the one copy sent to everyone). Deterministic for a given signing key, so the body
    compose shows and the one sent later are the same."""
    return followed_body(
        html,
        message_id=message_id,
        signer=services.signer,
        base_url=services.settings.tracking_base_url,
        own_hosts=[services.settings.tracking_host],
        files=files,
        copy=copy,
    )
