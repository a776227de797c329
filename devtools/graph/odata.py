"""Microsoft Graph wire formats for the stand-in: errors, ids, times, $select, $filter, Prefer.

Pure functions, no I/O. Shapes follow the Graph v1.0 documentation; where the documentation is
silent the choice is named in a comment.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from html import unescape
from typing import Any

# Delta pages hold 10 items unless the client prefers more (docs: message delta).
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000

Address = str | tuple[str, str]  # "addr", "Name <addr>" or (name, addr)

_ITEM_ID = re.compile(r"^AAMk[A-Za-z0-9_-]{16,}=?$")
_EXT_ID_EQ = r"'((?:[^']|'')*)'"


class GraphError(Exception):
    """An error answered in Graph's JSON error shape: {"error": {"code", "message", ...}}."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str, request_id: str, now: datetime) -> dict[str, Any]:
    """The documented error resource, with the innerError Graph adds to every error."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": request_id,
            },
        }
    }


def throttled_body(status: int, request_id: str, now: datetime) -> dict[str, Any]:
    """An injected fault's body: the throttling guidance's sample 429 body; 503 the
    documented serviceNotAvailable; 403 Exchange's ErrorAccessDenied (the app may not read
    the mailbox: consent missing or an application access policy leaving it out)."""
    if status == 429:
        body = error_body("TooManyRequests", "Please retry again later.", request_id, now)
        body["error"]["innerError"].update(
            {"code": "429", "message": "Please retry after", "status": "429"}
        )
        return body
    if status == 503:
        return error_body(
            "serviceNotAvailable", "The service is temporarily unavailable.", request_id, now
        )
    if status == 403:
        return error_body(
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
            request_id,
            now,
        )
    return error_body("generalException", "An unspecified error has occurred.", request_id, now)


def iso(moment: datetime) -> str:
    """Graph's DateTimeOffset form for messages: whole seconds, UTC, 'Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_time(moment: datetime) -> dict[str, str]:
    """An event's dateTimeTimeZone, in UTC as the calendarView delta examples show."""
    return {
        "dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
        "timeZone": "UTC",
    }


def parse_time(text: str) -> datetime:
    """An ISO 8601 time from a query string or an extended property; naive means UTC."""
    moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_item_id() -> str:
    """An opaque id shaped like an Exchange immutable id (url-safe, ends in '=')."""
    return "AAMk" + secrets.token_urlsafe(30) + "="


def new_guid() -> str:
    """A GUID, as Graph gives master categories and mailboxes."""
    return str(uuid.uuid4())


def is_item_id(value: str) -> bool:
    """Whether a string has the shape of the ids this stand-in hands out."""
    return bool(_ITEM_ID.match(value))


def change_key(version: int) -> str:
    """A changeKey that changes with every version of an item."""
    return base64.b64encode(f"CQAAABYAAAA{version:012d}".encode()).decode()


def prop_key(property_id: str) -> str:
    """A comparable form of an extended property id.

    Types, tags and GUIDs compare case-insensitively; the Name part of a named property is
    case-sensitive, as the singleValueLegacyExtendedProperty docs say.
    """
    parts = property_id.split()
    if len(parts) >= 4 and parts[2].lower() == "name":
        return " ".join(p.lower() for p in parts[:3]) + " " + " ".join(parts[3:])
    return " ".join(p.lower() for p in parts)


def recipient(value: Address) -> dict[str, Any]:
    """A recipient from "addr", "Name <addr>" or (name, addr)."""
    if isinstance(value, tuple):
        name, address = value
    else:
        name, address = parseaddr(value)
        address = address or value
    return {"emailAddress": {"name": name or address, "address": address}}


def body_preview(content: str) -> str:
    """The first 255 characters of the body text, as bodyPreview holds."""
    text = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", content, flags=re.S | re.I)
    text = unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())[:255]


def query_options(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query options keyed in lower case without '$': Graph accepts both spellings."""
    return {key.lower().lstrip("$"): value for key, value in pairs}


def parse_select(value: str | None, known: Iterable[str]) -> tuple[str, ...] | None:
    """The $select list in canonical spelling; an unknown property is a 400 as in Graph."""
    if value is None or not value.strip():
        return None
    canonical = {name.lower(): name for name in known}
    chosen: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if not name:
            continue
        if name.lower() not in canonical:
            raise GraphError(
                400, "BadRequest", f"Could not find a property named '{name}' on the resource."
            )
        chosen.append(canonical[name.lower()])
    return tuple(chosen)


def project(item: Mapping[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    """Only the selected properties (plus id and annotations) when $select is given."""
    if select is None:
        return dict(item)
    keep = {"id", *select}
    return {k: v for k, v in item.items() if k in keep or k.startswith("@odata.")}


@dataclass(frozen=True)
class Prefer:
    """The preferences of a Prefer header that the stand-in honours."""

    max_page_size: int | None = None
    immutable_id: bool = False

    def applied(self, page_size: int | None = None) -> str | None:
        """The Preference-Applied value for what was honoured, or None."""
        parts = []
        if page_size is not None and self.max_page_size is not None:
            parts.append(f"odata.maxpagesize={page_size}")
        if self.immutable_id:
            parts.append('IdType="ImmutableId"')
        return ", ".join(parts) or None


def parse_prefer(header: str | None) -> Prefer:
    """Reads odata.maxpagesize and IdType from a Prefer header (comma-separated preferences)."""
    if not header:
        return Prefer()
    size: int | None = None
    immutable = False
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "odata.maxpagesize" and value.strip().isdigit():
            size = max(1, int(value.strip()))
        elif name.strip().lower() == "idtype" and value.strip().strip('"') == "ImmutableId":
            immutable = True
    return Prefer(size, immutable)


def page_size(prefer: Prefer, top: int | None) -> int:
    """Prefer's odata.maxpagesize wins, then $top, then Graph's default of 10; at most 1000."""
    wanted = prefer.max_page_size or top or DEFAULT_PAGE_SIZE
    return min(wanted, MAX_PAGE_SIZE)


def parse_top(value: str | None) -> int | None:
    """A positive $top, or None; anything else is a 400."""
    if value is None:
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise GraphError(400, "BadRequest", f"Invalid value '{value}' for $top.")
    return int(value)


def unquote_literal(text: str) -> str:
    """An OData string literal's content: doubled quotes stand for one."""
    return text.replace("''", "'")


def expanded_property_ids(expand: str | None) -> list[str] | None:
    """The ids named in $expand=singleValueExtendedProperties($filter=id eq '...' [or ...]).

    None when the expand is absent; an empty list means "all of them".
    """
    if not expand:
        return None
    match = re.fullmatch(
        r"\s*singleValueExtendedProperties\s*(?:\(\s*\$filter\s*=\s*(.*)\))?\s*",
        expand,
        re.I | re.S,
    )
    if match is None:
        raise GraphError(400, "BadRequest", f"Expanding '{expand}' is not supported here.")
    clause = match.group(1) or ""
    return [unquote_literal(v) for v in re.findall(r"id\s+eq\s+" + _EXT_ID_EQ, clause, re.I)]


@dataclass(frozen=True)
class MessageFilter:
    """One supported $filter on messages: an extended property's value, or a property's."""

    property_id: str | None = None
    property_value: str | None = None
    field: str | None = None
    field_value: str | None = None


def parse_message_filter(text: str | None) -> MessageFilter | None:
    """Parses the documented extended-property filter, or `<property> eq '<string>'`.

    singleValueExtendedProperties/Any(ep: ep/id eq '{id}' and ep/value eq '{value}') is the
    form the singleValueLegacyExtendedProperty docs give. Anything else is a 400 here.
    """
    if text is None or not text.strip():
        return None
    any_form = re.fullmatch(
        r"\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+"
        + _EXT_ID_EQ
        + r"\s+and\s+\1/value\s+eq\s+"
        + _EXT_ID_EQ
        + r"\s*\)\s*",
        text,
        re.I | re.S,
    )
    if any_form:
        return MessageFilter(
            property_id=unquote_literal(any_form.group(2)),
            property_value=unquote_literal(any_form.group(3)),
        )
    simple = re.fullmatch(r"\s*(\w+)\s+eq\s+" + _EXT_ID_EQ + r"\s*", text, re.S)
    if simple:
        return MessageFilter(field=simple.group(1), field_value=unquote_literal(simple.group(2)))
    raise GraphError(400, "BadRequest", f"Invalid filter clause: {text}")
