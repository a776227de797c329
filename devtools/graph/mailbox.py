"""What one mailbox holds: folders, messages, master categories and events.

Every change bumps the mailbox's sequence number and stamps the changed item with it; delta
queries compare those numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devtools.graph.odata import GraphError, is_item_id, recipient

WELL_KNOWN_FOLDERS = {
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "drafts": "Drafts",
    "outbox": "Outbox",
    "deleteditems": "Deleted Items",
    "archive": "Archive",
}


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def unknown_property(name: str, type_name: str) -> GraphError:
    """OData's answer to a property the type does not have."""
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
    extended: dict[str, tuple[str, str]] = field(default_factory=dict)  # key: (id, value)
    headers: list[dict[str, str]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    deferred_until: datetime | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])


@dataclass
class Event:
    """A single-instance event in the primary calendar."""

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
        """A folder by id or by (case-insensitive) wellKnownName."""
        if id_or_name in self.folders:
            return self.folders[id_or_name]
        for folder in self.folders.values():
            if folder.well_known == id_or_name.lower():
                return folder
        if is_item_id(id_or_name) or id_or_name.isalpha():
            raise not_found()
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")

    def message(self, message_id: str) -> Message:
        found = self.messages.get(message_id)
        if found is None:
            if not is_item_id(message_id):
                raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
            raise not_found()
        return found
