"""The newcomer's walk-through, end to end on Azurite: compose, open, click, download, read."""

from __future__ import annotations

import re

import httpx

from shared.core.services import Services
from shared.engagement.fold import fold_cycle
from tests.conftest import Clock
from tests.utils.factories import attachment, compose, path_of

PIXEL = re.compile(r'src="(http://track\.test/t/o/[^"]+)"')
CLICK = re.compile(r'href="(http://track\.test/t/c/[^"]+)"')
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
SAFARI = (  # links and files open in Safari on the same phone
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
DOWNLOAD = re.compile(r'href="(http://track\.test/t/a/[^"]+)"')


async def test_followed_message_engagement_is_read_back(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services, clock: Clock
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

    clock.advance(600)  # the customer reads it after the delivery window, on their phone
    r = await client.get(path_of(pixel), headers={"User-Agent": IPHONE})
    assert (
        r.status_code == 200 and r.headers["content-type"] == "image/gif" and len(r.content) == 43
    )
    ua = {"User-Agent": SAFARI}
    clock.advance(20)
    r = await client.get(path_of(clicks[0]), headers=ua)
    assert r.status_code == 302
    assert r.headers["location"] == "https://contoso.example/pricing?plan=pro&seats=5"
    clock.advance(20)
    r = await client.get(path_of(download), headers=ua)
    assert r.status_code == 302
    async with httpx.AsyncClient() as storage:
        file = await storage.get(r.headers["location"])
    assert file.status_code == 200 and file.content == b"%PDF-1.4 quote"

    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    view = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
    kpis = view["kpis"]
    assert (kpis["opens"], kpis["link_clicks"], kpis["attachment_views"]) == (1, 1, 1)
    assert kpis["devices"] == {"mobile": 1}
    assert [link["clicks"] for link in view["links"]] == [1, 0]
    assert [a["views"] for a in view["attachments"]] == [1, None]
    assert {t["event"] for t in view["timeline"]} == {"sent", "open", "click", "attachment"}
