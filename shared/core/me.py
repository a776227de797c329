"""Who the calling seller is, and their own settings: the time zone the seller's app shows
times in, kept in their row of the `sellers` table (shared.core.sellers)."""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.core.auth import Seller
from shared.core.storage import Store

_PARTITION = "seller"  # the sellers table's one partition (shared.core.sellers)


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class MeIn(BaseModel):
    """PUT /api/me."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(
        max_length=64, description="an IANA time zone, such as Europe/Paris or UTC"
    )

    @field_validator("time_zone")
    @classmethod
    def _iana(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError("must be an IANA time zone, such as Europe/Paris or UTC")
        return value


async def time_zone(store: Store, seller: Seller) -> str | None:
    """The seller's display time zone, or None until they set one."""
    try:
        row = await store.sellers.get_entity(_PARTITION, seller.key, select=["time_zone"])
    except ResourceNotFoundError:
        return None
    return row.get("time_zone") or None


async def me(store: Store, seller: Seller) -> dict[str, Any]:
    """The seller as the token says, with their display time zone (null until they set
    one: the app then shows the browser's)."""
    zone = await time_zone(store, seller)
    return {
        "email": seller.email,
        "tenant_id": seller.tenant_id,
        "object_id": seller.object_id,
        "roles": sorted(seller.roles),
        "is_admin": seller.is_admin,
        "time_zone": zone,
    }


async def set_time_zone(store: Store, seller: Seller, body: MeIn) -> dict[str, Any]:
    """Keep the seller's display time zone (their row's other columns stay)."""
    await store.sellers.upsert_entity(
        {"PartitionKey": _PARTITION, "RowKey": seller.key, "time_zone": body.time_zone},
        mode=UpdateMode.MERGE,
    )
    return await me(store, seller)
