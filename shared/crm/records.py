"""Contacts, leads and accounts: the CRM records a followed message is about, with their
e-mail addresses, postal address and Follow Email preference (Allow by default). Records
are the organisation's, shared by its sellers, and found again by any of their addresses."""

from __future__ import annotations

import contextlib
import json
import secrets
from typing import Annotated, Any, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shared.core.errors import InvalidInput, NotFound
from shared.core.ids import index_key
from shared.core.services import Services

RecordType = Literal["contact", "lead", "account"]
RECORD_TYPES: tuple[str, ...] = ("contact", "lead", "account")
FollowEmail = Literal["allow", "do_not_allow"]


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


def _view(row: Any) -> dict[str, Any]:
    return {
        "type": row["PartitionKey"],
        "id": row["RowKey"],
        "name": row["name"],
        "emails": json.loads(row["emails"]),
        "address": json.loads(row["address"]) if row.get("address") else None,
        "follow_email": row["follow_email"],
        "updated_at": row["updated_at"],
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


async def create(services: Services, record_type: str, body: RecordIn) -> dict[str, Any]:
    """A new record; its addresses are indexed before the record is written, so a record
    is never visible without being findable by address."""
    _check_type(record_type)
    record_id = secrets.token_hex(8)
    emails = sorted({e.lower() for e in body.emails})
    await _index(services, record_type, record_id, emails)
    row = {
        "PartitionKey": record_type,
        "RowKey": record_id,
        "name": body.name,
        "emails": json.dumps(emails),
        "address": body.address.model_dump_json(exclude_none=True) if body.address else "",
        "follow_email": body.follow_email,
        "updated_at": services.clock().isoformat(),
    }
    await services.store.records.create_entity(row)
    return _view(row)


async def get(services: Services, record_type: str, record_id: str) -> dict[str, Any]:
    _check_type(record_type)
    try:
        return _view(await services.store.records.get_entity(record_type, record_id))
    except ResourceNotFoundError:
        raise NotFound(record_type) from None


async def update(
    services: Services, record_type: str, record_id: str, patch: RecordPatch
) -> dict[str, Any]:
    """Change a record; a Follow Email change applies to messages composed from now on."""
    current = await get(services, record_type, record_id)
    changes: dict[str, Any] = {"updated_at": services.clock().isoformat()}
    if patch.name is not None:
        changes["name"] = patch.name
    if patch.follow_email is not None:
        changes["follow_email"] = patch.follow_email
    if patch.address is not None:
        changes["address"] = patch.address.model_dump_json(exclude_none=True)
    if patch.emails is not None:
        emails = sorted({e.lower() for e in patch.emails})
        await _index(services, record_type, record_id, emails)
        await _unindex(
            services, record_type, record_id, sorted(set(current["emails"]) - set(emails))
        )
        changes["emails"] = json.dumps(emails)
    await services.store.records.update_entity(
        {"PartitionKey": record_type, "RowKey": record_id, **changes}, mode=UpdateMode.MERGE
    )
    return await get(services, record_type, record_id)


async def by_address(services: Services, email: str) -> list[dict[str, Any]]:
    """Every record that has this address."""
    found = []
    async for row in services.store.records_index.query_entities(
        "PartitionKey eq @pk", parameters={"pk": _address_partition(email)}
    ):
        record_type, _, record_id = row["RowKey"].partition(":")
        try:
            found.append(await get(services, record_type, record_id))
        except NotFound:
            continue  # indexed while being created, or removed: not a record (yet)
    return found
