"""Contacts, leads and accounts: the CRM records a followed message is about, with their
e-mail addresses, postal address and Follow Email preference (Allow by default). Records
are the organisation's, shared by its sellers, and found again by any of their addresses.

Who may change what: any seller may create a record and change its name, postal address and
addresses, and set Follow Email to Do Not Allow. Undoing an opt-out needs the admin role
(`Engagement.Admin`): changing Follow Email from Do Not Allow to Allow, or removing an
address from a record that is Do Not Allow (that address would be followed again). Every
change to Follow Email and to the addresses, creation included, is kept in the record's
history (who by tenant and object id, their address for display, when, old, new): rows of
the record's own partition, `{record id}-h-{time-ordered id}-{n}`, written in one transaction
with the change itself, so no change is ever made without its entry."""

from __future__ import annotations

import contextlib
import json
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableErrorCode, TableTransactionError, UpdateMode
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.core.auth import ADMIN_ROLE, Seller
from shared.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from shared.core.ids import index_key, new_event_id
from shared.core.services import Services
from shared.crm import search

RecordType = Literal["contact", "lead", "account"]
RECORD_TYPES: tuple[str, ...] = ("contact", "lead", "account")
FollowEmail = Literal["allow", "do_not_allow"]
_HISTORY = "-h-"  # history rows: "{record id}-h-{event id}", in the record's partition
_TRIES = 5  # attempts at a change while others change the same record


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city: Annotated[str, Field(max_length=100)] | None = None
    state: Annotated[str, Field(max_length=100)] | None = None
    country: Annotated[str, Field(max_length=100)] | None = None
    time_zone: Annotated[str, Field(max_length=64)] | None = None


class RecordIn(BaseModel):
    """POST /api/records/{type} and PATCH (every field optional there)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    emails: list[EmailStr] = Field(min_length=1, max_length=10)
    address: Address | None = None
    follow_email: FollowEmail = "allow"


class RecordPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    emails: list[EmailStr] | None = Field(default=None, min_length=1, max_length=10)
    address: Address | None = None
    follow_email: FollowEmail | None = None


def _check_type(record_type: str) -> None:
    if record_type not in RECORD_TYPES:
        raise InvalidInput("type", f"must be one of {', '.join(RECORD_TYPES)}")


def _view(row: Any, caller: Seller | None = None) -> dict[str, Any]:
    view = {
        "type": row["PartitionKey"],
        "id": row["RowKey"],
        "name": row["name"],
        "emails": json.loads(row["emails"]),
        "address": json.loads(row["address"]) if row.get("address") else None,
        "follow_email": row["follow_email"],
        "updated_at": row["updated_at"],
    }
    if caller is not None:
        view.update(permissions(caller, row["follow_email"]))
    return view


def permissions(caller: Seller, follow_email: str) -> dict[str, Any]:
    """What the caller may change of a record's consent, as check_consent decides it: an
    opt-out (Do Not Allow) is undone only by an admin, so its switch and the removal of its
    addresses are theirs alone; Allow may be switched off by anyone. Pure."""
    opted_out = follow_email == "do_not_allow"
    allowed = not opted_out or ADMIN_ROLE in caller.roles
    return {
        "can_change_follow_email": allowed,
        "can_remove_emails": allowed,
        "follow_email_changed_by": "admin" if opted_out else "seller",
    }


def _address_partition(email: str) -> str:
    return f"addr-{index_key(email.strip().lower())}"


async def _index(services: Services, record_type: str, record_id: str, emails: list[str]) -> None:
    for email in emails:
        await services.store.records_index.upsert_entity(
            {"PartitionKey": _address_partition(email), "RowKey": f"{record_type}:{record_id}"}
        )


async def _unindex(services: Services, record_type: str, record_id: str, emails: list[str]) -> None:
    for email in emails:
        with contextlib.suppress(ResourceNotFoundError):
            await services.store.records_index.delete_entity(
                _address_partition(email), f"{record_type}:{record_id}"
            )


def check_consent(seller: Seller, follow_email: str, emails: list[str], patch: RecordPatch) -> None:
    """Refuse a change that would undo a recipient's opt-out unless the caller is an admin:
    Follow Email from Do Not Allow to Allow, or an address removed from a Do Not Allow record.
    Pure."""
    if ADMIN_ROLE in seller.roles or follow_email != "do_not_allow":
        return
    if patch.follow_email == "allow":
        raise Forbidden(
            f"only an admin ({ADMIN_ROLE}) may change Follow Email from do_not_allow to "
            "allow: an opt-out is not a seller's to undo",
            field="follow_email",
        )
    if patch.emails is not None and set(emails) - {e.lower() for e in patch.emails}:
        raise Forbidden(
            f"only an admin ({ADMIN_ROLE}) may remove an address from a record whose Follow "
            "Email is do_not_allow: that address would be followed again",
            field="emails",
        )


def _history_rows(
    record_type: str,
    record_id: str,
    seller: Seller,
    at: datetime,
    changes: list[tuple[str, Any, Any]],
) -> list[dict[str, Any]]:
    change = new_event_id(at)  # time-ordered; the entries of one change in their order
    return [
        {
            "PartitionKey": record_type,
            "RowKey": f"{record_id}{_HISTORY}{change}-{n}",
            "at": at.isoformat(),
            "by": json.dumps(seller.who()),
            "field": field,
            "old": json.dumps(old),
            "new": json.dumps(new),
        }
        for n, (field, old, new) in enumerate(changes)
    ]


async def _history(services: Services, record_type: str, record_id: str) -> list[dict[str, Any]]:
    """The record's changes to Follow Email and addresses, oldest first."""
    prefix = f"{record_id}{_HISTORY}"
    rows = services.store.records.query_entities(
        "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high",
        parameters={"pk": record_type, "low": prefix, "high": f"{record_id}-h."},
    )
    return [
        {
            "at": row["at"],
            "by": json.loads(row["by"]),
            "field": row["field"],
            "old": json.loads(row["old"]),
            "new": json.loads(row["new"]),
        }
        async for row in rows
    ]


async def create(
    services: Services, seller: Seller, record_type: str, body: RecordIn
) -> dict[str, Any]:
    """A new record; its addresses are indexed before the record is written, so a record
    is never visible without being findable by address. Its first Follow Email and
    addresses are its first history entries."""
    _check_type(record_type)
    record_id = secrets.token_hex(8)
    emails = sorted({e.lower() for e in body.emails})
    await _index(services, record_type, record_id, emails)
    await search.index(services, record_type, record_id, body.name, emails)
    now = services.clock()
    row = {
        "PartitionKey": record_type,
        "RowKey": record_id,
        "name": body.name,
        "emails": json.dumps(emails),
        "address": body.address.model_dump_json(exclude_none=True) if body.address else "",
        "follow_email": body.follow_email,
        "updated_at": now.isoformat(),
    }
    entries = [("follow_email", None, body.follow_email), ("emails", None, emails)]
    history = _history_rows(record_type, record_id, seller, now, entries)
    await services.store.records.submit_transaction(
        [("create", row), *(("create", h) for h in history)]
    )
    return await get(services, record_type, record_id, history=True, caller=seller)


async def _row(services: Services, record_type: str, record_id: str) -> Any:
    _check_type(record_type)
    if _HISTORY in record_id:
        raise NotFound(record_type)
    try:
        return await services.store.records.get_entity(record_type, record_id)
    except ResourceNotFoundError:
        raise NotFound(record_type) from None


async def get(
    services: Services,
    record_type: str,
    record_id: str,
    *,
    history: bool = False,
    caller: Seller | None = None,
) -> dict[str, Any]:
    """One record; with `history`, every change to its Follow Email and addresses; with the
    `caller`, what they may change of its consent (`permissions`)."""
    view = _view(await _row(services, record_type, record_id), caller)
    if history:
        view["history"] = await _history(services, record_type, record_id)
    return view


async def update(
    services: Services, seller: Seller, record_type: str, record_id: str, patch: RecordPatch
) -> dict[str, Any]:
    """Change a record; a Follow Email change applies to messages composed from now on.
    Forbidden when it would undo an opt-out and the caller is not an admin (check_consent).
    The change and its history entries are one transaction, made only if nobody changed the
    record since it was read (else read again and decide again)."""
    for _ in range(_TRIES):
        row = await _row(services, record_type, record_id)
        current = json.loads(row["emails"])
        check_consent(seller, row["follow_email"], current, patch)
        now = services.clock()
        changes: dict[str, Any] = {"updated_at": now.isoformat()}
        audited: list[tuple[str, Any, Any]] = []
        if patch.name is not None:
            changes["name"] = patch.name
        if patch.follow_email is not None and patch.follow_email != row["follow_email"]:
            changes["follow_email"] = patch.follow_email
            audited.append(("follow_email", row["follow_email"], patch.follow_email))
        if patch.address is not None:
            changes["address"] = patch.address.model_dump_json(exclude_none=True)
        emails = current
        if patch.emails is not None:
            emails = sorted({e.lower() for e in patch.emails})
            if emails != current:
                audited.append(("emails", current, emails))
                await _index(services, record_type, record_id, emails)
            changes["emails"] = json.dumps(emails)
        before, after = (row["name"], current), (changes.get("name", row["name"]), emails)
        if before != after:
            await search.index(services, record_type, record_id, *after)
        conditions = {
            "mode": UpdateMode.MERGE,
            "etag": row.metadata["etag"],
            "match_condition": MatchConditions.IfNotModified,
        }
        history = _history_rows(record_type, record_id, seller, now, audited)
        operations: list[Any] = [
            ("update", {"PartitionKey": record_type, "RowKey": record_id, **changes}, conditions),
            *(("create", h) for h in history),
        ]
        try:
            await services.store.records.submit_transaction(operations)
        except TableTransactionError as exc:
            code = getattr(exc, "error_code", None)  # set by the SDK, not declared
            if exc.index == 0 and code == TableErrorCode.UPDATE_CONDITION_NOT_SATISFIED:
                continue  # changed meanwhile: read it again and decide again
            if exc.index == 0 and code == TableErrorCode.RESOURCE_NOT_FOUND:
                raise NotFound(record_type) from None
            raise
        await _unindex(services, record_type, record_id, sorted(set(current) - set(emails)))
        if before != after:
            await search.unindex(services, record_type, record_id, before, after)
        return await get(services, record_type, record_id, history=True, caller=seller)
    raise Conflict("the record kept changing meanwhile; read it again")


async def by_address(
    services: Services, email: str, *, caller: Seller | None = None
) -> list[dict[str, Any]]:
    """Every record that has this address (with the `caller`'s permissions, given one)."""
    found = []
    async for row in services.store.records_index.query_entities(
        "PartitionKey eq @pk", parameters={"pk": _address_partition(email)}
    ):
        record_type, _, record_id = row["RowKey"].partition(":")
        try:
            record = await get(services, record_type, record_id, caller=caller)
        except NotFound:
            continue  # indexed while being created, or removed: not a record (yet)
        if email.strip().lower() in record["emails"]:  # else indexed for a change not made
            found.append(record)
    return found


async def find(
    services: Services,
    caller: Seller,
    query: str,
    *,
    record_type: str | None,
    limit: int,
    continuation: str | None,
) -> dict[str, Any]:
    """One page of records found by the start of a name, a word of it, an address or a
    domain (every record by name, for an empty query), of one type or all
    (shared.crm.search)."""
    if record_type is not None:
        _check_type(record_type)

    async def view(kind: str, record_id: str) -> dict[str, Any]:
        return await get(services, kind, record_id, caller=caller)

    return await search.search(
        services,
        query,
        record_type=record_type,
        limit=limit,
        continuation=continuation,
        view=view,
    )
