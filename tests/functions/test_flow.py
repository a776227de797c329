"""The newcomer's walk-through, end to end on Azurite: compose, open, click, download, read."""

from __future__ import annotations

import re

import httpx

from tests.utils.factories import attachment, compose, path_of

PIXEL = re.compile(r'src="(http://track\.test/t/o/[^"]+)"')
CLICK = re.compile(r'href="(http://track\.test/t/c/[^"]+)"')
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
DOWNLOAD = re.compile(r'href="(http://track\.test/t/a/[^"]+)"')


async def test_followed_message_engagement_is_read_back(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sent = await compose(
        client, auth, attachments=[attachment(), attachment("terms.pdf", b"terms", followed=False)]
    )
    assert sent["status"] == "sent" and sent["follow_state"] == "followed"
    html = sent["html"]
    (pixel,) = PIXEL.findall(html)
    clicks = CLICK.findall(html)
    (download,) = DOWNLOAD.findall(html)
    assert len(clicks) == 2

    ua = {"User-Agent": IPHONE}
    r = await client.get(path_of(pixel), headers=ua)
    assert (
        r.status_code == 200 and r.headers["content-type"] == "image/gif" and len(r.content) == 43
    )
    r = await client.get(path_of(clicks[0]), headers=ua)
    assert r.status_code == 302
    assert r.headers["location"] == "https://contoso.example/pricing?plan=pro&seats=5"
    r = await client.get(path_of(download), headers=ua)
    assert r.status_code == 302
    async with httpx.AsyncClient() as storage:
        file = await storage.get(r.headers["location"])
    assert file.status_code == 200 and file.content == b"%PDF-1.4 quote"

    view = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    kpis = view["kpis"]
    assert (kpis["opens"], kpis["link_clicks"], kpis["attachment_views"]) == (1, 1, 1)
    assert kpis["devices"] == {"mobile": 1}
    assert [link["clicks"] for link in view["links"]] == [1, 0]
    assert [a["views"] for a in view["attachments"]] == [1, None]
    assert {t["event"] for t in view["timeline"]} == {"sent", "open", "click", "attachment"}
