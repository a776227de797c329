"""The Graph v1.0 endpoints the stand-in answers, as methods of a parsed call.

Top-level requests and the requests inside a JSON batch both come through `GraphApi.dispatch`,
so a batched request behaves exactly like the same request sent alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from devtools.graph import categories
from devtools.graph.delta import DeltaQuery, DeltaTracker, Token
from devtools.graph.fields import MESSAGE_PROPERTIES
from devtools.graph.mailbox import Mailbox
from devtools.graph.odata import (
    GraphError,
    expanded_property_ids,
    page_size,
    parse_message_filter,
    parse_prefer,
    parse_select,
    parse_time,
    parse_top,
    prop_key,
    query_options,
)
from devtools.graph.store import GraphStore

CHANGE_TYPES = {"created", "updated", "deleted"}


@dataclass(frozen=True)
class Call:
    """One request, top-level or batched, with its path relative to the version root."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # e.g. http://127.0.0.1:8765/v1.0
    raw_query: str = ""

    @property
    def path_with_query(self) -> str:
        return self.path + (f"?{self.raw_query}" if self.raw_query else "")


@dataclass
class Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def normalize_path(raw: str) -> str:
    """A path relative to /v1.0, in the forms Graph treats alike.

    mailFolders('x') is mailFolders/x; microsoft.graph.delta and delta() are delta.
    """
    path = unquote(raw)
    path = re.sub(r"^/(v1\.0|beta)(?=/|$)", "", path)
    path = re.sub(r"\('([^']*)'\)", r"/\1", path)
    path = re.sub(r"/microsoft\.graph\.", "/", path)
    path = re.sub(r"\(\)(?=/|$)", "", path)
    return "/" + path.strip("/")


def make_call(
    method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes, base_url: str
) -> Call:
    return Call(
        method.upper(),
        normalize_path(raw_path),
        query_options(parse_qsl(query, keep_blank_values=True)),
        {k.lower(): v for k, v in headers.items()},
        body,
        base_url,
        query,
    )


def json_body(call: Call) -> dict[str, Any]:
    if not call.body.strip():
        raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
    try:
        parsed = json.loads(call.body)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    if not isinstance(parsed, dict):
        raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
    return parsed


Handler = Callable[[Call, dict[str, str]], Reply]
_USER = r"/users/(?P<user>[^/]+)"


class GraphApi:
    """Routes calls to the store; callers hold the stand-in's lock."""

    def __init__(self, store: GraphStore, tracker: DeltaTracker) -> None:
        self.store = store
        self.tracker = tracker
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/mailfolders", self.list_folders),
            ("GET", "/mailfolders/(?P<folder>[^/]+)", self.get_folder),
            ("GET", "/mailfolders/(?P<folder>[^/]+)/messages", self.list_messages),
            ("GET", "/mailfolders/(?P<folder>[^/]+)/messages/delta", self.message_delta),
            ("GET", "/messages", self.list_messages),
            ("POST", "/messages", self.create_message),
            ("GET", "/messages/(?P<id>[^/]+)", self.get_message),
            ("PATCH", "/messages/(?P<id>[^/]+)", self.update_message),
            ("DELETE", "/messages/(?P<id>[^/]+)", self.delete_message),
            ("POST", "/messages/(?P<id>[^/]+)/send", self.send_message),
            ("POST", "/messages/(?P<id>[^/]+)/move", self.move_message),
            ("GET", "/outlook/mastercategories", self.list_categories),
            ("POST", "/outlook/mastercategories", self.create_category),
            ("GET", "/outlook/mastercategories/(?P<cat>[^/]+)", self.get_category),
            ("PATCH", "/outlook/mastercategories/(?P<cat>[^/]+)", self.update_category),
            ("DELETE", "/outlook/mastercategories/(?P<cat>[^/]+)", self.delete_category),
            ("GET", "/calendarview/delta", self.event_delta),
        ]
        self._routes = [(m, re.compile(_USER + p, re.I), h) for m, p, h in table]

    def dispatch(self, call: Call) -> Reply:
        """The reply to one call; Graph errors become error replies later, not here."""
        if re.match(r"^/me(/|$)", call.path, re.I):
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        allowed = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(call.path)
            if match is None:
                continue
            if method == call.method:
                return handler(call, match.groupdict())
            allowed = True
        if allowed:
            raise GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        segment = call.path.rstrip("/").rsplit("/", 1)[-1]
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    # -- helpers ---------------------------------------------------------------------------

    def _context(self, call: Call, box: Mailbox, suffix: str) -> str:
        return f"{call.base_url}/$metadata#users('{box.address}')/{suffix}"

    def _paged(
        self, call: Call, items: list[dict[str, Any]], context: str, default_top: int = 10
    ) -> Reply:
        top = parse_top(call.query.get("top")) or default_top
        skip_text = call.query.get("skip") or "0"
        if not skip_text.isdigit():
            raise GraphError(400, "BadRequest", f"Invalid value '{skip_text}' for $skip.")
        skip = int(skip_text)
        page = items[skip : skip + top]
        if skip + top >= len(items):
            return Reply(200, {"@odata.context": context, "value": page})
        # The next page repeats the request's own options with $skip moved on.
        pairs = parse_qsl(call.raw_query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if k.lower().lstrip("$") != "skip"]
        link = f"{call.base_url}{call.path}?{urlencode([*kept, ('$skip', str(skip + top))])}"
        return Reply(200, {"@odata.context": context, "@odata.nextLink": link, "value": page})

    # -- mail folders ----------------------------------------------------------------------

    def list_folders(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        folders = [f for f in box.folders.values() if f.parent_id == box.root_id]
        items = [self.store.folder_json(box, f) for f in folders]
        return self._paged(call, items, self._context(call, box, "mailFolders"))

    def get_folder(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        body = self.store.folder_json(box, box.folder(args["folder"]))
        return Reply(
            200, {"@odata.context": self._context(call, box, "mailFolders/$entity"), **body}
        )

    # -- messages --------------------------------------------------------------------------

    def list_messages(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        folder_id = box.folder(args["folder"]).id if "folder" in args else None
        select = parse_select(call.query.get("select"), MESSAGE_PROPERTIES)
        found = self.store.find_messages(
            box, folder_id, parse_message_filter(call.query.get("filter"))
        )
        items = [self.store.message_json(m, select) for m in found]
        return self._paged(call, items, self._context(call, box, "messages"))

    def get_message(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        msg = box.message(args["id"])
        select = parse_select(call.query.get("select"), MESSAGE_PROPERTIES)
        body = {
            "@odata.context": self._context(call, box, "messages/$entity"),
            **self.store.message_json(msg, select),
        }
        wanted = expanded_property_ids(call.query.get("expand"))
        if wanted is not None:
            keys = {prop_key(i) for i in wanted}
            found = [
                {"id": given, "value": value}
                for key, (given, value) in msg.extended.items()
                if not keys or key in keys
            ]
            # A message without the property comes back without the collection at all.
            if found:
                body["singleValueExtendedProperties"] = found
        return Reply(200, body)

    def create_message(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        msg = self.store.create_draft(box.address, json_body(call))
        context = self._context(call, box, "messages/$entity")
        return Reply(201, {"@odata.context": context, **self.store.message_json(msg)})

    def update_message(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        expected = call.headers.get("if-match")
        if expected is not None and expected.strip() != "*":
            current = f'W/"{box.message(args["id"]).data["changeKey"]}"'
            if expected.strip() != current:
                # What Exchange answers when the change key no longer matches the item's.
                raise GraphError(
                    412,
                    "ErrorIrresolvableConflict",
                    "The send or update operation could not be performed because the change "
                    "key passed in the request does not match the current change key for the "
                    "item.",
                )
        msg = self.store.update_message(box.address, args["id"], json_body(call))
        context = self._context(call, box, "messages/$entity")
        return Reply(200, {"@odata.context": context, **self.store.message_json(msg)})

    def delete_message(self, call: Call, args: dict[str, str]) -> Reply:
        self.store.delete(args["user"], args["id"])
        return Reply(204)

    def send_message(self, call: Call, args: dict[str, str]) -> Reply:
        self.store.send(args["user"], args["id"])
        return Reply(202)

    def move_message(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        destination = json_body(call).get("destinationId")
        if not isinstance(destination, str):
            raise GraphError(400, "ErrorInvalidParameter", "destinationId is required.")
        msg = self.store.move(box.address, args["id"], destination)
        context = self._context(call, box, "messages/$entity")
        return Reply(201, {"@odata.context": context, **self.store.message_json(msg)})

    # -- delta -----------------------------------------------------------------------------

    def message_delta(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        folder = box.folder(args["folder"])
        path = f"/users/{box.address}/mailFolders/{folder.id}/messages/delta"

        def initial() -> DeltaQuery:
            change_type = call.query.get("changetype")
            if change_type is not None and change_type not in CHANGE_TYPES:
                raise GraphError(400, "BadRequest", f"Invalid changeType '{change_type}'.")
            return DeltaQuery(
                "message",
                box.address,
                folder.id,
                None,
                parse_select(call.query.get("select"), MESSAGE_PROPERTIES),
                change_type,
                parse_top(call.query.get("top")),
                path,
            )

        return self._delta(call, path, initial, "message")

    def event_delta(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        path = f"/users/{box.address}/calendarView/delta"

        def initial() -> DeltaQuery:
            start, end = call.query.get("startdatetime"), call.query.get("enddatetime")
            if not start or not end:
                raise GraphError(
                    400,
                    "ErrorInvalidParameter",
                    "This request requires a time window specified by the query string "
                    "parameters StartDateTime and EndDateTime.",
                )
            try:
                window = (parse_time(start), parse_time(end))
            except ValueError as exc:
                raise GraphError(400, "ErrorInvalidParameter", "Invalid time window.") from exc
            # The calendar view delta docs: $select is not supported, so it is not kept.
            return DeltaQuery("event", box.address, None, window, None, None, None, path)

        return self._delta(call, path, initial, "event")

    def _delta(self, call: Call, path: str, initial: Callable[[], DeltaQuery], kind: str) -> Reply:
        prefer = parse_prefer(call.headers.get("prefer"))
        skip, delta = call.query.get("skiptoken"), call.query.get("deltatoken")
        token: Token | None = None
        if skip or delta:
            location = f"{call.base_url}{path}"
            token = self.tracker.redeem(str(skip or delta), is_delta=bool(delta), location=location)
            query = token.query
        else:
            query = initial()
        size = page_size(prefer, query.top)
        page = self.tracker.page(query, token, size)
        body: dict[str, Any] = {"@odata.context": f"{call.base_url}/$metadata#Collection({kind})"}
        if page.skip_token:
            body["@odata.nextLink"] = f"{call.base_url}{query.path}?$skiptoken={page.skip_token}"
        else:
            body["@odata.deltaLink"] = f"{call.base_url}{query.path}?$deltatoken={page.delta_token}"
        body["value"] = page.items
        headers = {}
        if applied := prefer.applied(size):
            headers["Preference-Applied"] = applied
        return Reply(200, body, headers)

    # -- master categories -----------------------------------------------------------------

    def list_categories(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        items = [dict(c) for c in box.categories.values()]
        context = self._context(call, box, "outlook/masterCategories")
        return Reply(200, {"@odata.context": context, "value": items})

    def create_category(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        body = categories.create(box, json_body(call))
        context = self._context(call, box, "outlook/masterCategories/$entity")
        return Reply(201, {"@odata.context": context, **body})

    def get_category(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        body = dict(categories.get(box, args["cat"]))
        context = self._context(call, box, "outlook/masterCategories/$entity")
        return Reply(200, {"@odata.context": context, **body})

    def update_category(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        body = categories.update(box, args["cat"], json_body(call))
        context = self._context(call, box, "outlook/masterCategories/$entity")
        return Reply(200, {"@odata.context": context, **body})

    def delete_category(self, call: Call, args: dict[str, str]) -> Reply:
        box = self.store.mailbox(args["user"])
        categories.delete(box, args["cat"])
        return Reply(204)


def user_of(path: str) -> str | None:
    """The mailbox a path addresses, in lower case."""
    match = re.match(_USER, path, re.I)
    return match.group("user").lower() if match else None
