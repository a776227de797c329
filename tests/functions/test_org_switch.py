"""Turning email engagement off for the organisation, and on again."""

from __future__ import annotations

import re

import httpx

from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.services import Services
from tests.utils.factories import HTML, attachment, compose
from tests.utils.storage import event_blobs


async def test_switched_off_records_nothing_but_links_still_work(
    client: httpx.AsyncClient, auth: dict[str, str], services: Services
) -> None:
    admin = {
        "Authorization": f"Bearer {make_dev_token(services.settings, 'it@contoso.example', roles=(ADMIN_ROLE,))}"
    }
    assert (
        await client.put("/api/admin/engagement", json={"enabled": False}, headers=auth)
    ).status_code == 403
    sent = await compose(client, auth, attachments=[attachment()])
    html = sent["html"]
    pixel = re.search(r'src="http://track\.test(/t/o/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    link = re.search(r'href="http://track\.test(/t/c/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    download = re.search(r'href="http://track\.test(/t/a/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    await client.get(pixel)
    try:
        off = await client.put("/api/admin/engagement", json={"enabled": False}, headers=admin)
        assert off.status_code == 200 and off.json() == {"enabled": False}
        assert (await client.get(pixel)).status_code == 200
        clicked = await client.get(link)
        assert clicked.status_code == 302 and clicked.headers["location"].startswith(
            "https://contoso.example/"
        )
        assert (await client.get(download)).status_code == 302
        assert len(await event_blobs(services, sent["id"])) == 1  # only the open from before
        unfollowed = await compose(client, auth)
        assert unfollowed["follow_state"] == "not_followed" and unfollowed["html"] == HTML
        assert "turned off" in unfollowed["follow_reason"]
        shown = (await client.get(f"/api/messages/{sent['id']}", headers=auth)).json()
        assert shown["kpis"]["opens"] == 1  # what was collected stays
    finally:
        on = await client.put("/api/admin/engagement", json={"enabled": True}, headers=admin)
        assert on.json() == {"enabled": True}
    await client.get(pixel)
    assert len(await event_blobs(services, sent["id"])) == 2
    assert (await client.get("/api/admin/engagement", headers=admin)).json() == {"enabled": True}
