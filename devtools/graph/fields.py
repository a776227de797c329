"""The message properties a client may write, and how each is checked and stored.

Body and recipients are "updatable only if isDraft = true" (message update docs); custom
internet headers may only be set on creation and must be named x-... (create message docs).
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from devtools.graph.mailbox import Message, unknown_property
from devtools.graph.odata import GraphError, body_preview, iso, new_item_id, prop_key

# Every property a message's $select may name.
MESSAGE_PROPERTIES = (
    "bccRecipients",
    "body",
    "bodyPreview",
    "categories",
    "ccRecipients",
    "changeKey",
    "conversationId",
    "conversationIndex",
    "createdDateTime",
    "flag",
    "from",
    "hasAttachments",
    "id",
    "importance",
    "inferenceClassification",
    "internetMessageHeaders",
    "internetMessageId",
    "isDeliveryReceiptRequested",
    "isDraft",
    "isRead",
    "isReadReceiptRequested",
    "lastModifiedDateTime",
    "parentFolderId",
    "receivedDateTime",
    "replyTo",
    "sender",
    "sentDateTime",
    "subject",
    "toRecipients",
    "uniqueBody",
    "webLink",
)
DRAFT_ONLY = frozenset(
    [
        "subject",
        "body",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "from",
        "sender",
        "internetMessageId",
        "isReadReceiptRequested",
        "isDeliveryReceiptRequested",
    ]
)
ALWAYS_UPDATABLE = frozenset(
    ["categories", "isRead", "importance", "flag", "singleValueExtendedProperties"]
)
CREATE_ONLY = frozenset({"attachments", "internetMessageHeaders"})
_RECIPIENT_LISTS = {"toRecipients", "ccRecipients", "bccRecipients", "replyTo"}


def writable_fields(body: Mapping[str, Any], *, creating: bool, is_draft: bool) -> dict[str, Any]:
    """The properties of a POST or PATCH body, refused as Graph refuses them."""
    fields = {k: v for k, v in body.items() if not k.startswith("@")}
    for name in fields:
        if name in CREATE_ONLY and not creating:
            raise GraphError(
                400, "ErrorInvalidPropertySet", f"'{name}' can only be set on creation."
            )
        if name not in DRAFT_ONLY | ALWAYS_UPDATABLE | CREATE_ONLY:
            raise unknown_property(name, "message")
        if name in DRAFT_ONLY and not is_draft:
            raise GraphError(
                400,
                "ErrorInvalidPropertyUpdateSentMessage",
                "Update operation is invalid for property of a sent message.",
            )
    return fields


def apply_fields(msg: Message, fields: Mapping[str, Any], now: datetime) -> None:
    """Stores checked properties on a message."""
    for name, value in fields.items():
        if name == "singleValueExtendedProperties":
            for prop in value or []:
                if not isinstance(prop, dict) or "id" not in prop or "value" not in prop:
                    raise GraphError(400, "BadRequest", "An extended property needs id and value.")
                msg.extended[prop_key(str(prop["id"]))] = (str(prop["id"]), str(prop["value"]))
        elif name == "internetMessageHeaders":
            msg.headers = [custom_header(h) for h in value or []]
        elif name == "attachments":
            msg.attachments = [file_attachment(a, now) for a in value or []]
            msg.data["hasAttachments"] = any(not a["isInline"] for a in msg.attachments)
        elif name == "body":
            content = str((value or {}).get("content") or "")
            kind = str((value or {}).get("contentType") or "text").lower()
            msg.data["body"] = {"contentType": kind, "content": content}
            msg.data["bodyPreview"] = body_preview(content)
        elif name in _RECIPIENT_LISTS:
            msg.data[name] = [recipient_in(r) for r in value or []]
        elif name in {"from", "sender"}:
            msg.data[name] = recipient_in(value) if value else None
        elif name == "categories":
            msg.data[name] = [str(c) for c in value or []]
        else:
            msg.data[name] = copy.deepcopy(value)


def recipient_in(value: Any) -> dict[str, Any]:
    email = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(email, dict) or not email.get("address"):
        raise GraphError(400, "ErrorInvalidRecipients", "A recipient needs an email address.")
    address = str(email["address"])
    return {"emailAddress": {"name": str(email.get("name") or address), "address": address}}


def custom_header(header: Any) -> dict[str, str]:
    """Only custom headers named x-... may be set."""
    if not isinstance(header, dict) or not header.get("name"):
        raise GraphError(400, "InvalidInternetMessageHeader", "A header needs a name.")
    name = str(header["name"])
    if not name.lower().startswith("x-"):
        raise GraphError(
            400,
            "InvalidInternetMessageHeader",
            f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
        )
    return {"name": name, "value": str(header.get("value") or "")}


def file_attachment(item: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("@odata.type") != "#microsoft.graph.fileAttachment":
        raise GraphError(400, "BadRequest", "Only fileAttachment is supported by the stand-in.")
    try:
        content = base64.b64decode(str(item.get("contentBytes") or ""), validate=True)
    except binascii.Error as exc:
        raise GraphError(400, "BadRequest", "contentBytes is not valid base64.") from exc
    return {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": new_item_id(),
        "lastModifiedDateTime": iso(now),
        "name": str(item.get("name") or "attachment"),
        "contentType": str(item.get("contentType") or "application/octet-stream"),
        "size": len(content),
        "isInline": bool(item.get("isInline", False)),
        "contentId": item.get("contentId"),
        "contentBytes": base64.b64encode(content).decode(),
    }
