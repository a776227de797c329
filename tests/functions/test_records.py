"""Contacts, leads and accounts; recipients' follow preferences; send-time advice."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared.core.auth import ADMIN_ROLE, dev_seller, make_dev_token
from shared.core.services import Services
from shared.crm import search
from tests.functions.test_openapi import assert_error_shape


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


def bearer(services: Services, email: str, *, admin: bool = False) -> dict[str, str]:
    roles = (ADMIN_ROLE,) if admin else ()
    return {"Authorization": f"Bearer {make_dev_token(services.settings, email, roles=roles)}"}


async def test_a_seller_cannot_reverse_another_sellers_opt_out_but_an_admin_can(
    client: httpx.AsyncClient, services: Services
) -> None:
    ana = bearer(services, "ana.optout@contoso.example")
    bruno = bearer(services, "bruno.optout@contoso.example")
    admin = bearer(services, "it.optout@contoso.example", admin=True)
    record = await create(
        client, ana, name="Noor", emails=["noor@fabrikam.example"], follow_email="do_not_allow"
    )
    path = f"/api/records/contact/{record['id']}"

    reversed_ = await client.patch(path, json={"follow_email": "allow"}, headers=bruno)
    assert reversed_.status_code == 403
    error = reversed_.json()["error"]
    assert error["field"] == "follow_email" and "admin" in error["message"]
    assert "do_not_allow to allow" in error["message"]
    # Removing the address from the record would end that address's opt-out just the same.
    dropped = await client.patch(path, json={"emails": ["noor@else.example"]}, headers=bruno)
    assert dropped.status_code == 403 and dropped.json()["error"]["field"] == "emails"
    own = await client.patch(path, json={"follow_email": "allow"}, headers=ana)
    assert own.status_code == 403  # the rule is the role, not who set it
    still = (await client.get(path, headers=bruno)).json()
    assert still["follow_email"] == "do_not_allow" and still["emails"] == ["noor@fabrikam.example"]
    preferences = await client.get(
        "/api/preferences", params={"to": "noor@fabrikam.example"}, headers=bruno
    )
    assert preferences.json()["follow_state"] == "blocked"

    # Adding an address widens the opt-out: allowed, and kept in the history.
    widened = await client.patch(
        path, json={"emails": ["noor@fabrikam.example", "noor@home.example"]}, headers=bruno
    )
    assert widened.status_code == 200, widened.text
    allowed = await client.patch(path, json={"follow_email": "allow"}, headers=admin)
    assert allowed.status_code == 200 and allowed.json()["follow_email"] == "allow"

    history = (await client.get(path, headers=ana)).json()["history"]
    who = [(h["by"]["email"], h["field"], h["old"], h["new"]) for h in history]
    assert who == [
        ("ana.optout@contoso.example", "follow_email", None, "do_not_allow"),
        ("ana.optout@contoso.example", "emails", None, ["noor@fabrikam.example"]),
        (
            "bruno.optout@contoso.example",
            "emails",
            ["noor@fabrikam.example"],
            ["noor@fabrikam.example", "noor@home.example"],
        ),
        ("it.optout@contoso.example", "follow_email", "do_not_allow", "allow"),
    ]
    bruno_id = dev_seller("bruno.optout@contoso.example")
    assert history[2]["by"]["object_id"] == bruno_id.object_id
    assert history[2]["by"]["tenant_id"] == bruno_id.tenant_id
    assert all(h["at"] for h in history) and history == sorted(history, key=lambda h: h["at"])


async def test_every_change_to_follow_email_and_addresses_is_in_the_history(
    client: httpx.AsyncClient, services: Services
) -> None:
    ana = bearer(services, "ana.history@contoso.example")
    record = await create(client, ana, name="Sam", emails=["sam@fabrikam.example"])
    path = f"/api/records/contact/{record['id']}"
    await client.patch(path, json={"name": "Sam Lee", "address": {"city": "Oslo"}}, headers=ana)
    await client.patch(path, json={"follow_email": "allow"}, headers=ana)  # no change: no entry
    assert len((await client.get(path, headers=ana)).json()["history"]) == 2  # the creation's
    changed = await client.patch(
        path,
        json={"follow_email": "do_not_allow", "emails": ["sam@northwind.example"]},
        headers=ana,
    )
    assert changed.status_code == 200
    fields = [(h["field"], h["old"], h["new"]) for h in changed.json()["history"][2:]]
    assert sorted(fields, key=str) == sorted(
        [
            ("follow_email", "allow", "do_not_allow"),
            ("emails", ["sam@fabrikam.example"], ["sam@northwind.example"]),
        ],
        key=str,
    )
    listed = (
        await client.get("/api/records", params={"email": "sam@northwind.example"}, headers=ana)
    ).json()["records"]
    assert [r["id"] for r in listed] == [record["id"]] and "history" not in listed[0]
    assert (await client.get(f"{path}-h-0", headers=ana)).status_code == 404


async def find(client: httpx.AsyncClient, auth: dict[str, str], **params: object) -> dict:  # type: ignore[type-arg]
    response = await client.get("/api/records", params=params, headers=auth)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_records_are_found_by_the_start_of_a_name_a_word_an_address_or_a_domain(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    tag = f"q{uuid.uuid4().hex[:8]}"  # records are the organisation's: this test's own word
    contact = await create(
        client,
        auth,
        name=f"Élodie {tag.capitalize()}son",
        emails=[f"elodie.{tag}@fabrikam.example"],
    )
    lead = await create(
        client, auth, "lead", name=f"{tag} Kim", emails=[f"kim.{tag}@northwind-{tag}.example"]
    )
    account = await create(
        client, auth, "account", name=f"{tag} Corp", emails=[f"info@{tag}corp.example"]
    )

    def ids(answer: dict) -> list[str]:  # type: ignore[type-arg]
        return [r["id"] for r in answer["records"]]

    everyone = await find(client, auth, q=tag.upper())
    assert sorted(ids(everyone)) == sorted([contact["id"], lead["id"], account["id"]])
    assert everyone["continuation"] is None
    assert ids(await find(client, auth, q=f"ELODIE {tag}")) == [contact["id"]]  # accents off
    assert ids(await find(client, auth, q=f"kim.{tag}@")) == [lead["id"]]  # an address
    assert ids(await find(client, auth, q=f"northwind-{tag}")) == [lead["id"]]  # a domain
    assert ids(await find(client, auth, q=tag, type="account")) == [account["id"]]
    assert ids(await find(client, auth, q=f"{tag}zzz")) == []

    # A page at a time: each record once, however many of its terms match.
    pages, continuation = [], None
    while True:
        params = {"q": tag, "limit": 1, **({"continuation": continuation} if continuation else {})}
        page = await find(client, auth, **params)
        pages.append(ids(page))
        continuation = page["continuation"]
        if continuation is None:
            break
    assert len(pages) == 3 and all(len(p) == 1 for p in pages)
    assert sorted(p[0] for p in pages) == sorted(ids(everyone))

    # Renamed, it is found by its new name only.
    renamed = await client.patch(
        f"/api/records/contact/{contact['id']}", json={"name": f"Zoë {tag}x"}, headers=auth
    )
    assert renamed.status_code == 200, renamed.text
    assert ids(await find(client, auth, q=f"elodie {tag}")) == []
    assert ids(await find(client, auth, q=f"zoe {tag}x")) == [contact["id"]]
    assert contact["id"] in ids(await find(client, auth, q=tag))


async def test_every_record_of_a_type_is_listed_by_name_a_page_at_a_time(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    tag = uuid.uuid4().hex[:8]
    made = [
        await create(
            client, auth, "account", name=f"{name} {tag}", emails=[f"{name}@{tag}.example"]
        )
        for name in ("walnut", "acorn", "maple")
    ]
    seen: list[dict] = []  # type: ignore[type-arg]
    continuation = None
    while True:
        params = {"type": "account", "limit": 200}
        page = await find(
            client, auth, **params, **({"continuation": continuation} if continuation else {})
        )
        seen += page["records"]
        continuation = page["continuation"]
        if continuation is None:
            break
    assert {r["type"] for r in seen} == {"account"}
    assert len({r["id"] for r in seen}) == len(seen)  # none twice
    mine = [r["name"] for r in seen if r["id"] in {m["id"] for m in made}]
    assert mine == [f"acorn {tag}", f"maple {tag}", f"walnut {tag}"]
    names = [r["name"].casefold() for r in seen]
    assert names == sorted(names)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "planet"}, "type"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"q": "x" * 201}, "q"),
        ({"continuation": "%%%"}, "continuation"),
        ({"email": "a@b.example", "q": "a"}, "q"),
        ({"email": "not an address"}, "email"),
    ],
)
async def test_a_bad_search_names_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, object], field: str
) -> None:
    response = await client.get("/api/records", params=params, headers=auth)
    assert_error_shape(response, 422, field)


async def test_a_record_says_whether_the_caller_may_change_its_follow_email(
    client: httpx.AsyncClient, services: Services
) -> None:
    seller = bearer(services, "ana.switch@contoso.example")
    admin = bearer(services, "it.switch@contoso.example", admin=True)
    tag = uuid.uuid4().hex[:8]
    allowing = await create(client, seller, name=f"Open {tag}", emails=[f"open@{tag}.example"])
    opted_out = await create(
        client,
        seller,
        name=f"Closed {tag}",
        emails=[f"closed@{tag}.example"],
        follow_email="do_not_allow",
    )
    rule = ("can_change_follow_email", "can_remove_emails", "follow_email_changed_by")

    def permissions(record: dict) -> tuple:  # type: ignore[type-arg]
        return tuple(record[k] for k in rule)

    assert permissions(allowing) == (True, True, "seller")
    assert permissions(opted_out) == (False, False, "admin")
    for who, expected in ((seller, False), (admin, True)):
        one = (await client.get(f"/api/records/contact/{opted_out['id']}", headers=who)).json()
        assert permissions(one) == (expected, expected, "admin")
        (found,) = (await find(client, who, q=f"closed {tag}"))["records"]
        assert permissions(found) == (expected, expected, "admin")
        (by_address,) = (await find(client, who, email=f"closed@{tag}.example"))["records"]
        assert permissions(by_address) == (expected, expected, "admin")
    # What the view says is what the API does.
    switch = {"follow_email": "allow"}
    path = f"/api/records/contact/{opted_out['id']}"
    assert_error_shape(await client.patch(path, json=switch, headers=seller), 403, "follow_email")
    switched = await client.patch(path, json=switch, headers=admin)
    assert switched.status_code == 200 and permissions(switched.json()) == (True, True, "seller")


async def test_send_time_advice_is_shown_on_the_sellers_clock_too(
    client: httpx.AsyncClient, services: Services
) -> None:
    seller = bearer(services, "ana.clock@contoso.example")
    unset = bearer(services, "bo.clock@contoso.example")
    await create(
        client,
        seller,
        name="Mia",
        emails=["mia@tailspin.example"],
        address={"city": "Berlin", "country": "DE"},
    )
    await client.put("/api/me", json={"time_zone": "America/New_York"}, headers=seller)
    advice = (
        await client.get("/api/advice", params={"to": "mia@tailspin.example"}, headers=seller)
    ).json()
    assert (
        advice["time_zone"] == "Europe/Berlin" and advice["seller_time_zone"] == "America/New_York"
    )
    send_at = datetime.fromisoformat(advice["send_at"])
    local, mine = (datetime.fromisoformat(advice[k]) for k in ("local_time", "seller_time"))
    assert local == mine == send_at  # one instant, on two clocks
    assert mine.utcoffset() == send_at.astimezone(ZoneInfo("America/New_York")).utcoffset()
    assert local.utcoffset() == send_at.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
    other = (
        await client.get("/api/advice", params={"to": "mia@tailspin.example"}, headers=unset)
    ).json()
    assert other["seller_time"] is None and other["seller_time_zone"] is None
    composed = await client.post(
        "/api/messages",
        json={"to": ["mia@tailspin.example"], "subject": "Hi", "html": "<p>Hi</p>", "send": False},
        headers=seller,
    )
    assert composed.json()["advice"]["seller_time_zone"] == "America/New_York"


async def test_records_stored_before_the_search_are_found_once_indexed(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    tag = f"r{uuid.uuid4().hex[:8]}"
    old = await create(client, auth, "lead", name=f"Old {tag}", emails=[f"old@{tag}.example"])
    index = services.store.records_index
    async for row in index.query_entities(
        "PartitionKey eq 'search' or PartitionKey eq 'names'", select=["PartitionKey", "RowKey"]
    ):
        if row["RowKey"].endswith(f"|lead:{old['id']}"):
            await index.delete_entity(row["PartitionKey"], row["RowKey"])
    assert (await find(client, auth, q=tag))["records"] == []
    assert await search.reindex_all(services) >= 1
    assert [r["id"] for r in (await find(client, auth, q=tag))["records"]] == [old["id"]]
