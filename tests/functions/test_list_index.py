"""The followed-emails list from its index, through the HTTP API on Azurite: every sort,
order and follow_state gives the order the list always gave (the rows sorted in memory), a
continuation visits every message once, every writer keeps the index in step with the rows
(even when storage goes away mid-write), and `build-list-index` indexes rows written before
the index existed."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from azure.data.tables.aio import TableClient

from functions.http_app import create_app
from shared.core import list_index, sellers
from shared.core.auth import Seller, dev_seller, make_dev_token
from shared.core.ids import message_partition, new_message_id
from shared.core.services import Services
from shared.core.settings import Settings, get_settings
from shared.engagement.fold import fold_cycle
from shared.messages.dispatch import dispatch_cycle
from shared.ops import cli, list_index_build, retention
from shared.outlook.replies import record_reply
from tests.conftest import PERSON_USER_AGENT, TRACKING_BASE, Clock
from tests.utils.factories import compose, compose_body, ensure_contacts
from tests.utils.faulty_storage import Cut, cuttable_services
from tests.utils.storage import list_index_disagreement

STATES = ("followed", "not_followed", "blocked")
FILTERS = (*STATES, "any")
_sellers = itertools.count(1)


def new_seller(settings: Settings) -> tuple[Seller, dict[str, str]]:
    email = f"lister{next(_sellers)}.{random.randrange(10**9)}@contoso.example"
    token = make_dev_token(settings, email)
    return dev_seller(email), {"Authorization": f"Bearer {token}"}


def random_rows(
    rng: random.Random, seller: Seller, count: int, partition: str | None = None
) -> list[dict[str, Any]]:
    """Message rows with few distinct values (many ties), some never sent or opened."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    times = [""] + [
        (start + timedelta(hours=rng.randrange(40), microseconds=rng.choice([0, 0, 7]))).isoformat()
        for _ in range(12)
    ]
    rows = []
    for _ in range(count):
        message_id = new_message_id(seller.key)
        if partition is not None:  # an older partition (the seller's address's)
            message_id = partition + message_id[8:]
        rows.append(
            {
                "PartitionKey": message_id[:8],
                "RowKey": message_id,
                "owner": seller.key,
                "seller": seller.email,
                "subject": f"Quote {len(rows)}",
                "to": json.dumps(["buyer@fabrikam.example"]),
                "status": rng.choice(["sent", "sent", "draft"]),
                "follow_state": rng.choices(STATES, [6, 2, 1])[0],
                "created_at": start.isoformat(),
                "sent_at": rng.choice(times),
                "last_opened_at": rng.choice(times),
                "opens": rng.choice([0, 0, 1, 2, 3, 12]),
                "link_clicks": rng.randrange(3),
                "attachment_views": rng.choice([0, 0, 1]),
                "replies": rng.choice([0, 0, 0, 1, 2]),
                "by_class": "{}",
            }
        )
    return rows


async def write_listed(table: TableClient, rows: Sequence[Mapping[str, Any]]) -> None:
    """As compose writes them: each row with its index rows, in one transaction."""
    for row in rows:
        await table.submit_transaction(list_index.create_operations(row))


def old_order(
    rows: Sequence[Mapping[str, Any]], seller: Seller, sort: str, order: str, state: str
) -> list[str]:
    """The list as it was made before the index: the seller's rows (with the state asked
    for) sorted in memory by the sort column, then the id."""

    def key(row: Mapping[str, Any]) -> tuple[Any, str]:
        value = row.get(sort)
        if sort in list_index.TIME_FIELDS:
            return (str(value or ""), str(row["RowKey"]))
        return (int(value or 0), str(row["RowKey"]))

    mine = [
        r
        for r in rows
        if r["owner"] == seller.key and (state == "any" or r["follow_state"] == state)
    ]
    return [str(r["RowKey"]) for r in sorted(mine, key=key, reverse=order == "desc")]


async def walk(
    client: httpx.AsyncClient, auth: dict[str, str], limit: int, **params: str
) -> list[str]:
    """Every id the list gives, page after page."""
    seen: list[str] = []
    token = None
    while True:
        query = {**params, "limit": str(limit), **({"continuation": token} if token else {})}
        answer = await client.get("/api/messages", params=query, headers=auth)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        token = page["continuation"]
        if token is None:
            return seen
        assert len(page["items"]) == limit


async def test_every_sort_order_and_filter_gives_the_order_of_the_rows(
    client: httpx.AsyncClient, settings: Settings, services: Services
) -> None:
    rng = random.Random(14)
    seller, auth = new_seller(settings)
    older = message_partition(f"old.{seller.email}")
    rows = random_rows(rng, seller, 48) + random_rows(rng, seller, 12, older)
    # Someone else whose messages share the seller's 40-bit partition: never listed.
    stranger = Seller("tenant", seller.email, "x@contoso.example")
    strangers = [
        {**r, "PartitionKey": seller.partition, "RowKey": seller.partition + r["RowKey"][8:]}
        for r in random_rows(rng, stranger, 6)
    ]
    await write_listed(services.store.messages, rows + strangers)
    await sellers.add_partitions(services.store, seller.key, [older])
    everything = rows + strangers
    for sort in list_index.SORT_FIELDS:
        for order in ("asc", "desc"):
            for state in FILTERS:
                expected = old_order(everything, seller, sort, order, state)
                params = {"sort": sort, "order": order, "follow_state": state}
                seen = await walk(client, auth, 7, **params)
                assert seen == expected, (sort, order, state)
                first = await walk(client, auth, 200, **params)
                assert first == expected
    assert len(set(seen)) == len(seen) == len(rows)  # once each, the stranger's never


async def test_a_token_of_the_list_before_its_index_is_refused(
    client: httpx.AsyncClient, settings: Settings, services: Services
) -> None:
    seller, auth = new_seller(settings)
    await write_listed(services.store.messages, random_rows(random.Random(1), seller, 3))
    old = json.dumps(["sent_at", "desc", ["2025-01-01T00:00:00+00:00", new_message_id(seller.key)]])
    token = base64.urlsafe_b64encode(old.encode()).decode().rstrip("=")
    answer = await client.get(f"/api/messages?continuation={token}", headers=auth)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "continuation"
    other = await client.get("/api/messages?limit=1&follow_state=any", headers=auth)
    token = other.json()["continuation"]
    answer = await client.get(f"/api/messages?sort=opens&continuation={token}", headers=auth)
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "continuation"


async def test_compose_send_reply_and_erasure_keep_the_index_with_the_rows(
    client: httpx.AsyncClient, settings: Settings, services: Services, clock: Clock
) -> None:
    seller, auth = new_seller(settings)
    partition, n = seller.partition, seller.email.split("@")[0]
    first, second = f"first.{n}@fabrikam.example", f"second.{n}@fabrikam.example"
    sent = await compose(client, auth, to=[first])
    clock.advance(1)
    blocked = await compose(client, auth, to=[f"nobody.{n}@fabrikam.example"], records=False)
    assert blocked["follow_state"] == "blocked"
    draft = await compose(client, auth, to=[second], send=False)
    assert await list_index_disagreement(services, partition) == {"missing": set(), "extra": set()}
    newest = await walk(client, auth, 50, sort="sent_at", order="desc", follow_state="any")
    assert newest == [blocked["id"], sent["id"], draft["id"]]  # never sent: last

    # The recipient stops allowing following before the draft goes out: it is sent
    # unfollowed, and moves from the followed list to the blocked one.
    record = (await client.get("/api/records", params={"email": second}, headers=auth)).json()[
        "records"
    ][0]
    changed = await client.patch(
        f"/api/records/{record['type']}/{record['id']}",
        json={"follow_email": "do_not_allow"},
        headers=auth,
    )
    assert changed.status_code == 200, changed.text
    clock.advance(1)
    went = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
    assert went.json()["follow_state"] == "blocked"
    assert await list_index_disagreement(services, partition) == {"missing": set(), "extra": set()}
    assert await walk(client, auth, 50, sort="sent_at", order="desc") == [sent["id"]]
    assert await walk(client, auth, 50, sort="sent_at", order="desc", follow_state="blocked") == [
        draft["id"],
        blocked["id"],
    ]

    await record_reply(services, sent["id"], reply_key="<r1@x>", at=clock.now(), automatic=False)
    assert await list_index_disagreement(services, partition) == {"missing": set(), "extra": set()}
    by_replies = await walk(client, auth, 50, sort="replies", order="desc", follow_state="any")
    assert by_replies[0] == sent["id"]

    erased = await retention.erase(services, first)
    assert erased["messages"] == 1
    assert await list_index_disagreement(services, partition) == {"missing": set(), "extra": set()}
    by_replies = await walk(client, auth, 50, sort="replies", order="asc", follow_state="any")
    assert by_replies == sorted(by_replies)  # no replies left: ties, by id


async def test_the_fold_keeps_the_index_with_the_rows(
    client: httpx.AsyncClient, settings: Settings, services: Services, clock: Clock
) -> None:
    seller, auth = new_seller(settings)
    quiet = await compose(client, auth, to=["quiet@fabrikam.example"])
    read = await compose(client, auth, to=["reader@fabrikam.example"])
    pixel = read["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
    clock.advance(400)  # past the delivery window: a person's open
    assert (await client.get(pixel)).status_code == 200
    await fold_cycle(
        services, now=clock.advance(settings.fold_grace_seconds + 20), grace=services.grace
    )
    shown = (await client.get(f"/api/messages/{read['id']}", headers=auth)).json()
    assert shown["kpis"]["opens"] == 1
    assert await list_index_disagreement(services, seller.partition) == {
        "missing": set(),
        "extra": set(),
    }
    assert await walk(client, auth, 50, sort="opens", order="desc") == [read["id"], quiet["id"]]


async def _compose_through(
    services: Services, settings: Settings, cut: Cut, at: int | None, connection_string: str
) -> Seller:
    """One compose that sends, by a new seller, through storage cut at write `at`."""
    cuttable = cuttable_services(services, connection_string, cut)
    seller, auth = new_seller(settings)
    transport = httpx.ASGITransport(app=create_app(lambda: cuttable))
    async with httpx.AsyncClient(
        transport=transport, base_url=TRACKING_BASE, headers={"User-Agent": PERSON_USER_AGENT}
    ) as http:
        await ensure_contacts(http, auth, ["customer@fabrikam.example"])
        cut.reset(at)
        answer = await http.post("/api/messages", json=compose_body(), headers=auth)
        assert answer.status_code in (201, 202, 503), answer.text
    await cuttable.close()
    return seller


async def test_storage_cut_at_each_write_of_compose_and_send_leaves_rows_and_index_agreeing(
    client: httpx.AsyncClient,
    services: Services,
    connection_string: str,
    settings: Settings,
    clock: Clock,
) -> None:
    """Storage goes away at every write in turn of a compose that sends (the message row
    with its index rows, then the sent state moving them): once it is back and the dispatch
    cycle has finished what was cut short, the index says what the rows say, and the list
    shows the message where its row puts it."""
    counting = Cut()
    await _compose_through(services, settings, counting, None, connection_string)
    assert counting.writes >= 6  # intent, blobs, queue row, message and index, sent...
    for at in range(counting.writes):
        seller = await _compose_through(services, settings, Cut(), at, connection_string)
        clock.advance(11 * 60)  # the cut attempt's lease runs out
        await dispatch_cycle(services)
        assert await list_index_disagreement(services, seller.partition) == {
            "missing": set(),
            "extra": set(),
        }, at
        rows = [
            r
            async for r in services.store.messages.query_entities(
                f"PartitionKey eq @pk and {list_index.MESSAGE_ROWS_FILTER}",
                parameters={"pk": seller.partition},
            )
        ]
        assert len(rows) <= 1, at
        assert all(r["status"] == "sent" and r["sent_at"] for r in rows), at
        auth = {"Authorization": f"Bearer {make_dev_token(settings, seller.email)}"}
        for sort in ("sent_at", "opens"):
            listed = await walk(client, auth, 5, sort=sort)
            assert listed == [r["RowKey"] for r in rows], (at, sort)


async def test_build_list_index_indexes_old_rows_once_and_repairs_a_broken_index(
    client: httpx.AsyncClient,
    settings: Settings,
    services: Services,
    app_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(3)
    seller, auth = new_seller(settings)
    store = services.store
    old_rows = random_rows(rng, seller, 40)
    for row in old_rows:  # as the app wrote them before the index: no index rows, not listed
        await store.messages.create_entity(row)
    broken, unowned = random_rows(rng, seller, 2)
    await write_listed(store.messages, [broken])
    wrong = list_index.index_rows(list_index.listed({**broken, "opens": 999}))
    gone = sorted(list_index.index_rows(list_index.listed(broken)))[0]
    await store.messages.delete_entity(seller.partition, gone)
    await store.messages.upsert_entity(next(e for k, e in wrong.items() if "|opens|asc|" in k))
    del unowned["owner"]
    await store.messages.create_entity(unowned)
    assert await walk(client, auth, 50, follow_state="any") != old_order(
        [*old_rows, broken], seller, "sent_at", "desc", "any"
    )

    get_settings.cache_clear()
    try:  # the command runs its own event loop
        await asyncio.to_thread(cli.main, ["build-list-index"])
    finally:
        get_settings.cache_clear()
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert f"partition {seller.partition}:" in captured.err
    assert report["indexed"] >= 41 and report["unowned"] >= 1
    assert await list_index_disagreement(services, seller.partition) == {
        "missing": set(),
        "extra": set(),
    }
    for sort in list_index.SORT_FIELDS:
        for order in ("asc", "desc"):
            for state in FILTERS:
                seen = await walk(client, auth, 9, sort=sort, order=order, follow_state=state)
                assert seen == old_order([*old_rows, broken], seller, sort, order, state)

    again = await list_index_build.build(store)
    assert (again.indexed, again.index_rows_written, again.index_rows_deleted) == (0, 0, 0)
    assert again.already >= 41
