"""Mailbox operations on Graph, through the msgraph SDK: drafts stamped with our id, sending
(now or deferred), delta reads of folders and calendars, and the tracking category (category
writes on many messages: shared.outlook.category_writes).

Every call passes through the mailbox's gate (at most N requests in flight, across every worker
of the app; a $batch holds one permit per request in it) and asks for immutable ids, so an item
keeps its id when it moves between folders.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.category_color import CategoryColor
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.outlook_category import OutlookCategory
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty,
)
from msgraph.generated.users.item.messages.item.message_item_request_builder import (
    MessageItemRequestBuilder,
)
from msgraph.generated.users.item.messages.messages_request_builder import MessagesRequestBuilder

from shared.messages.delivery import Outgoing
from shared.outlook.categories import same_name
from shared.outlook.graph_client import Graph
from shared.outlook.items import EventItem, MailItem, parse_event, parse_message

# Our message id on every draft we create ("{id}.{copy}" for one recipient's copy), so a retry
# finds the draft instead of making a second one. A named string property in our own property
# set (a fixed GUID).
STAMP_PROPERTY = "String {6f1d4c2a-8d3e-4b7a-9c55-1e2f3a4b5c6d} Name EngagementMessageId"
# PidTagDeferredSendTime: Exchange holds the sent message until this time.
DEFERRED_SEND_PROPERTY = "SystemTime 0x3FEF"
IMMUTABLE_IDS = 'IdType="ImmutableId"'
BATCH_LIMIT = 20
MESSAGE_FIELDS = [
    "id", "subject", "from", "sender", "toRecipients", "ccRecipients", "categories",
    "internetMessageId", "conversationId", "receivedDateTime", "sentDateTime",
    "internetMessageHeaders", "isDraft", "parentFolderId", "body",
]  # fmt: skip


def request_config(query: Any = None, *, page_size: int | None = None) -> RequestConfiguration[Any]:
    """Every request's options: immutable ids, and a page size for listings."""
    config: RequestConfiguration[Any] = RequestConfiguration(query_parameters=query)
    prefer = (
        IMMUTABLE_IDS if page_size is None else f"{IMMUTABLE_IDS}, odata.maxpagesize={page_size}"
    )
    config.headers.add("Prefer", prefer)
    return config


def status_of(error: Exception) -> int | None:
    """The HTTP status of a Graph error, if it has one."""
    return getattr(error, "response_status_code", None)


def _recipients(addresses: Sequence[str]) -> list[Recipient]:
    return [Recipient(email_address=EmailAddress(address=a)) for a in addresses]


async def find_stamped(graph: Graph, mailbox: str, our_id: str) -> Message | None:
    """The message we created for `our_id` in any folder, if there is one."""
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter=(
            f"singleValueExtendedProperties/Any(ep: ep/id eq '{STAMP_PROPERTY}' "
            f"and ep/value eq '{our_id}')"
        ),
        select=[
            "id",
            "isDraft",
            "internetMessageId",
            "conversationId",
            "sentDateTime",
            "parentFolderId",
        ],
        top=2,
    )
    async with graph.gate(mailbox):
        found = await graph.client.users.by_user_id(mailbox).messages.get(request_config(query))
    return found.value[0] if found and found.value else None


async def find_by_internet_id(
    graph: Graph, mailbox: str, internet_message_id: str
) -> Message | None:
    """The mailbox's copy of a message, found by its Internet message id."""
    quoted = internet_message_id.replace("'", "''")
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter=f"internetMessageId eq '{quoted}'", select=["id", "categories"], top=1
    )
    async with graph.gate(mailbox):
        found = await graph.client.users.by_user_id(mailbox).messages.get(request_config(query))
    return found.value[0] if found and found.value else None


async def create_draft(
    graph: Graph, mailbox: str, outgoing: Outgoing, *, send_at: datetime | None = None
) -> Message:
    """A draft in the seller's mailbox, stamped with our id (and deferred, if send_at)."""
    stamp = SingleValueLegacyExtendedProperty(id=STAMP_PROPERTY, value=outgoing.delivery_key)
    properties = [stamp]
    if send_at is not None:
        when = send_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        properties.append(SingleValueLegacyExtendedProperty(id=DEFERRED_SEND_PROPERTY, value=when))
    draft = Message(
        subject=outgoing.subject,
        body=ItemBody(content_type=BodyType.Html, content=outgoing.html),
        to_recipients=_recipients(outgoing.to),
        cc_recipients=_recipients(outgoing.cc),
        bcc_recipients=_recipients(outgoing.bcc),
        single_value_extended_properties=properties,
        attachments=[
            FileAttachment(
                odata_type="#microsoft.graph.fileAttachment",
                name=a.name,
                content_type=a.content_type,
                content_bytes=base64.b64encode(a.content),
            )
            for a in outgoing.attachments
        ],
    )
    async with graph.gate(mailbox):
        created = await graph.client.users.by_user_id(mailbox).messages.post(
            draft, request_config()
        )
    if created is None or created.id is None:
        raise RuntimeError("Graph created no draft")
    return created


async def send_draft(graph: Graph, mailbox: str, graph_id: str) -> None:
    """Send a draft (Exchange holds it until its deferred-send time, if it has one)."""
    async with graph.gate(mailbox):
        await (
            graph.client.users.by_user_id(mailbox)
            .messages.by_message_id(graph_id)
            .send.post(request_config())
        )


async def delete_message(graph: Graph, mailbox: str, graph_id: str) -> None:
    async with graph.gate(mailbox):
        await (
            graph.client.users.by_user_id(mailbox)
            .messages.by_message_id(graph_id)
            .delete(request_config())
        )


async def get_event(graph: Graph, mailbox: str, event_id: str) -> EventItem | None:
    """One calendar event."""
    builder = graph.client.users.by_user_id(mailbox).events.by_event_id(event_id)
    data = await send_raw(graph, mailbox, builder.to_get_request_information(request_config()))
    return parse_event(data) if data.get("id") else None


async def folder_id(graph: Graph, mailbox: str, name: str) -> str | None:
    """The id of a folder given by id or well-known name (inbox, sentitems, outbox...)."""
    async with graph.gate(mailbox):
        folder = (
            await graph.client.users.by_user_id(mailbox)
            .mail_folders.by_mail_folder_id(name)
            .get(request_config())
        )
    return folder.id if folder else None


async def get_message(graph: Graph, mailbox: str, graph_id: str) -> MailItem | None:
    """One message with the fields the sync needs."""
    query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        select=MESSAGE_FIELDS
    )
    builder = graph.client.users.by_user_id(mailbox).messages.by_message_id(graph_id)
    data = await send_raw(graph, mailbox, builder.to_get_request_information(request_config(query)))
    return parse_message(data) if data.get("id") else None


async def parent_folder(graph: Graph, mailbox: str, graph_id: str) -> str | None:
    """The id of the folder a message is in."""
    query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        select=["id", "parentFolderId"]
    )
    async with graph.gate(mailbox):
        item = (
            await graph.client.users.by_user_id(mailbox)
            .messages.by_message_id(graph_id)
            .get(request_config(query))
        )
    return item.parent_folder_id if item else None


_ERRORS: dict[str, Any] = {"XXX": ODataError}


async def send_raw(graph: Graph, mailbox: str, info: Any) -> dict[str, Any]:
    """Send a request built by the SDK and take its JSON as it is (see shared.outlook.items)."""
    adapter = graph.client.request_adapter
    async with graph.gate(mailbox):
        raw: Any = await adapter.send_primitive_async(info, "bytes", _ERRORS)
    if not raw:
        return {}
    data = json.loads(raw)
    return data if isinstance(data, dict) else {}


async def _find_category(graph: Graph, mailbox: str, name: str) -> tuple[str, str] | None:
    categories = graph.client.users.by_user_id(mailbox).outlook.master_categories
    async with graph.gate(mailbox):
        listed = await categories.get()
    for category in (listed.value if listed else None) or []:
        if category.id and category.display_name and same_name(category.display_name, name):
            return category.id, category.display_name
    return None


async def ensure_category(
    graph: Graph, mailbox: str, category_id: str | None, name: str
) -> tuple[str, str]:
    """(id, current name) of the tracking category, recreated if it was deleted. Known by id,
    so a renamed category keeps working; found by name without regard to case, as Outlook
    compares names, so one the user made as "tracked to engagement" is adopted."""
    categories = graph.client.users.by_user_id(mailbox).outlook.master_categories
    if category_id:
        try:
            async with graph.gate(mailbox):
                found = await categories.by_outlook_category_id(category_id).get()
            if found is not None and found.display_name:
                return category_id, found.display_name
        except ODataError as error:
            if status_of(error) != 404:
                raise
    existing = await _find_category(graph, mailbox, name)
    if existing is not None:
        return existing
    try:
        async with graph.gate(mailbox):
            created = await categories.post(
                OutlookCategory(display_name=name, color=CategoryColor.Preset9)
            )
    except ODataError as error:
        # 409: the name is taken, in another case or by another worker just now: adopt it.
        if status_of(error) == 409 and (adopted := await _find_category(graph, mailbox, name)):
            return adopted
        raise
    if created is None or created.id is None:
        raise RuntimeError("Graph created no category")
    return created.id, name
