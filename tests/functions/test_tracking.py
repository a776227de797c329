"""The anonymous tracking endpoints, on Azurite."""

from __future__ import annotations

import asyncio
import re
from email import message_from_bytes

import httpx
import pytest

from functions.http_app import create_app
from functions.routes.tracking import PIXEL_GIF
from shared.bootstrap import build_services
from shared.core.ids import new_message_id
from shared.core.services import Services
from shared.core.settings import Settings
from shared.engagement.fold import fold_cycle
from shared.tracking.tokens import TrackingRef
from tests.conftest import TRACKING_BASE, Clock
from tests.utils.azurite import ACCOUNT, KEY, free_port
from tests.utils.factories import attachment, compose
from tests.utils.storage import event_blobs

PIXEL = re.compile(r'src="http://track\.test(/t/o/[^"]+)"')
CLICK = re.compile(r'href="http://track\.test(/t/c/[^"]+)"')
DOWNLOAD = re.compile(r'href="http://track\.test(/t/a/[^"]+)"')


def test_pixel_is_the_43_byte_transparent_gif() -> None:
    assert len(PIXEL_GIF) == 43
    assert PIXEL_GIF.startswith(b"GIF89a\x01\x00\x01\x00")


async def view(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> dict:  # type: ignore[type-arg]
    response = await client.get(f"/api/messages/{message_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_pixel_records_one_event_with_one_write_and_no_cache(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    sent = await compose(client, auth)
    (pixel,) = PIXEL.findall(sent["html"])
    response = await client.get(
        pixel,
        headers={
            "User-Agent": "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Mobile/15E148",
            "X-Forwarded-For": "198.51.100.77:5000",
        },
    )
    assert response.status_code == 200
    assert response.content == PIXEL_GIF
    assert response.headers["content-type"] == "image/gif"
    assert "no-store" in response.headers["cache-control"]
    (blob,) = await event_blobs(services, sent["id"])
    properties = await services.store.interactions.get_blob_client(blob).get_blob_properties()
    assert properties.metadata["ip"] == "198.51.100.0"
    assert (await view(client, auth, sent["id"]))["kpis"]["devices"] == {"tablet": 1}


@pytest.mark.parametrize(
    "mangle",
    [lambda t: t[:-8] + "AAAAAAAA.gif", lambda t: "nothing", lambda t: t.replace("/o/", "/o/x")],
)
async def test_pixel_with_a_bad_token_answers_the_gif_and_records_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, mangle: object
) -> None:
    sent = await compose(client, auth)
    (pixel,) = PIXEL.findall(sent["html"])
    bad = mangle(pixel)  # type: ignore[operator]
    path = bad if bad.startswith("/") else f"/t/o/{bad}"
    response = await client.get(path)
    assert response.status_code == 200
    assert response.content == PIXEL_GIF
    assert await event_blobs(services, sent["id"]) == []


async def test_a_click_token_used_as_pixel_records_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    sent = await compose(client, auth)
    click = CLICK.findall(sent["html"])[0]
    response = await client.get(click.replace("/t/c/", "/t/o/"))
    assert response.content == PIXEL_GIF
    assert await event_blobs(services, sent["id"]) == []


async def test_storage_down_pixel_answers_the_gif_and_click_a_plain_page() -> None:
    closed = free_port()  # nothing listens there
    dead = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{closed}/{ACCOUNT};TableEndpoint=http://127.0.0.1:{closed}/{ACCOUNT};"
        f"QueueEndpoint=http://127.0.0.1:{closed}/{ACCOUNT};"
    )
    down = build_services(Settings(storage_connection_string=dead, tracking_base_url=TRACKING_BASE))
    token = down.signer.sign(TrackingRef("open", new_message_id("x@contoso.example"), 0))
    transport = httpx.ASGITransport(app=create_app(lambda: down))
    click = down.signer.sign(TrackingRef("click", new_message_id("x@contoso.example"), 0))
    async with httpx.AsyncClient(transport=transport, base_url=TRACKING_BASE) as client:
        response = await client.get(f"/t/o/{token}.gif")
        clicked = await client.get(f"/t/c/{click}")
    await down.store.close()
    assert response.status_code == 200
    assert response.content == PIXEL_GIF
    assert clicked.status_code == 503
    assert "location" not in clicked.headers
    assert clicked.headers["content-type"].startswith("text/plain")


async def test_click_redirects_to_the_exact_target_and_counts_per_link(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    html = (
        "<html><body>"
        '<a href="https://contoso.example/p?a=1&amp;b=%2Fx&amp;copy=2">one</a>'
        '<a href="https://bücher.example/straße?q=ä">two</a>'
        '<a href="//cdn.contoso.example/file">three</a>'
        "</body></html>"
    )
    sent = await compose(client, auth, html=html)
    clicks = CLICK.findall(sent["html"])
    locations = []
    clock.advance(600)  # the reader, after the delivery window, a link now and then
    for link in clicks:
        response = await client.get(link)
        assert response.status_code == 302
        locations.append(response.headers["location"])
        clock.advance(40)
    await client.get(clicks[0])
    assert locations == [
        "https://contoso.example/p?a=1&b=%2Fx&copy=2",
        "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4",
        "https://cdn.contoso.example/file",
    ]
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    shown = await view(client, auth, sent["id"])
    assert [link["clicks"] for link in shown["links"]] == [2, 1, 1]
    assert shown["kpis"]["link_clicks"] == 4
    assert len(await event_blobs(services, sent["id"])) == 4


@pytest.mark.parametrize(
    "forge",
    [
        lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),
        lambda t: "/t/c/dev1." + "A" * 44,
        lambda t: "/t/c/https://evil.example/",
        lambda t: t + "?url=https://evil.example/",
        lambda t: "/t/c/",
    ],
)
async def test_bad_click_link_is_a_plain_404_and_never_a_redirect(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, forge: object
) -> None:
    sent = await compose(client, auth)
    link = CLICK.findall(sent["html"])[0]
    forged = forge(link)  # type: ignore[operator]
    response = await client.get(forged)
    if forged.startswith(link + "?"):  # extra parameters are ignored: still the seller's link
        assert response.headers["location"].startswith("https://contoso.example/")
        return
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/plain")
    assert await event_blobs(services, sent["id"]) == []


async def test_a_valid_token_past_the_last_link_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    sent = await compose(client, auth)
    token = services.signer.sign(TrackingRef("click", sent["id"], 2))  # the body has links 0 and 1
    response = await client.get(f"/t/c/{token}")
    assert response.status_code == 404
    assert "location" not in response.headers


async def test_attachment_link_records_a_view_and_gives_a_short_lived_download(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    content = bytes(range(256)) * 40
    sent = await compose(
        client,
        auth,
        attachments=[
            attachment("spec sheet.pdf", content),
            attachment("terms.pdf", b"t", followed=False),
        ],
    )
    (download,) = DOWNLOAD.findall(sent["html"])
    clock.advance(600)  # the reader, after the delivery window
    await client.get(PIXEL.findall(sent["html"])[0])
    clock.advance(30)
    response = await client.get(download)
    assert response.status_code == 302
    location = response.headers["location"]
    assert "se=" in location and "sp=r" in location
    async with httpx.AsyncClient() as storage:
        file = await storage.get(location)
        tampered = await storage.get(location.replace("/f0?", "/d1?"))
    assert file.status_code == 200
    assert file.content == content
    assert 'filename="spec sheet.pdf"' in file.headers["content-disposition"]
    assert tampered.status_code == 403  # the signature covers the blob name
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    shown = await view(client, auth, sent["id"])
    assert shown["kpis"]["attachment_views"] == 1
    assert [a["views"] for a in shown["attachments"]] == [1, None]
    bad = await client.get(download[:-4] + "AAAA")
    assert bad.status_code == 404 and "location" not in bad.headers


async def test_unfollowed_attachment_is_attached_to_the_delivered_message(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    sent = await compose(
        client, auth, attachments=[attachment("terms.pdf", b"%PDF terms", followed=False)]
    )
    assert DOWNLOAD.findall(sent["html"]) == []
    blob = await services.store.outbox.download_blob(f"{sent['id']}.eml")
    mime = message_from_bytes(await blob.readall())
    files = [part for part in mime.walk() if part.get_filename()]
    assert [(f.get_filename(), f.get_payload(decode=True)) for f in files] == [
        ("terms.pdf", b"%PDF terms")
    ]


async def test_opens_before_sending_are_not_counted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    draft = await compose(client, auth, send=False)
    assert draft["status"] == "draft" and draft["sent_at"] is None
    (pixel,) = PIXEL.findall(draft["html"])
    await client.get(pixel)  # the seller's own preview
    assert (await view(client, auth, draft["id"]))["kpis"]["opens"] == 0
    sent = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    await client.get(pixel)
    shown = await view(client, auth, draft["id"])
    assert shown["kpis"]["opens"] == 1
    assert shown["kpis"]["previews_not_counted"] == 1
    again = await client.post(f"/api/messages/{draft['id']}/send", headers=auth)
    assert again.status_code == 409


OUTLOOK_BUILD = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17"


async def test_200_concurrent_opens_are_exactly_200(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
) -> None:
    sent = await compose(client, auth)
    (pixel,) = PIXEL.findall(sent["html"])
    # 200 different clients at once (one client fetching 200 times is a flood: see
    # tests/functions/test_honest_numbers.py)
    responses = await asyncio.gather(
        *(
            client.get(pixel, headers={"User-Agent": f"{OUTLOOK_BUILD}{n}; Pro)"})
            for n in range(200)
        )
    )
    assert all(r.status_code == 200 and r.content == PIXEL_GIF for r in responses)
    assert len(await event_blobs(services, sent["id"])) == 200
    assert (await view(client, auth, sent["id"]))["kpis"]["opens"] == 200  # live, before folding
    now = clock.advance(services.settings.fold_grace_seconds + 20)
    await asyncio.gather(  # two cycles racing
        fold_cycle(services, now=now, grace=services.grace),
        fold_cycle(services, now=now, grace=services.grace),
    )
    await fold_cycle(services, now=now, grace=services.grace)  # a doubled timer
    entity = await services.store.messages.get_entity(sent["id"][:8], sent["id"])
    assert entity["opens"] == 200
    shown = await view(client, auth, sent["id"])
    assert shown["kpis"]["opens"] == 200
    assert shown["kpis"]["first_opened_at"] <= shown["kpis"]["last_opened_at"]
    full = (await client.get(f"/api/messages/{sent['id']}?history=full", headers=auth)).json()
    assert len([h for h in full["history"] if h["event"] == "open"]) == 200
    listed = (await client.get("/api/messages?sort=opens&limit=1", headers=auth)).json()
    assert listed["items"][0]["id"] == sent["id"] and listed["items"][0]["opens"] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/t/o/abc/def",  # a token a mail client mangled with a "/"
        "/t/o/abc/def.gif",
        "/t/o/",
        "/t/o",
        "/t/o/%2F%2Fevil.example",
        "/t/o/" + "x" * 3000,
    ],
)
async def test_the_pixel_answers_the_gif_for_anything_under_its_path(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.content == PIXEL_GIF and response.headers["content-type"] == "image/gif"


@pytest.mark.parametrize(
    "path", ["/t", "/t/", "/t/c", "/t/c/", "/t/a/", "/t/x/y", "/t/c/a/b", "/api/messages/"]
)
async def test_no_path_redirects_to_the_host_the_request_named(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 404, (path, response.status_code)
    assert "location" not in response.headers
    assert "evil.example" not in response.text
