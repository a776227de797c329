"""In-memory mailboxes for the Graph stand-in: folders, messages, master categories, events.

Every change bumps the mailbox's sequence number and stamps the item with it; delta queries
(graph_delta) compare those numbers. Callers hold the stand-in's lock around every call.
"""

from __future__ import annotations

import base64
import binascii
import copy
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devtools.graph_odata import (
    GraphError,
    MessageFilter,
    body_preview,
    change_key,
    event_time,
    is_item_id,
    iso,
    new_guid,
    new_item_id,
    parse_time,
    project,
    prop_key,
    recipient,
)

Address = str | tuple[str, str]

WELL_KNOWN_FOLDERS = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "outbox": "Outbox",
    "deleteditems": "Deleted Items",
    "archive": "Archive",
}
# PidTagDeferredSendTime: a draft sent with this in the future waits in the Outbox.
DEFERRED_SEND_TIME = prop_key("SystemTime 0x3FEF")
# The six colour categories a new Outlook mailbox starts with.
DEFAULT_CATEGORIES = (
    ("Red category", "preset0"),
    ("Orange category", "preset1"),
    ("Yellow category", "preset3"),
    ("Green category", "preset4"),
    ("Blue category", "preset7"),
    ("Purple category", "preset8"),
)
CATEGORY_COLORS = {"none", *(f"preset{n}" for n in range(25))}
# Every property a message's $select may name.
MESSAGE_PROPERTIES = (
    "bccRecipients", "body", "bodyPreview", "categories", "ccRecipients", "changeKey",
    "conversationId", "conversationIndex", "createdDateTime", "flag", "from", "hasAttachments",
    "id", "importance", "inferenceClassification", "internetMessageHeaders", "internetMessageId",
    "isDeliveryReceiptRequested", "isDraft", "isRead", "isReadReceiptRequested",
    "lastModifiedDateTime", "parentFolderId", "receivedDateTime", "replyTo", "sender",
    "sentDateTime", "subject", "toRecipients", "uniqueBody", "webLink",
)
# Graph documents no code for a duplicate category name; this is the documented generic one.
DUPLICATE_NAME_CODE = "nameAlreadyExists"

_DRAFT_ONLY = {
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
}
_ALWAYS_UPDATABLE = {"categories", "isRead", "importance", "flag", "singleValueExtendedProperties"}
_CREATE_ONLY = {"attachments", "internetMessageHeaders"}


def _not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _unknown_property(name: str, type_name: str) -> GraphError:
    return GraphError(
        400,
        "RequestBodyRead",
        f"The property '{name}' does not exist on type 'microsoft.graph.{type_name}'. Make sure "
        "to only use property names that are defined by the type.",
    )


@dataclass
class Folder:
    """A mail folder; well-known folders also answer to their wellKnownName."""

    id: str
    display_name: str
    parent_id: str
    well_known: str | None = None


@dataclass
class Message:
    """A message: its Graph JSON plus what Graph keeps out of the default representation."""

    data: dict[str, Any]
    folder_id: str
    version: int = 0
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    deferred_until: datetime | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])


@dataclass
class Event:
    """A calendar event (single instance) in the primary calendar."""

    data: dict[str, Any]
    start: datetime
    end: datetime
    version: int = 0


@dataclass
class Mailbox:
    """One user's mailbox."""

    address: str
    display_name: str
    object_id: str
    root_id: str
    folders: dict[str, Folder] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    categories: dict[str, dict[str, str]] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    seq: int = 0

    def bump(self) -> int:
        """The next sequence number: every change gets one."""
        self.seq += 1
        return self.seq

    def owner(self) -> dict[str, Any]:
        return recipient((self.display_name, self.address))

    def folder(self, id_or_name: str) -> Folder:
        """A folder by id or (case-insensitive) wellKnownName."""
        if id_or_name in self.folders:
            return self.folders[id_or_name]
        for folder in self.folders.values():
            if folder.well_known == id_or_name.lower():
                return folder
        if is_item_id(id_or_name) or id_or_name.isalpha():
            raise _not_found()
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")


class GraphStore:
    """Mailboxes by address or object id, and the operations the endpoints and tests use."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._mailboxes: dict[str, Mailbox] = {}

    # -- mailboxes and folders -------------------------------------------------------------

    def add_mailbox(
        self, address: str, display_name: str | None = None, *, default_categories: bool = True
    ) -> Mailbox:
        """Creates a mailbox with the well-known folders (idempotent per address)."""
        key = address.strip().lower()
        if key in self._mailboxes:
            return self._mailboxes[key]
        name = display_name or key.split("@")[0].replace(".", " ").title()
        box = Mailbox(key, name, new_guid(), new_item_id())
        for well_known, shown in WELL_KNOWN_FOLDERS.items():
            folder = Folder(new_item_id(), shown, box.root_id, well_known)
            box.folders[folder.id] = folder
        if default_categories:
            for category_name, color in DEFAULT_CATEGORIES:
                self.create_category(box, {"displayName": category_name, "color": color})
        self._mailboxes[key] = box
        self._mailboxes[box.object_id] = box
        return box

    def mailbox(self, user: str) -> Mailbox:
        """A mailbox by userPrincipalName (case-insensitive) or id."""
        box = self._mailboxes.get(user.strip().lower())
        if box is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        return box

    def mailboxes(self) -> list[Mailbox]:
        return list({id(b): b for b in self._mailboxes.values()}.values())

    def add_folder(self, user: str, display_name: str) -> str:
        box = self.mailbox(user)
        folder = Folder(new_item_id(), display_name, box.root_id)
        box.folders[folder.id] = folder
        return folder.id

    def folder_json(self, box: Mailbox, folder: Folder) -> dict[str, Any]:
        inside = [m for m in box.messages.values() if m.folder_id == folder.id]
        return {
            "id": folder.id,
            "displayName": folder.display_name,
            "parentFolderId": folder.parent_id,
            "childFolderCount": sum(1 for f in box.folders.values() if f.parent_id == folder.id),
            "unreadItemCount": sum(1 for m in inside if not m.data["isRead"]),
            "totalItemCount": len(inside),
            "isHidden": False,
        }

    # -- messages --------------------------------------------------------------------------

    def message(self, box: Mailbox, message_id: str) -> Message:
        found = box.messages.get(message_id)
        if found is None:
            if not is_item_id(message_id):
                raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
            raise _not_found()
        return found

    def _touch(self, box: Mailbox, msg: Message) -> None:
        msg.version = box.bump()
        msg.data["changeKey"] = change_key(msg.version)
        msg.data["lastModifiedDateTime"] = iso(self.clock())
        msg.data["parentFolderId"] = msg.folder_id

    def _new_message(self, box: Mailbox, folder: Folder, when: datetime) -> Message:
        data: dict[str, Any] = {
            "id": new_item_id(),
            "createdDateTime": iso(when),
            "lastModifiedDateTime": iso(when),
            "changeKey": "",
            "categories": [],
            "receivedDateTime": iso(when),
            "sentDateTime": iso(when),
            "hasAttachments": False,
            "internetMessageId": f"<{secrets.token_hex(12)}@standin>",
            "subject": "",
            "bodyPreview": "",
            "importance": "normal",
            "parentFolderId": folder.id,
            "conversationId": "AAQk" + secrets.token_urlsafe(24) + "=",
            "conversationIndex": base64.b64encode(secrets.token_bytes(22)).decode(),
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isRead": False,
            "isDraft": False,
            "webLink": "",
            "inferenceClassification": "focused",
            "body": {"contentType": "html", "content": ""},
            "toRecipients": [],
            "ccRecipients": [],
            "bccRecipients": [],
            "replyTo": [],
            "flag": {"flagStatus": "notFlagged"},
        }
        data["webLink"] = (
            f"https://outlook.office365.com/owa/?ItemID={data['id']}"
            "&exvsurl=1&viewmodel=ReadMessageItem"
        )
        msg = Message(data, folder.id)
        box.messages[msg.id] = msg
        return msg

    def deliver(
        self,
        user: str,
        *,
        folder: str,
        subject: str,
        body_html: str,
        sender: Address,
        to: Sequence[Address],
        cc: Sequence[Address],
        internet_message_id: str | None,
        conversation_id: str | None,
        headers: Sequence[tuple[str, str]],
        categories: Iterable[str],
        received: datetime | None,
    ) -> Message:
        """Puts an incoming (already sent) message into a folder."""
        box = self.mailbox(user)
        when = received or self.clock()
        msg = self._new_message(box, box.folder(folder), when)
        data = msg.data
        data["subject"] = subject
        data["body"] = {"contentType": "html", "content": body_html}
        data["bodyPreview"] = body_preview(body_html)
        data["from"] = data["sender"] = recipient(sender)
        data["toRecipients"] = [recipient(a) for a in to]
        data["ccRecipients"] = [recipient(a) for a in cc]
        data["categories"] = list(categories)
        if internet_message_id:
            data["internetMessageId"] = internet_message_id
        if conversation_id:
            data["conversationId"] = conversation_id
        sender_address = data["from"]["emailAddress"]
        msg.headers = [
            {"name": "From", "value": f"{sender_address['name']} <{sender_address['address']}>"},
            {
                "name": "To",
                "value": ", ".join(r["emailAddress"]["address"] for r in data["toRecipients"]),
            },
            {"name": "Subject", "value": subject},
            {"name": "Date", "value": when.strftime("%a, %d %b %Y %H:%M:%S %z")},
            {"name": "Message-ID", "value": data["internetMessageId"]},
        ]
        if data["ccRecipients"]:
            cc_line = ", ".join(r["emailAddress"]["address"] for r in data["ccRecipients"])
            msg.headers.insert(2, {"name": "Cc", "value": cc_line})
        msg.headers += [{"name": n, "value": v} for n, v in headers]
        self._touch(box, msg)
        return msg

    def create_draft(self, user: str, body: Mapping[str, Any]) -> Message:
        """POST /users/{u}/messages: a draft in Drafts."""
        box = self.mailbox(user)
        fields = {k: v for k, v in body.items() if not k.startswith("@")}
        for name in fields:
            if name not in _DRAFT_ONLY | _ALWAYS_UPDATABLE | _CREATE_ONLY:
                raise _unknown_property(name, "message")
        headers = [_custom_header(h) for h in fields.pop("internetMessageHeaders", None) or []]
        attachments = [
            _file_attachment(a, self.clock()) for a in fields.pop("attachments", None) or []
        ]
        msg = self._new_message(box, box.folder("drafts"), self.clock())
        msg.data["isDraft"] = True
        msg.data["isRead"] = True
        msg.headers = headers
        msg.attachments = attachments
        msg.data["hasAttachments"] = any(not a["isInline"] for a in attachments)
        self._apply(msg, fields)
        self._touch(box, msg)
        return msg

    def update_message(self, user: str, message_id: str, patch: Mapping[str, Any]) -> Message:
        """PATCH: body and recipients only while a draft, as the message update docs say."""
        box = self.mailbox(user)
        msg = self.message(box, message_id)
        fields = {k: v for k, v in patch.items() if not k.startswith("@")}
        for name in fields:
            if name in _CREATE_ONLY:
                raise GraphError(
                    400, "ErrorInvalidPropertySet", f"'{name}' can only be set on creation."
                )
            if name not in _DRAFT_ONLY | _ALWAYS_UPDATABLE:
                raise _unknown_property(name, "message")
            if name in _DRAFT_ONLY and not msg.data["isDraft"]:
                raise GraphError(
                    400,
                    "ErrorInvalidPropertyUpdateSentMessage",
                    "Update operation is invalid for property of a sent message.",
                )
        self._apply(msg, fields)
        self._touch(box, msg)
        return msg

    def _apply(self, msg: Message, fields: Mapping[str, Any]) -> None:
        for name, value in fields.items():
            if name == "singleValueExtendedProperties":
                for prop in value or []:
                    if not isinstance(prop, dict) or "id" not in prop or "value" not in prop:
                        raise GraphError(
                            400, "BadRequest", "An extended property needs id and value."
                        )
                    msg.extended[prop_key(str(prop["id"]))] = (str(prop["id"]), str(prop["value"]))
            elif name == "body":
                content = str((value or {}).get("content") or "")
                kind = str((value or {}).get("contentType") or "text").lower()
                msg.data["body"] = {"contentType": kind, "content": content}
                msg.data["bodyPreview"] = body_preview(content)
            elif name in {"toRecipients", "ccRecipients", "bccRecipients", "replyTo"}:
                msg.data[name] = [_recipient_in(r) for r in value or []]
            elif name in {"from", "sender"}:
                msg.data[name] = _recipient_in(value) if value else None
            elif name == "categories":
                msg.data[name] = [str(c) for c in value or []]
            else:
                msg.data[name] = copy.deepcopy(value)

    def set_categories(self, user: str, message_id: str, names: Iterable[str]) -> None:
        box = self.mailbox(user)
        msg = self.message(box, message_id)
        msg.data["categories"] = list(names)
        self._touch(box, msg)

    def move(self, user: str, message_id: str, folder: str) -> Message:
        """Moves a message; its id stays, as with immutable ids."""
        box = self.mailbox(user)
        msg = self.message(box, message_id)
        msg.folder_id = box.folder(folder).id
        self._touch(box, msg)
        return msg

    def delete(self, user: str, message_id: str) -> None:
        box = self.mailbox(user)
        self.message(box, message_id)
        del box.messages[message_id]
        box.bump()

    def send(self, user: str, message_id: str) -> None:
        """Sends a draft: to the Outbox while its deferred send time is ahead, else Sent Items."""
        box = self.mailbox(user)
        msg = self.message(box, message_id)
        if not msg.data["isDraft"]:
            # Graph documents no code for sending a non-draft; this EWS-style one is our choice.
            raise GraphError(400, "ErrorInvalidOperation", "Only a draft message can be sent.")
        data = msg.data
        if not (data["toRecipients"] or data["ccRecipients"] or data["bccRecipients"]):
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is required.")
        data["isDraft"] = False
        data["from"] = data.get("from") or box.owner()
        data["sender"] = data.get("sender") or box.owner()
        deferred = msg.extended.get(DEFERRED_SEND_TIME)
        now = self.clock()
        when = parse_time(deferred[1]) if deferred else now
        if when > now:
            msg.deferred_until = when
            msg.folder_id = box.folder("outbox").id
            self._touch(box, msg)
        else:
            self._complete_send(box, msg, now)

    def _complete_send(self, box: Mailbox, msg: Message, at: datetime) -> None:
        msg.deferred_until = None
        msg.folder_id = box.folder("sentitems").id
        msg.data["sentDateTime"] = msg.data["receivedDateTime"] = iso(at)
        self._touch(box, msg)
        recipients = msg.data["toRecipients"] + msg.data["ccRecipients"] + msg.data["bccRecipients"]
        for address in {r["emailAddress"]["address"].lower() for r in recipients}:
            if address in self._mailboxes:
                self._deliver_copy(self._mailboxes[address], msg, at)

    def _deliver_copy(self, box: Mailbox, sent: Message, at: datetime) -> None:
        """A message sent to another stand-in mailbox arrives in its Inbox."""
        sender = sent.data["from"]["emailAddress"]
        custom = [(h["name"], h["value"]) for h in sent.headers]
        self.deliver(
            box.address,
            folder="inbox",
            subject=sent.data["subject"],
            body_html=sent.data["body"]["content"],
            sender=(sender["name"], sender["address"]),
            to=[
                (r["emailAddress"]["name"], r["emailAddress"]["address"])
                for r in sent.data["toRecipients"]
            ],
            cc=[
                (r["emailAddress"]["name"], r["emailAddress"]["address"])
                for r in sent.data["ccRecipients"]
            ],
            internet_message_id=sent.data["internetMessageId"],
            conversation_id=sent.data["conversationId"],
            headers=custom,
            categories=(),
            received=at,
        )

    def release_due(self) -> None:
        """Moves deferred messages whose time has come from the Outbox to Sent Items."""
        now = self.clock()
        for box in self.mailboxes():
            for msg in list(box.messages.values()):
                if msg.deferred_until is not None and msg.deferred_until <= now:
                    self._complete_send(box, msg, msg.deferred_until)

    def find_messages(
        self, box: Mailbox, folder_id: str | None, flt: MessageFilter | None
    ) -> list[Message]:
        """Messages of a folder (or all folders), newest first, matching a filter."""
        found = [
            m
            for m in box.messages.values()
            if (folder_id is None or m.folder_id == folder_id) and _matches(m, flt)
        ]
        return sorted(found, key=lambda m: str(m.data["receivedDateTime"]), reverse=True)

    def message_json(
        self, msg: Message, select: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """The representation Graph returns: the etag annotation first, then the properties;
        internetMessageHeaders and uniqueBody only when $select names them (message docs)."""
        body = {"@odata.etag": f'W/"{msg.data["changeKey"]}"', **copy.deepcopy(msg.data)}
        if select and "internetMessageHeaders" in select:
            body["internetMessageHeaders"] = copy.deepcopy(msg.headers)
        if select and "uniqueBody" in select:
            body["uniqueBody"] = copy.deepcopy(msg.data["body"])
        return project(body, select)

    def full_view(self, msg: Message) -> dict[str, Any]:
        """Everything the stand-in holds on a message, for tests to inspect."""
        view = copy.deepcopy(msg.data)
        view["singleValueExtendedProperties"] = [
            {"id": i, "value": v} for i, v in msg.extended.values()
        ]
        view["internetMessageHeaders"] = copy.deepcopy(msg.headers)
        view["attachments"] = copy.deepcopy(msg.attachments)
        return view

    # -- master categories -----------------------------------------------------------------

    def create_category(self, box: Mailbox, body: Mapping[str, Any]) -> dict[str, str]:
        for name in body:
            if not name.startswith("@") and name not in {"displayName", "color"}:
                raise _unknown_property(name, "outlookCategory")
        display_name = str(body.get("displayName") or "").strip()
        if not display_name:
            raise GraphError(400, "ErrorInvalidParameter", "displayName is required.")
        self._check_unique(box, display_name)
        category = {
            "id": new_guid(),
            "displayName": display_name,
            "color": _color(body.get("color", "none")),
        }
        box.categories[category["id"]] = category
        return dict(category)

    def _check_unique(self, box: Mailbox, display_name: str) -> None:
        if any(c["displayName"].lower() == display_name.lower() for c in box.categories.values()):
            raise GraphError(
                409, DUPLICATE_NAME_CODE, f"A category named '{display_name}' already exists."
            )

    def category(self, box: Mailbox, category_id: str) -> dict[str, str]:
        found = box.categories.get(category_id)
        if found is None:
            raise _not_found()
        return found

    def update_category(
        self, box: Mailbox, category_id: str, patch: Mapping[str, Any]
    ) -> dict[str, str]:
        """Only color is writable; the docs say displayName can't change after creation."""
        category = self.category(box, category_id)
        for name, value in patch.items():
            if name.startswith("@"):
                continue
            if name == "displayName" and value != category["displayName"]:
                raise GraphError(
                    400, "ErrorInvalidPropertySet", "displayName can't be changed once created."
                )
            if name not in {"displayName", "color"}:
                raise _unknown_property(name, "outlookCategory")
        if "color" in patch:
            category["color"] = _color(patch["color"])
        return dict(category)

    def delete_category(self, box: Mailbox, category_id: str) -> None:
        self.category(box, category_id)
        del box.categories[category_id]

    def rename_category(self, user: str, category_id: str, new_name: str) -> None:
        """What a user does in Outlook: items keep the old name in their categories."""
        box = self.mailbox(user)
        category = self.category(box, category_id)
        self._check_unique(box, new_name)
        category["displayName"] = new_name

    # -- events ----------------------------------------------------------------------------

    def add_event(
        self,
        user: str,
        subject: str,
        start: datetime,
        end: datetime,
        attendees: Sequence[Address],
        categories: Iterable[str],
    ) -> Event:
        box = self.mailbox(user)
        now = self.clock()
        event_id = new_item_id()
        data: dict[str, Any] = {
            "id": event_id,
            "createdDateTime": iso(now),
            "lastModifiedDateTime": iso(now),
            "changeKey": "",
            "categories": list(categories),
            "iCalUId": "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper(),
            "subject": subject,
            "bodyPreview": "",
            "body": {"contentType": "html", "content": ""},
            "start": event_time(start),
            "end": event_time(end),
            "isAllDay": False,
            "isCancelled": False,
            "isOrganizer": True,
            "type": "singleInstance",
            "showAs": "busy",
            "location": {"displayName": ""},
            "attendees": [
                {
                    "type": "required",
                    "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                    **recipient(a),
                }
                for a in attendees
            ],
            "organizer": box.owner(),
        }
        event = Event(data, start, end)
        box.events[event_id] = event
        self._touch_event(box, event)
        return event

    def _touch_event(self, box: Mailbox, event: Event) -> None:
        event.version = box.bump()
        event.data["changeKey"] = change_key(event.version)
        event.data["lastModifiedDateTime"] = iso(self.clock())

    def event(self, box: Mailbox, event_id: str) -> Event:
        found = box.events.get(event_id)
        if found is None:
            raise _not_found()
        return found

    def set_event_categories(self, user: str, event_id: str, names: Iterable[str]) -> None:
        box = self.mailbox(user)
        event = self.event(box, event_id)
        event.data["categories"] = list(names)
        self._touch_event(box, event)

    def delete_event(self, user: str, event_id: str) -> None:
        box = self.mailbox(user)
        self.event(box, event_id)
        del box.events[event_id]
        box.bump()

    def event_json(self, event: Event) -> dict[str, Any]:
        return {"@odata.etag": f'W/"{event.data["changeKey"]}"', **copy.deepcopy(event.data)}


def _color(value: Any) -> str:
    color = str(value).strip().lower()
    if color not in CATEGORY_COLORS:
        raise GraphError(400, "ErrorInvalidParameter", f"'{value}' is not a valid category color.")
    return color


def _recipient_in(value: Any) -> dict[str, Any]:
    email = (value or {}).get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(email, dict) or not email.get("address"):
        raise GraphError(400, "ErrorInvalidRecipients", "A recipient needs an email address.")
    address = str(email["address"])
    return {"emailAddress": {"name": str(email.get("name") or address), "address": address}}


def _custom_header(header: Any) -> dict[str, str]:
    """Only custom headers named x-... may be set, and only on creation."""
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


def _file_attachment(item: Any, now: datetime) -> dict[str, Any]:
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


def _matches(msg: Message, flt: MessageFilter | None) -> bool:
    if flt is None:
        return True
    if flt.property_id is not None:
        found = msg.extended.get(prop_key(flt.property_id))
        # The docs: filtering an extended property's value is case-insensitive.
        return found is not None and found[1].lower() == (flt.property_value or "").lower()
    if flt.field not in msg.data:
        raise GraphError(400, "BadRequest", f"Could not find a property named '{flt.field}'.")
    return str(msg.data[flt.field]) == flt.field_value
