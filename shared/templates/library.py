"""The organisation's email templates: stored, listed with how each performs, and applied
at compose.

Templates are the organisation's, shared by its sellers (the creator is recorded by id, their
address beside it for display, and only they or an admin may change one). A template's HTML
can be up to 200 kB, more than one table column holds, so it is stored in chunks on the
template's row: reading a template is one call.

Per-template counts are kept in the `templatestats` table, one partition per template: a
marker row per message and event (`sent-{message}`, `opened-{message}`, `replied-{message}`)
and a few counter rows (`counts-00`...). A mark creates the marker and bumps one counter in
one transaction, so a repeated hook counts nothing twice, and the list reads the counter rows
(one short query per template) however many messages were sent. The count is spread over
shards because a single row, bumped under an ETag by every concurrent send, starves writers.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Annotated, Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableErrorCode, TableTransactionError, UpdateMode
from pydantic import BaseModel, ConfigDict, Field

from shared.core.auth import ADMIN_ROLE, Seller
from shared.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.core.services import Services
from shared.core.storage import Store, update_if_unchanged
from shared.core.text import BodyText, HeaderText
from shared.crm import records
from shared.templates import rendering as templates
from shared.templates.statistics import (
    TemplateCounts,
    TemplateStats,
    sort_templates,
    template_stats,
)

Marker = Literal["sent", "opened", "replied"]
MARKERS: tuple[str, ...] = ("sent", "opened", "replied")
_COUNTS = "counts-"  # counter rows sort before every marker row, in a range of their own
_SHARDS = 16
_PARTITION = "org"
_ID = re.compile(r"[0-9a-f]{16}")
# A table column holds 64 KiB of UTF-16: 16,000 characters fit even if every one is a pair.
_CHUNK_CHARS = 16_000
_LIST_COLUMNS = ["RowKey", "name", "subject", "created_by", "created_at", "updated_at"]
_MARK_TRIES = 50  # each retry picks another shard after a random pause
_RECORD_ORDER = {"contact": 0, "lead": 1}


class TemplateIn(BaseModel):
    """POST /api/templates. Sizes and syntax are checked by `templates.validate`."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[HeaderText, Field(min_length=1, max_length=200)]
    subject: HeaderText = ""
    html: Annotated[BodyText, Field(min_length=1)]


class TemplatePatch(BaseModel):
    """PATCH /api/templates/{id}: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[HeaderText, Field(min_length=1, max_length=200)] | None = None
    subject: HeaderText | None = None
    html: Annotated[BodyText, Field(min_length=1)] | None = None


class PreviewIn(BaseModel):
    """POST /api/templates/{id}/preview: the record to render for, and the subject or HTML
    being edited, if not yet saved (left out: the template's own)."""

    model_config = ConfigDict(extra="forbid")

    record_type: records.RecordType
    record_id: Annotated[str, Field(min_length=1, max_length=64)]
    subject: HeaderText | None = None
    html: Annotated[BodyText, Field(min_length=1)] | None = None


class NewPreviewIn(PreviewIn):
    """POST /api/templates/preview: a template not saved yet, rendered for a record."""

    subject: HeaderText = ""
    html: Annotated[BodyText, Field(min_length=1)]


def _html_columns(html: str) -> dict[str, Any]:
    chunks = [html[i : i + _CHUNK_CHARS] for i in range(0, len(html), _CHUNK_CHARS)]
    return {"html_chunks": len(chunks), **{f"html_{i}": c for i, c in enumerate(chunks)}}


def _html_of(row: Any) -> str:
    return "".join(row[f"html_{i}"] for i in range(row["html_chunks"]))


def _summary(row: Any, stats: TemplateStats) -> dict[str, Any]:
    figures = stats.to_json()
    del figures["template_id"]
    return {
        "id": row["RowKey"],
        "name": row["name"],
        "subject": row["subject"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        **figures,
    }


async def _load(services: Services, template_id: str) -> Any:
    """The template's row (HTML included); NotFound if it does not exist or was deleted."""
    if not _ID.fullmatch(template_id):
        raise NotFound("template")
    try:
        row = await services.store.templates.get_entity(_PARTITION, template_id)
    except ResourceNotFoundError:
        raise NotFound("template") from None
    if row.get("archived"):
        raise NotFound("template")
    return row


async def _read_counts(store: Store, template_id: str) -> TemplateCounts:
    totals = dict.fromkeys(MARKERS, 0)
    async for row in store.template_stats.query_entities(
        "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
        parameters={"pk": template_id, "low": _COUNTS, "high": _COUNTS[:-1] + "."},
        select=list(MARKERS),
    ):
        for what in MARKERS:
            totals[what] += int(row.get(what) or 0)
    return TemplateCounts(template_id, totals["sent"], totals["opened"], totals["replied"])


async def _with_stats(services: Services) -> list[dict[str, Any]]:
    """Every live template with its stats: one query, then one query per template for its
    counter rows (in parallel), whatever the number of messages."""
    rows = [
        row
        async for row in services.store.templates.query_entities(
            "PartitionKey eq @pk and archived eq false",
            parameters={"pk": _PARTITION},
            select=_LIST_COLUMNS,
        )
    ]
    counts = await asyncio.gather(*(_read_counts(services.store, r["RowKey"]) for r in rows))
    # The recommendation compares templates, so it is computed over all of them at once.
    return [_summary(r, s) for r, s in zip(rows, template_stats(counts), strict=True)]


async def create(services: Services, seller: Seller, body: TemplateIn) -> dict[str, Any]:
    """A new template, refused (naming `subject` or `html`) if it would not render."""
    templates.validate(body.subject, body.html)
    now = services.clock().isoformat()
    row = {
        "PartitionKey": _PARTITION,
        "RowKey": secrets.token_hex(8),
        "name": body.name,
        "subject": body.subject,
        "created_by": seller.email,
        "created_by_id": seller.key,
        "created_at": now,
        "updated_at": now,
        "archived": False,
        **_html_columns(body.html),
    }
    await services.store.templates.create_entity(row)
    (stats,) = template_stats([TemplateCounts(row["RowKey"], 0, 0, 0)])
    return {**_summary(row, stats), "html": body.html}


async def get(services: Services, template_id: str) -> dict[str, Any]:
    """One template with its HTML and its stats (recommended among all templates)."""
    row = await _load(services, template_id)
    summary = next((s for s in await _with_stats(services) if s["id"] == template_id), None)
    if summary is None:  # deleted between the two reads
        raise NotFound("template")
    return {**summary, "html": _html_of(row)}


def _check_owner(seller: Seller, row: Any) -> None:
    if row.get("created_by_id") != seller.key and ADMIN_ROLE not in seller.roles:
        raise Forbidden("only the template's creator or an admin can change it")


async def _save(services: Services, row: Any) -> None:
    """Write the whole row back (stale HTML chunks go), unless someone changed it meanwhile."""
    try:
        await update_if_unchanged(
            services.store.templates, dict(row), row.metadata["etag"], replace=True
        )
    except ResourceModifiedError:
        raise Conflict("the template changed meanwhile; read it again") from None


async def update(
    services: Services, seller: Seller, template_id: str, patch: TemplatePatch
) -> dict[str, Any]:
    """Change a template's name, subject or HTML; messages already sent keep their text."""
    row = await _load(services, template_id)
    _check_owner(seller, row)
    subject = row["subject"] if patch.subject is None else patch.subject
    html = _html_of(row) if patch.html is None else patch.html
    templates.validate(subject, html)
    for key in [k for k in row if k.startswith("html_")]:
        del row[key]
    row.update(subject=subject, updated_at=services.clock().isoformat(), **_html_columns(html))
    if patch.name is not None:
        row["name"] = patch.name
    await _save(services, row)
    return await get(services, template_id)


async def delete(services: Services, seller: Seller, template_id: str) -> None:
    """Archive a template: it leaves the list and cannot be used any more, while the messages
    sent with it still name a template that exists."""
    row = await _load(services, template_id)
    _check_owner(seller, row)
    row.update(archived=True, updated_at=services.clock().isoformat())
    await _save(services, row)


async def list_templates(services: Services, *, sort: str, order: str) -> list[dict[str, Any]]:
    """Every template with its sent count, open and reply rates and `recommended`, sorted."""
    return sort_templates(await _with_stats(services), sort, order)


def _recipient_fields(address: str, found: list[dict[str, Any]]) -> dict[str, str]:
    """Template fields from the recipient's records: names from a contact (else a lead),
    the company from an account with the same address."""
    people = sorted(
        (r for r in found if r["type"] in _RECORD_ORDER), key=lambda r: _RECORD_ORDER[r["type"]]
    )
    account = next((r for r in found if r["type"] == "account"), None)
    fields = {"email": address, "company": account["name"] if account else ""}
    if people:
        name = people[0]["name"].strip()
        first, _, last = name.partition(" ")
        fields.update(full_name=name, first_name=first, last_name=last.strip())
    return fields


async def render_for(
    services: Services, seller: Seller, template_id: str, address: str
) -> templates.Rendered:
    """A template's subject and HTML rendered for one recipient and the seller; InvalidInput
    naming `template_id` if there is no such template or it will not render within the body
    size limit."""
    try:
        row = await _load(services, template_id)
    except NotFound:
        raise InvalidInput("template_id", "no such template") from None
    address = address.lower()
    recipient = _recipient_fields(address, await records.by_address(services, address))
    try:
        rendered = templates.render(
            row["subject"],
            _html_of(row),
            sender={"email": seller.email},
            recipient=recipient,
            max_html_bytes=services.settings.max_html_bytes,
        )
    except InvalidInput as exc:
        raise InvalidInput(
            "template_id", f"its {exc.field} {exc.message}", too_large=exc.too_large
        ) from None
    return rendered


async def preview(
    services: Services, seller: Seller, template_id: str | None, body: PreviewIn
) -> dict[str, Any]:
    """A template (a saved one, with the edits in `body`, or a new one) rendered for a chosen
    record as compose would render it for mail to the record's first address: the names from
    the record itself (a contact or lead), the company from the record (an account) or an
    account with that address. InvalidInput naming `record_id` for no such record, `subject`
    or `html` for a template that will not render."""
    subject, html = body.subject, body.html
    if template_id is not None:
        row = await _load(services, template_id)
        subject = row["subject"] if subject is None else subject
        html = _html_of(row) if html is None else html
    if html is None:
        raise InvalidInput("html", "is required for a template not saved yet")
    try:
        record = await records.get(services, body.record_type, body.record_id)
    except NotFound:
        raise InvalidInput("record_id", f"no such {body.record_type}") from None
    address = record["emails"][0]
    others = [r for r in await records.by_address(services, address) if r["id"] != record["id"]]
    recipient = _recipient_fields(address, [record, *others])
    if record["type"] == "account":
        recipient["company"] = record["name"]
    elif record["type"] in _RECORD_ORDER:  # the chosen person's names, not another record's
        recipient.update(_recipient_fields(address, [record]))
        recipient["company"] = _recipient_fields(address, others)["company"]
    rendered = templates.render(
        subject or "",
        html,
        sender={"email": seller.email},
        recipient=recipient,
        max_html_bytes=services.settings.max_html_bytes,
    )
    return {
        "subject": rendered.subject,
        "html": rendered.html,
        "record": {"type": record["type"], "id": record["id"]},
        "to": address,
    }


def _markable(template_id: str, what: str) -> bool:
    """Whether a message of this template can be marked (ValueError for a bad marker)."""
    if what not in MARKERS:
        raise ValueError(f"unknown marker {what!r}")
    return bool(template_id)


def _marker_keys(template_id: str, message_id: str, what: str) -> dict[str, str]:
    return {"PartitionKey": template_id, "RowKey": f"{what}-{message_id}"}


async def _pause(attempt: int) -> None:
    """Before a retry, a random pause that grows with the attempts (none before the first)."""
    if attempt:
        await asyncio.sleep(secrets.randbelow(10 * min(attempt, 10)) / 1000)


async def mark(store: Store, template_id: str, message_id: str, what: Marker) -> bool:
    """Count a message once as sent, opened or replied for its template; True if this call
    counted it. A no-op for a message without a template (""), so hooks can pass the
    message's column as it is. Takes the Store, since the fold cycle has nothing more."""
    if not _markable(template_id, what):
        return False
    table = store.template_stats
    marker = ("create", _marker_keys(template_id, message_id, what))
    for attempt in range(_MARK_TRIES):
        await _pause(attempt)
        keys = {"PartitionKey": template_id, "RowKey": f"{_COUNTS}{secrets.randbelow(_SHARDS):02d}"}
        counter: tuple[Any, ...]
        try:
            row = await table.get_entity(keys["PartitionKey"], keys["RowKey"])
            counter = (
                "update",
                {**keys, what: int(row.get(what) or 0) + 1},
                {
                    "mode": UpdateMode.MERGE,
                    "etag": row.metadata["etag"],
                    "match_condition": MatchConditions.IfNotModified,
                },
            )
        except ResourceNotFoundError:
            first = {**dict.fromkeys(MARKERS, 0), what: 1}
            counter = ("create", {**keys, **first})
        try:
            await table.submit_transaction([marker, counter])
            return True
        except TableTransactionError as exc:
            code = getattr(exc, "error_code", None)  # set by the SDK, not declared
            if exc.index == 0 and code == TableErrorCode.ENTITY_ALREADY_EXISTS:
                return False  # counted before: the marker and its count went in together
            if exc.index == 1 and code in (
                TableErrorCode.ENTITY_ALREADY_EXISTS,
                TableErrorCode.UPDATE_CONDITION_NOT_SATISFIED,
            ):
                continue  # another mark moved that counter first: try again, maybe elsewhere
            raise
    raise RuntimeError("template counts kept changing while marking a message")


async def unmark(store: Store, template_id: str, message_id: str, what: Marker) -> bool:
    """Take back a message's mark (a later fold judged its only opens a scanner's); True if
    this call took it back. The marker and one counter shard's decrement go in together, so
    the sum over the shards stays the number of markers."""
    if not _markable(template_id, what):
        return False
    table = store.template_stats
    marker = ("delete", _marker_keys(template_id, message_id, what))
    for attempt in range(_MARK_TRIES):
        await _pause(attempt)
        shards = [
            row
            async for row in table.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                parameters={"pk": template_id, "lo": _COUNTS, "hi": f"{_COUNTS}~"},
            )
            if int(row.get(what) or 0) > 0
        ]
        if not shards:
            return False  # no count to take back: it was never marked
        row = shards[secrets.randbelow(len(shards))]
        counter = (
            "update",
            {"PartitionKey": template_id, "RowKey": row["RowKey"], what: int(row[what]) - 1},
            {
                "mode": UpdateMode.MERGE,
                "etag": row.metadata["etag"],
                "match_condition": MatchConditions.IfNotModified,
            },
        )
        try:
            await table.submit_transaction([marker, counter])
            return True
        except TableTransactionError as exc:
            code = getattr(exc, "error_code", None)  # set by the SDK, not declared
            if exc.index == 0 and code in (
                TableErrorCode.RESOURCE_NOT_FOUND,
                TableErrorCode.ENTITY_NOT_FOUND,
            ):
                return False  # not marked (or taken back already)
            if exc.index == 1 and code == TableErrorCode.UPDATE_CONDITION_NOT_SATISFIED:
                continue  # another mark moved that counter first: try again
            raise
    raise RuntimeError("template counts kept changing while unmarking a message")
