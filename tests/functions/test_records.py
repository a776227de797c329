"""Contacts, leads and accounts; recipients' follow preferences; send-time advice."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest


async def create(
    client: httpx.AsyncClient, auth: dict[str, str], kind: str = "contact", **body: object
) -> dict:  # type: ignore[type-arg]
    response = await client.post(f"/api/records/{kind}", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_records_are_created_found_by_address_and_updated(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    contact = await create(
        client,
        auth,
        name="Kim Lee",
        emails=["Kim.Lee@Fabrikam.example"],
        address={"city": "Paris", "country": "FR"},
    )
    assert contact["follow_email"] == "allow" and contact["emails"] == ["kim.lee@fabrikam.example"]
    lead = await create(
        client, auth, "lead", name="Kim (lead)", emails=["kim.lee@fabrikam.example"]
    )
    found = (
        await client.get("/api/records", params={"email": "KIM.LEE@fabrikam.example"}, headers=auth)
    ).json()["records"]
    assert {(r["type"], r["id"]) for r in found} == {
        ("contact", contact["id"]),
        ("lead", lead["id"]),
    }
    moved = await client.patch(
        f"/api/records/contact/{contact['id']}",
        json={"emails": ["kim@northwind.example"], "follow_email": "do_not_allow"},
        headers=auth,
    )
    assert moved.status_code == 200 and moved.json()["follow_email"] == "do_not_allow"
    old = (
        await client.get("/api/records", params={"email": "kim.lee@fabrikam.example"}, headers=auth)
    ).json()["records"]
    assert [r["id"] for r in old] == [lead["id"]]
    new = (
        await client.get("/api/records", params={"email": "kim@northwind.example"}, headers=auth)
    ).json()["records"]
    assert [r["id"] for r in new] == [contact["id"]]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/records/planet", {"name": "x", "emails": ["a@b.example"]}, "type"),
        ("/api/records/contact", {"name": "x", "emails": ["not-an-address"]}, "emails[0]"),
        ("/api/records/contact", {"name": "", "emails": ["a@b.example"]}, "name"),
        ("/api/records/contact", {"name": "x", "emails": []}, "emails"),
        (
            "/api/records/contact",
            {"name": "x", "emails": ["a@b.example"], "follow_email": "maybe"},
            "follow_email",
        ),
    ],
)
async def test_bad_records_name_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], path: str, body: dict, field: str
) -> None:  # type: ignore[type-arg]
    response = await client.post(path, json=body, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


async def test_unknown_record_is_404(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert (await client.get("/api/records/contact/nope", headers=auth)).status_code == 404


async def test_view_preferences_before_sending(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await create(client, auth, name="Ann", emails=["ann@contoso-customer.example"])
    await create(
        client,
        auth,
        "account",
        name="Bee Corp",
        emails=["info@bee.example"],
        follow_email="do_not_allow",
    )
    ok = (
        await client.get(
            "/api/preferences", params={"to": ["ann@contoso-customer.example"]}, headers=auth
        )
    ).json()
    assert ok["follow_state"] == "followed"
    mixed = (
        await client.get(
            "/api/preferences",
            params={
                "to": ["ann@contoso-customer.example"],
                "cc": ["info@bee.example", "stranger@else.example"],
            },
            headers=auth,
        )
    ).json()
    assert mixed["follow_state"] == "blocked"
    reasons = {r["address"]: r["reason"] for r in mixed["recipients"]}
    assert reasons == {
        "ann@contoso-customer.example": None,
        "info@bee.example": "Follow Email is Do Not Allow",
        "stranger@else.example": "not a contact, lead or account record",
    }


async def test_send_time_advice_uses_the_recipients_working_hours(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await create(
        client,
        auth,
        name="Ravi",
        emails=["ravi@tailspin.example"],
        address={"city": "Mumbai", "country": "IN"},
    )
    advice = (
        await client.get("/api/advice", params={"to": ["ravi@tailspin.example"]}, headers=auth)
    ).json()
    assert advice["time_zone"] == "Asia/Kolkata" and advice["basis"] in ("workday", "open_history")
    local = datetime.fromisoformat(advice["send_at"]).astimezone(ZoneInfo("Asia/Kolkata"))
    assert local.weekday() < 5 and 8 <= local.hour < 17
    several = (
        await client.get(
            "/api/advice", params={"to": ["ravi@tailspin.example", "x@y.example"]}, headers=auth
        )
    ).json()
    assert several["send_at"] is None and several["basis"] == "none" and several["reason"]
    unknown = (
        await client.get("/api/advice", params={"to": ["nobody@nowhere.example"]}, headers=auth)
    ).json()
    assert unknown["send_at"] is None and unknown["reason"]
