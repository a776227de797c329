"""Whether a message may be followed, recipient by recipient ("view preferences"), and the
send-time advice for a single recipient."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.core import me, sellers
from shared.core.auth import Seller
from shared.core.services import Services
from shared.crm import records
from shared.crm.send_time import advise
from shared.crm.time_zones import PostalAddress
from shared.engagement import history


async def recipient_preferences(
    services: Services, to: Sequence[str], cc: Sequence[str], bcc: Sequence[str] = ()
) -> dict[str, Any]:
    """Each recipient's records and Follow Email preference, and what follow state a message
    to them would get: followable only when every To and Cc recipient is a contact, lead or
    account record and none of the recipients' records (Bcc included) says Do Not Allow.
    A Bcc recipient need not be a record: copying a colleague must not stop following."""
    roles: dict[str, str] = {}
    for role, group in (("to", to), ("cc", cc), ("bcc", bcc)):
        for address in group:
            roles.setdefault(address.lower(), role)
    addresses = list(roles)
    found_all = await asyncio.gather(*(records.by_address(services, a) for a in addresses))
    recipients = []
    blocked = False
    for address, found in zip(addresses, found_all, strict=True):
        if any(r["follow_email"] == "do_not_allow" for r in found):
            reason = "Follow Email is Do Not Allow"
        elif not found and roles[address] != "bcc":
            reason = "not a contact, lead or account record"
        else:
            reason = ""
        blocked = blocked or bool(reason)
        recipients.append(
            {
                "address": address,
                "field": roles[address],
                "followable": not reason,
                "reason": reason or None,
                "records": [
                    {k: r[k] for k in ("type", "id", "name", "follow_email")} for r in found
                ],
            }
        )
    return {"follow_state": "blocked" if blocked else "followed", "recipients": recipients}


async def blocked_recipients(
    services: Services, to: Sequence[str], cc: Sequence[str], bcc: Sequence[str]
) -> list[dict[str, Any]]:
    """The recipients who stop a message to them being followed (none: it may be)."""
    found = await recipient_preferences(services, to, cc, bcc)
    return [r for r in found["recipients"] if not r["followable"]]


async def _opens_of(services: Services, seller: Seller, address: str) -> list[datetime]:
    """When this recipient opened the seller's mail sent to them alone (latest 50 messages)."""
    rows = [
        row
        for partition in await sellers.message_partitions(services.store, seller)
        async for row in services.store.messages.query_entities(
            "PartitionKey eq @pk and owner eq @owner and status eq 'sent'"
            " and to eq @to and cc eq '[]'",
            parameters={"pk": partition, "owner": seller.key, "to": json.dumps([address])},
            select=["RowKey", "sent_at"],
        )
    ]
    rows.sort(key=lambda r: r["sent_at"], reverse=True)

    async def opened(row: dict[str, Any]) -> list[datetime]:
        # A person's opens only: a scanner's come at delivery, and a privacy proxy hides when.
        sent_at = datetime.fromisoformat(row["sent_at"])
        times = [
            datetime.fromisoformat(event["at"])
            for event in await history.read(
                services.store, row["RowKey"], kind="open", select=["at", "label"]
            )
            if event.get("label", "") in ("human", "")
        ]
        return [at for at in times if at >= sent_at]

    found = await asyncio.gather(*(opened(row) for row in rows[:50]))
    return [at for times in found for at in times]


async def send_time_advice(services: Services, seller: Seller, to: list[str]) -> dict[str, Any]:
    """When to send to one recipient: their working hours from their record's address, or
    the hour they usually open the seller's mail; the suggested time shown on the
    recipient's clock and on the seller's (their display time zone, once they set one)."""
    now = services.clock()
    seller_zone = await me.time_zone(services.store, seller)
    address = None
    name = None
    if len(to) == 1:
        for record in await records.by_address(services, to[0]):
            if record["address"]:
                address = PostalAddress(**record["address"])
                name = record["name"]
                break
    opens = await _opens_of(services, seller, to[0].lower()) if len(to) == 1 else []
    advice = advise(recipients=len(to), address=address, now=now, opens=opens, name=name)
    seller_time = (
        advice.send_at.astimezone(ZoneInfo(seller_zone)).isoformat()
        if advice.send_at and seller_zone
        else None
    )
    return {
        "send_at": advice.send_at.isoformat() if advice.send_at else None,
        "local_time": advice.local_time.isoformat() if advice.local_time else None,
        "time_zone": advice.time_zone,
        "seller_time": seller_time,
        "seller_time_zone": seller_zone,
        "basis": advice.basis,
        "reason": advice.reason,
    }
