"""Delivery backends. The local outbox stores each delivered message as a MIME file in blob
storage (like Django's file e-mail backend), so the whole flow runs on one machine; the
Graph backend (sending from the seller's Outlook mailbox) plugs in beside it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

from azure.core.exceptions import ResourceExistsError

from shared.core.storage import Store


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to the delivered message itself (not followed)."""

    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Everything a backend needs to deliver one message."""

    message_id: str
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    html: str
    attachments: list[Attachment] = field(default_factory=list)
    copy: int = 0  # one recipient's copy (1, 2, ...) of a message sent individually

    @property
    def delivery_key(self) -> str:
        """What a backend's "never twice" is keyed on: the message, or one copy of it."""
        return f"{self.message_id}.{self.copy}" if self.copy else self.message_id


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof of delivery."""

    sent_at: datetime
    internet_message_id: str
    conversation_id: str = ""
    provider_id: str = ""  # the message's id in the mailbox, where there is one


class DeliveryBackend(Protocol):
    """Where composed mail goes. `lead` is how long before its time a scheduled message is
    handed over: a backend that can defer sending itself delivers on the dot."""

    lead: timedelta

    async def deliver(self, message: Outgoing, *, send_at: datetime | None = None) -> Receipt:
        """Deliver once: delivering the same message id again returns the first receipt."""
        ...

    async def cancel(self, mailbox: str, provider_id: str) -> bool:
        """Stop a handed-over message that has not gone out yet; False if that is too late."""
        ...


def to_mime(message: Outgoing, sent_at: datetime, internet_message_id: str) -> EmailMessage:
    """The RFC 5322 message as it would leave the seller's mailbox."""
    mime = EmailMessage()
    mime["From"] = message.sender
    if message.to:
        mime["To"] = ", ".join(message.to)
    if message.cc:
        mime["Cc"] = ", ".join(message.cc)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(sent_at)
    mime["Message-ID"] = internet_message_id
    mime["X-Engagement-Message-Id"] = message.message_id
    if message.copy:
        mime["X-Engagement-Copy"] = str(message.copy)
    mime.set_content("This message is HTML; open it in a mail client that shows HTML.")
    mime.add_alternative(message.html, subtype="html")
    for item in message.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        mime.add_attachment(item.content, maintype=maintype, subtype=subtype, filename=item.name)
    return mime


class OutboxBackend:
    """Writes `outbox/{message_id}.eml` (`{message_id}.{copy}.eml` for each copy of a message
    sent individually); Bcc recipients go in the blob's metadata, as an SMTP envelope would
    carry them, not in the headers."""

    lead = timedelta(0)  # files the message when it is due

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    async def cancel(self, mailbox: str, provider_id: str) -> bool:
        return False  # filed means gone out

    async def deliver(self, message: Outgoing, *, send_at: datetime | None = None) -> Receipt:
        sent_at = self._clock()
        internet_message_id = make_msgid(domain="engagement.local")
        mime = to_mime(message, sent_at, internet_message_id)
        blob = self._store.outbox.get_blob_client(f"{message.delivery_key}.eml")
        try:
            await blob.upload_blob(
                mime.as_bytes(),
                metadata={
                    "sent_at": sent_at.isoformat(),
                    "internet_message_id": internet_message_id,
                    "bcc_count": str(len(message.bcc)),
                },
            )
        except ResourceExistsError:
            properties = await blob.get_blob_properties()
            return Receipt(
                datetime.fromisoformat(properties.metadata["sent_at"]),
                properties.metadata["internet_message_id"],
            )
        return Receipt(sent_at, internet_message_id)
