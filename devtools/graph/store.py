"""Mailboxes by address and the message operations of the Graph stand-in.

Callers hold the stand-in's lock around every call. Ids never change, as with
`Prefer: IdType="ImmutableId"`: a moved or sent message keeps its id.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from devtools.graph import categories
from devtools.graph.fields import apply_fields, writable_fields
from devtools.graph.mailbox import WELL_KNOWN_FOLDERS, Folder, Mailbox, Message
from devtools.graph.odata import (
    Address,
    GraphError,
    MessageFilter,
    body_preview,
    change_key,
    iso,
    new_guid,
    new_item_id,
    parse_time,
    project,
    prop_key,
    recipient,
)

# PidTagDeferredSendTime: a draft sent with this in the future waits in the Outbox.
DEFERRED_SEND_TIME = prop_key("SystemTime 0x3FEF")


class GraphStore:
    """Every mailbox of the stand-in, reachable by userPrincipalName or id."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._mailboxes: dict[str, Mailbox] = {}

    # -- mailboxes and folders -------------------------------------------------------------

    def add_mailbox(
        self, address: str, display_name: str | None = None, *, default_categories: bool = True
    ) -> Mailbox:
        """A mailbox with the well-known folders (idempotent per address)."""
        key = address.strip().lower()
        if key in self._mailboxes:
            return self._mailboxes[key]
        name = display_name or key.split("@")[0].replace(".", " ").title()
        box = Mailbox(key, name, new_guid(), new_item_id())
        for well_known, shown in WELL_KNOWN_FOLDERS.items():
            folder = Folder(new_item_id(), shown, box.root_id, well_known)
            box.folders[folder.id] = folder
        if default_categories:
            for category_name, color in categories.DEFAULTS:
                categories.create(box, {"displayName": category_name, "color": color})
        self._mailboxes[key] = self._mailboxes[box.object_id] = box
        return box

    def mailbox(self, user: str) -> Mailbox:
        """A mailbox by userPrincipalName (case-insensitive) or id."""
        box = self._mailboxes.get(user.strip().lower())
        if box is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        return box

    def mailboxes(self) -> list[Mailbox]:
        return list({b.address: b for b in self._mailboxes.values()}.values())

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

    def _touch(self, box: Mailbox, msg: Message) -> None:
        msg.version = box.bump()
        msg.data["changeKey"] = change_key(msg.version)
        msg.data["lastModifiedDateTime"] = iso(self.clock())
        msg.data["parentFolderId"] = msg.folder_id

    def _new_message(self, box: Mailbox, folder: Folder, when: datetime) -> Message:
        item_id = new_item_id()
        data: dict[str, Any] = {
            "id": item_id,
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
            "webLink": f"https://outlook.office365.com/owa/?ItemID={item_id}"
            "&exvsurl=1&viewmodel=ReadMessageItem",
            "inferenceClassification": "focused",
            "body": {"contentType": "html", "content": ""},
            "toRecipients": [],
            "ccRecipients": [],
            "bccRecipients": [],
            "replyTo": [],
            "flag": {"flagStatus": "notFlagged"},
        }
        msg = Message(data, folder.id)
        box.messages[item_id] = msg
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
        data["internetMessageId"] = internet_message_id or data["internetMessageId"]
        data["conversationId"] = conversation_id or data["conversationId"]
        sender_address = data["from"]["emailAddress"]
        lines = [
            ("From", f"{sender_address['name']} <{sender_address['address']}>"),
            ("To", ", ".join(r["emailAddress"]["address"] for r in data["toRecipients"])),
            ("Cc", ", ".join(r["emailAddress"]["address"] for r in data["ccRecipients"])),
            ("Subject", subject),
            ("Date", when.strftime("%a, %d %b %Y %H:%M:%S %z")),
            ("Message-ID", data["internetMessageId"]),
            *headers,
        ]
        msg.headers = [{"name": n, "value": v} for n, v in lines if v]
        self._touch(box, msg)
        return msg

    def create_draft(self, user: str, body: Mapping[str, Any]) -> Message:
        """POST /users/{u}/messages: a draft in Drafts."""
        box = self.mailbox(user)
        fields = writable_fields(body, creating=True, is_draft=True)
        msg = self._new_message(box, box.folder("drafts"), self.clock())
        msg.data["isDraft"] = msg.data["isRead"] = True
        apply_fields(msg, fields, self.clock())
        self._touch(box, msg)
        return msg

    def update_message(self, user: str, message_id: str, patch: Mapping[str, Any]) -> Message:
        box = self.mailbox(user)
        msg = box.message(message_id)
        fields = writable_fields(patch, creating=False, is_draft=bool(msg.data["isDraft"]))
        apply_fields(msg, fields, self.clock())
        self._touch(box, msg)
        return msg

    def set_categories(self, user: str, message_id: str, names: Iterable[str]) -> None:
        box = self.mailbox(user)
        msg = box.message(message_id)
        msg.data["categories"] = list(names)
        self._touch(box, msg)

    def drop_property(self, user: str, message_id: str, name: str) -> None:
        box = self.mailbox(user)
        msg = box.message(message_id)
        msg.data.pop(name, None)
        self._touch(box, msg)

    def move(self, user: str, message_id: str, folder: str) -> Message:
        box = self.mailbox(user)
        msg = box.message(message_id)
        msg.folder_id = box.folder(folder).id
        self._touch(box, msg)
        return msg

    def delete(self, user: str, message_id: str) -> None:
        box = self.mailbox(user)
        box.message(message_id)
        del box.messages[message_id]
        box.bump()

    def send(self, user: str, message_id: str) -> None:
        """Sends a draft: to the Outbox while its deferred send time is ahead, else Sent Items."""
        box = self.mailbox(user)
        msg = box.message(message_id)
        data = msg.data
        if not data["isDraft"]:
            # Graph documents no code for sending a non-draft; this EWS-style one is our choice.
            raise GraphError(400, "ErrorInvalidOperation", "Only a draft message can be sent.")
        if not (data["toRecipients"] or data["ccRecipients"] or data["bccRecipients"]):
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient is required.")
        data["isDraft"] = False
        data["from"] = data.get("from") or box.owner()
        data["sender"] = data.get("sender") or box.owner()
        deferred = msg.extended.get(DEFERRED_SEND_TIME)
        now = self.clock()
        try:
            when = parse_time(deferred[1]) if deferred else now
        except ValueError as exc:
            raise GraphError(400, "ErrorInvalidProperty", "Invalid deferred send time.") from exc
        if when > now:
            msg.deferred_until = when
            msg.folder_id = box.folder("outbox").id
            self._touch(box, msg)
        else:
            self._complete_send(box, msg, now)

    def release_due(self) -> None:
        """Deferred messages whose time has come leave the Outbox for Sent Items."""
        now = self.clock()
        for box in self.mailboxes():
            for msg in list(box.messages.values()):
                if msg.deferred_until is not None and msg.deferred_until <= now:
                    self._complete_send(box, msg, msg.deferred_until)

    def _complete_send(self, box: Mailbox, msg: Message, at: datetime) -> None:
        msg.deferred_until = None
        msg.folder_id = box.folder("sentitems").id
        msg.data["sentDateTime"] = msg.data["receivedDateTime"] = iso(at)
        self._touch(box, msg)
        recipients = msg.data["toRecipients"] + msg.data["ccRecipients"] + msg.data["bccRecipients"]
        for address in sorted({r["emailAddress"]["address"].lower() for r in recipients}):
            if address in self._mailboxes:
                self._deliver_copy(self._mailboxes[address], msg, at)

    def _deliver_copy(self, box: Mailbox, sent: Message, at: datetime) -> None:
        """Mail sent to another stand-in mailbox arrives in its Inbox (Bcc stays hidden)."""

        def pair(r: dict[str, Any]) -> tuple[str, str]:
            return r["emailAddress"]["name"], r["emailAddress"]["address"]

        self.deliver(
            box.address,
            folder="inbox",
            subject=sent.data["subject"],
            body_html=sent.data["body"]["content"],
            sender=pair(sent.data["from"]),
            to=[pair(r) for r in sent.data["toRecipients"]],
            cc=[pair(r) for r in sent.data["ccRecipients"]],
            internet_message_id=sent.data["internetMessageId"],
            conversation_id=sent.data["conversationId"],
            headers=[(h["name"], h["value"]) for h in sent.headers],
            categories=(),
            received=at,
        )

    def find_messages(
        self, box: Mailbox, folder_id: str | None, flt: MessageFilter | None
    ) -> list[Message]:
        """Messages of a folder (or of every folder), newest first, matching a filter."""
        found = [
            m
            for m in box.messages.values()
            if (folder_id is None or m.folder_id == folder_id) and _matches(m, flt)
        ]
        return sorted(found, key=lambda m: str(m.data["receivedDateTime"]), reverse=True)

    def message_json(self, msg: Message, select: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Graph's representation: the etag annotation, then the properties; headers and
        uniqueBody only when $select names them (message resource docs)."""
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
