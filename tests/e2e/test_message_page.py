"""The Message page in a browser: status, KPI tiles, charts, links, attachments, timeline,
reminder and preferences; engagement that arrives while the page is open shows without a
reload; "Show all events" lists each event with its class and reasons; the delivered body
shows in a sandbox that loads nothing."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Locator, Page, Route, expect

from tests.e2e.conftest import (
    LiveApp,
    SellerApi,
    assert_accessible,
    assert_no_console_errors,
    be_the_recipient,
    no_reload,
    shoot,
    sign_in,
)
from tests.utils.factories import attachment

PIXEL = re.compile(r'src="(http://track\.test/t/o/[^"]+)"')
CLICK = re.compile(r'href="(http://track\.test/t/c/[^"]+)"')
DOWNLOAD = re.compile(r'href="(http://track\.test/t/a/[^"]+)"')
CUSTOMER = "robin.customer@fabrikam.example"


def tile(page: Page, name: str) -> Locator:
    return page.locator(f"[data-kpi={name}]")


def test_new_engagement_shows_without_a_reload(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    api.contact(CUSTOMER, "Robin Customer")
    remind_at = (live_app.clock.now() + timedelta(days=3)).isoformat()
    sent = api.compose(
        to=[CUSTOMER],
        subject="Your quote, Robin",
        attachments=[attachment("quote.pdf")],
        reminder={"title": "Call Robin", "condition": "no_reply_by", "at": remind_at},
    )
    assert sent["follow_state"] == "followed"
    # Times show in the seller's own time zone (GET /api/me), not the browser's (UTC here).
    assert api.http.put("/api/me", json={"time_zone": "Asia/Tokyo"}).status_code == 200

    sign_in(page, live_app.base, email, start=f"/app/messages/{sent['id']}")
    expect(page.get_by_role("heading", name="Your quote, Robin")).to_be_visible()
    expect(page.get_by_text("Times in Asia/Tokyo")).to_be_visible()
    tokyo = datetime.fromisoformat(sent["sent_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    shown = f"{tokyo:%b} {tokyo.day}, {tokyo.year}, {tokyo.hour % 12 or 12}:{tokyo:%M} {tokyo:%p}"
    expect(page.locator(".facts time")).to_have_text(shown)
    expect(tile(page, "opens")).to_have_text("0")
    for name in ("link_clicks", "attachment_views", "replies"):
        expect(tile(page, name)).to_have_text("0")
    timeline = page.locator("ol.timeline")
    expect(timeline.locator("li")).to_have_count(1)
    expect(timeline).to_contain_text("Sent")
    expect(page.get_by_text("Call Robin")).to_be_visible()
    expect(page.locator("#reminder ~ p, section[aria-labelledby=reminder]")).to_contain_text(
        "pending"
    )
    preferences = page.locator("section[aria-labelledby=preferences]")
    expect(preferences.get_by_role("link", name="Robin Customer")).to_be_visible()
    expect(page.get_by_text("No opens yet.")).to_be_visible()
    links = page.locator("section[aria-labelledby=links] tbody tr")
    expect(links).to_have_count(2)
    expect(page.locator("section[aria-labelledby=attachments] tbody tr")).to_contain_text(
        "quote.pdf"
    )

    # The customer reads it later in Outlook and follows a link in a browser: the page shows
    # it on its own, within a poll or two.
    with no_reload(page):
        live_app.later(600)
        (pixel,) = PIXEL.findall(sent["html"])
        clicks = CLICK.findall(sent["html"])
        (download,) = DOWNLOAD.findall(sent["html"])
        assert be_the_recipient(live_app, pixel, person="mail").status_code == 200
        live_app.clock.advance(20)
        assert be_the_recipient(live_app, clicks[0], person="browser").status_code == 302
        live_app.clock.advance(20)
        assert be_the_recipient(live_app, download, person="browser").status_code == 302
        expect(tile(page, "opens")).to_have_text("1", timeout=20_000)
        expect(tile(page, "link_clicks")).to_have_text("1", timeout=20_000)
        expect(tile(page, "attachment_views")).to_have_text("1", timeout=20_000)
    expect(page.locator(".tile", has=tile(page, "opens"))).to_contain_text("first")
    expect(timeline).to_contain_text("Opened")
    expect(timeline).to_contain_text("Link clicked")
    expect(timeline).to_contain_text("Attachment opened")
    expect(links.first.locator("td").last).to_have_text("1")
    charts = page.locator("canvas[role=img]")
    expect(charts).to_have_count(2)
    expect(charts.first).to_have_attribute("aria-label", re.compile(r"1 counted"))
    expect(charts.nth(1)).to_have_attribute("aria-label", re.compile(r"People 1"))

    # Every event, with who made it and why.
    show = page.get_by_role("button", name="Show all events")
    show.click()
    expect(page.get_by_role("button", name="Hide the events")).to_have_attribute(
        "aria-expanded", "true"
    )
    history = page.get_by_role("table", name=re.compile("Every event"))
    expect(history.locator("tbody tr")).to_have_count(3)
    opened = history.locator("tbody tr").last  # newest first: the open came first
    expect(opened.locator("td").nth(1)).to_have_text("Opened")
    expect(opened).to_contain_text("People")
    expect(opened).to_contain_text("Yes")
    expect(opened.locator("ul.reasons li").first).to_be_visible()
    assert_accessible(page)
    page.locator("section[aria-labelledby=timeline]").screenshot(
        path=screenshots / "message-timeline.png", animations="disabled"
    )
    page.evaluate("() => window.scrollTo(0, 0)")
    shoot(page, screenshots, "message")
    assert_no_console_errors(page)


def test_the_body_shows_in_a_sandbox_that_loads_nothing(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    api.contact(CUSTOMER)
    sent = api.compose(to=[CUSTOMER], subject="A body with a pixel")
    pixel_path = "/t/o/e2e-pixel.gif"
    body = (
        '<p style="color: #a40e26">Hello Robin</p>'
        f'<img src="{live_app.base}{pixel_path}" alt="">'
        "<script>window.parent.__ran = true;</script>"
    )

    def with_body(route: Route) -> None:
        # A body with a pixel of this very app and a script in it (GET /api/messages/{id}/body
        # answers it as stored), to show that framing it loads and runs neither.
        answer = route.fetch()
        stored = answer.json()
        assert stored["id"] == sent["id"]
        stored["html"] = body
        route.fulfill(response=answer, body=json.dumps(stored))

    page.route(re.compile(rf"/api/messages/{sent['id']}/body$"), with_body)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url))
    sign_in(page, live_app.base, email, start=f"/app/messages/{sent['id']}")
    frame = page.locator("iframe.body-frame")
    expect(frame).to_have_attribute("sandbox", "")
    expect(page.frame_locator("iframe.body-frame").get_by_text("Hello Robin")).to_be_visible()
    page.wait_for_timeout(500)
    assert not [u for u in fetched if pixel_path in u]  # showing the body is not an open
    assert page.evaluate("() => window.__ran") is None
    assert_accessible(page)
    page.locator("section[aria-labelledby=body]").screenshot(
        path=screenshots / "message-body.png", animations="disabled"
    )
    # The pixel and the script are taken out before framing: no refusal to report either.
    assert_no_console_errors(page)


def test_a_message_that_is_not_yours_is_not_found(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    _, api = seller
    api.contact(CUSTOMER)
    theirs = api.compose(to=[CUSTOMER], subject="Someone else's")
    sign_in(
        page, live_app.base, "another.seller@contoso.example", start=f"/app/messages/{theirs['id']}"
    )
    expect(page.get_by_role("heading", name="Message not found")).to_be_visible()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Error 404")
    expect(alert).to_contain_text("no such message")
    assert_accessible(page)
    shoot(page, screenshots, "message-not-found")
    assert_no_console_errors(page, "404")
