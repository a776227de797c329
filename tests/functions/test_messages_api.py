"""The seller API: bad input stores nothing, sellers see only their own mail, the list."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from shared.core.auth import make_dev_token
from shared.core.services import Services
from shared.core.settings import Settings
from shared.engagement.fold import fold_cycle
from tests.conftest import Clock
from tests.utils.factories import HTML, attachment, compose, compose_body
from tests.utils.storage import seller_footprint

SELLER = "ana.seller@contoso.example"


def big(n: int) -> str:
    return base64.b64encode(b"x" * n).decode()


BAD_BODIES = [
    ({"to": ["not-an-address"]}, 422, "to[0]"),
    ({"to": [], "cc": [], "bcc": []}, 422, "to"),
    ({"html": None}, 422, "html"),
    ({"subject": "two\nlines"}, 422, "subject"),
    ({"follow": "maybe"}, 422, "follow"),
    ({"surprise": 1}, 422, "surprise"),
    ({"regarding": {"type": "planet", "id": "x"}}, 422, "regarding.type"),
    ({"html": "<p>" + "x" * 200_001 + "</p>"}, 413, "html"),
    ({"attachments": [attachment(f"f{i}.pdf") for i in range(4)]}, 422, "attachments"),
    ({"attachments": [attachment("../../etc/passwd")]}, 422, "attachments[0].name"),
    ({"attachments": [attachment("C:\\temp\\x.pdf")]}, 422, "attachments[0].name"),
    ({"attachments": [{**attachment(), "content": "%%% not base64"}]}, 422, "attachments[0].content"),
    ({"attachments": [{**attachment(), "content_type": "pdf"}]}, 422, "attachments[0].content_type"),
    ({"attachments": [attachment(), {**attachment("big.bin"), "content": big(65 * 1024)}]}, 413, "attachments[1].content"),
    ({"attachments": [{**attachment(f"f{i}"), "content": big(40 * 1024)} for i in range(3)]}, 413, "attachments"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "status", "field"), BAD_BODIES, ids=[b[2] + f"-{b[1]}" for b in BAD_BODIES]
)
async def test_bad_input_names_the_field_and_stores_nothing(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    services: Services,
    change: dict,
    status: int,
    field: str,  # type: ignore[type-arg]
) -> None:
    before = await seller_footprint(services, SELLER)
    response = await client.post("/api/messages", json=compose_body(**change), headers=auth)
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field
    assert await seller_footprint(services, SELLER) == before


async def test_invalid_json_is_a_400_naming_the_body(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/api/messages", content=b'{"to": [', headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


async def test_request_over_the_size_limit_is_refused_before_reading(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings
) -> None:
    huge = b" " * (
        2 * settings.max_html_bytes + 2 * settings.max_total_attachment_bytes + 512 * 1024
    )
    response = await client.post(
        "/api/messages", content=huge, headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic abc",
        "Bearer not.a.jwt",
        "Bearer "
        + make_dev_token(Settings(dev_auth_key="another-key-entirely-another-key"), SELLER),
    ],
)  # type: ignore[arg-type]
async def test_seller_routes_need_a_valid_token(
    client: httpx.AsyncClient, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    for response in (
        await client.post("/api/messages", json=compose_body(), headers=headers),
        await client.get("/api/messages", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["field"] == "authorization"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_token_is_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    token = make_dev_token(settings, SELLER, hours=-1)
    response = await client.get("/api/messages", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_a_seller_sees_only_their_own_messages(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings
) -> None:
    mine = await compose(client, auth)
    other = {"Authorization": f"Bearer {make_dev_token(settings, 'bruno@contoso.example')}"}
    assert (await client.get(f"/api/messages/{mine['id']}", headers=other)).status_code == 404
    assert (await client.post(f"/api/messages/{mine['id']}/send", headers=other)).status_code == 404
    listed = (await client.get("/api/messages?follow_state=any", headers=other)).json()
    assert mine["id"] not in {i["id"] for i in listed["items"]}
    assert (await client.get("/api/messages/not-an-id", headers=auth)).status_code == 404


async def test_unfollowed_message_is_delivered_exactly_as_written(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sent = await compose(client, auth, follow=False, attachments=[attachment("a.pdf")])
    assert sent["follow_state"] == "not_followed"
    assert sent["html"] == HTML
    assert sent["links"] == []
    assert sent["attachments"][0]["followed"] is False


async def test_followed_message_keeps_mailto_and_regarding(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    html = '<html><body><a href="mailto:ana@contoso.example">mail</a><a href="https://contoso.example">site</a></body></html>'
    sent = await compose(
        client,
        auth,
        html=html,
        regarding={"type": "opportunity", "id": "opp-42"},
        cc=["c@fabrikam.example"],
        bcc=["b@fabrikam.example"],
    )
    assert 'href="mailto:ana@contoso.example"' in sent["html"]
    assert [link["url"] for link in sent["links"]] == ["https://contoso.example"]
    assert sent["regarding"] == {"type": "opportunity", "id": "opp-42"}
    assert (sent["cc"], sent["bcc"]) == (["c@fabrikam.example"], ["b@fabrikam.example"])


async def test_list_is_sorted_by_kpis_and_paged(
    client: httpx.AsyncClient, settings: Settings, services: Services, clock: Clock
) -> None:
    seller = {"Authorization": f"Bearer {make_dev_token(settings, 'lister@contoso.example')}"}
    ids = []
    for opens in (2, 0, 3, 1):
        sent = await compose(client, seller)
        ids.append((opens, sent["id"]))
        pixel = sent["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
        for _ in range(opens):
            await client.get(pixel)
        await client.get(f"/api/messages/{sent['id']}", headers=seller)
    draft = await compose(client, seller, follow=False)
    # the list shows folded KPIs: let the grace period pass and run a cycle
    now = clock.advance(settings.fold_grace_seconds + 20)
    await fold_cycle(services, now=now, grace=services.grace)
    seen, token = [], None
    while True:
        url = "/api/messages?sort=opens&order=desc&limit=3" + (
            f"&continuation={token}" if token else ""
        )
        page = (await client.get(url, headers=seller)).json()
        seen.extend((item["opens"], item["id"]) for item in page["items"])
        token = page["continuation"]
        if not token:
            break
    assert seen == sorted(ids, key=lambda p: (p[0], p[1]), reverse=True)
    assert draft["id"] not in {i for _, i in seen}
    everything = (
        await client.get("/api/messages?follow_state=any&limit=200", headers=seller)
    ).json()
    assert draft["id"] in {i["id"] for i in everything["items"]}
    bad = await client.get("/api/messages?sort=subject", headers=seller)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "sort"
    bad = await client.get("/api/messages?continuation=zzz", headers=seller)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "continuation"


async def test_full_history_lists_every_event_newest_first(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    sent = await compose(client, auth)
    html = sent["html"]
    pixel = html.split('src="http://track.test', 1)[1].split('"', 1)[0]
    click = html.split('href="http://track.test', 1)[1].split('"', 1)[0]
    # a person, after the delivery window: open, click a minute later, reopen now and then
    await fold_cycle(services, now=clock.advance(600), grace=services.grace)  # caught up
    for path in (pixel, click, pixel, pixel):
        await client.get(path)
        clock.advance(60)
    shown = (await client.get(f"/api/messages/{sent['id']}?history=full", headers=auth)).json()
    events = [h["event"] for h in shown["history"]]
    assert sorted(events) == ["click", "open", "open", "open"]
    times = [h["at"] for h in shown["history"]]
    assert times == sorted(times, reverse=True)
    summary = [(t["event"], t["occurrence"]) for t in shown["timeline"]]
    assert summary.count(("open", "first")) == 1 and summary.count(("open", "latest")) == 1
    assert ("click", "only") in summary and summary[-1] == ("sent", "only")
    assert json.dumps(shown)  # serialisable


async def test_a_chunked_body_over_the_limit_is_refused_while_reading(
    client: httpx.AsyncClient, auth: dict[str, str], settings: Settings
) -> None:
    async def chunks(total: int):  # type: ignore[no-untyped-def]
        for _ in range(total // 65536):
            yield b" " * 65536

    big = settings.max_html_bytes + settings.max_total_attachment_bytes * 2 + 512 * 1024
    response = await client.post(
        "/api/messages", content=chunks(big), headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "body"

    async def small():  # type: ignore[no-untyped-def]
        yield json.dumps(compose_body()).encode()

    accepted = await client.post(
        "/api/messages", content=small(), headers={**auth, "content-type": "application/json"}
    )
    assert accepted.status_code == 201


async def test_a_message_polled_answers_304_until_new_engagement(
    client: httpx.AsyncClient, auth: dict[str, str], clock: Clock, services: Services
) -> None:
    sent = await compose(client, auth)
    path = f"/api/messages/{sent['id']}"
    first = await client.get(path, headers=auth)
    tag = first.headers["etag"]
    again = await client.get(path, headers={**auth, "If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    # An open, not folded yet: the view already shows it, so the tag changes.
    pixel = sent["html"].split('src="http://track.test', 1)[1].split('"', 1)[0]
    await client.get(pixel)
    opened = await client.get(path, headers={**auth, "If-None-Match": tag})
    assert opened.status_code == 200 and opened.json()["kpis"]["opens"] == 1
    # Folded, the same engagement: the same answer, the same tag.
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    folded = await client.get(path, headers={**auth, "If-None-Match": opened.headers["etag"]})
    assert folded.status_code == 304, folded.text
    full = await client.get(
        path, params={"history": "full"}, headers={**auth, "If-None-Match": tag}
    )
    assert full.status_code == 200 and full.headers["etag"] != opened.headers["etag"]
    other = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'etag.other@contoso.example')}"
    }
    hidden = await client.get(path, headers={**other, "If-None-Match": tag})
    assert hidden.status_code == 404  # not yours: no tag says otherwise
