"""The Compose page in a browser: each recipient's Follow Email preference as it is typed,
the template picker, a followed attachment, a reminder and the send-time advice in both
times; the message sent through the page is then read by its recipient, and its Message page
and an Assistant card change without a reload. The blocked flow: the reason, View
Preferences to the record, Retry Follow once the preference changed."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, Response, Route, expect

from shared.core.auth import ADMIN_ROLE, make_dev_token
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

PIXEL = re.compile(r'src="(http://track\.test/t/o/[^"]+)"')
CLICK = re.compile(r'href="(http://track\.test/t/c/[^"]+)"')
DOWNLOAD = re.compile(r'href="(http://track\.test/t/a/[^"]+)"')
TEMPLATE_HTML = (
    '<p>Hello,</p><p>Here is <a href="https://contoso.example/pricing">our pricing</a>.</p>'
)


PARIS = ZoneInfo("Europe/Paris")


def _customer(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@fabrikam.example"


def _wall_clock(iso: str, zone: ZoneInfo) -> str:
    """An instant as a datetime-local input shows it in `zone`."""
    return f"{datetime.fromisoformat(iso).astimezone(zone):%Y-%m-%dT%H:%M}"


def _advice_answers(page: Page) -> list[Response]:
    """The page's GET /api/advice answers, as they arrive."""
    found: list[Response] = []
    page.on("response", lambda r: found.append(r) if "/api/advice?" in r.url else None)
    return found


# Zones around the world: at any instant it is night in one of them (no two are 12 hours
# apart), where the advice is the next working day's 08:00 and holds still while the test
# runs (inside a workday it is "now, to the quarter hour", which moves on).
CITIES = {
    "America/Los_Angeles": "Los Angeles",
    "America/New_York": "New York",
    "Europe/London": "London",
    "Asia/Kolkata": "Mumbai",
    "Asia/Tokyo": "Tokyo",
    "Australia/Sydney": "Sydney",
}


def _night_zone(now: datetime) -> str:
    for zone in CITIES:
        hour = now.astimezone(ZoneInfo(zone)).hour
        if hour >= 18 or hour < 6:
            return zone
    raise AssertionError(f"no night anywhere at {now}")


def test_compose_a_followed_message_and_watch_it_engage(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    customer = _customer("ines")
    created = api.http.post(
        "/api/records/contact",
        json={
            "name": "Inès Customer",
            "emails": [customer],
            "address": {"city": "New York", "time_zone": "America/New_York"},
        },
    )
    assert created.status_code == 201, created.text
    assert api.http.put("/api/me", json={"time_zone": "Europe/Paris"}).status_code == 200
    template = api.http.post(
        "/api/templates",
        json={
            "name": f"Pricing {uuid.uuid4().hex[:6]}",
            "subject": "Our pricing",
            "html": TEMPLATE_HTML,
        },
    )
    assert template.status_code == 201, template.text

    sign_in(page, live_app.base, email, start="/app/compose")
    expect(page.get_by_role("heading", name="Compose")).to_be_visible()
    page.get_by_label("To", exact=True).fill(customer)
    recipient = page.locator(f"[data-recipient='{customer}']")
    expect(recipient).to_contain_text("May be followed")
    expect(recipient.get_by_role("link", name=re.compile("View Preferences"))).to_have_attribute(
        "href", f"/app/records/contact/{created.json()['id']}"
    )
    expect(page.locator("[data-follow-state]")).to_have_attribute("data-follow-state", "followed")

    # The template picker shows each template's rates; Use fills the subject and body.
    row = page.locator(f"[data-template='{template.json()['id']}']")
    expect(row).to_contain_text("—")  # no rate before its first send
    expect(page.get_by_role("columnheader", name="Open rate")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Reply rate")).to_be_visible()
    row.get_by_role("button", name=re.compile("^Use")).click()
    expect(page.get_by_label("Subject")).to_have_value("Our pricing")
    expect(page.get_by_label("Body")).to_have_value(re.compile("our pricing"))

    # A followed attachment, and a reminder.
    page.get_by_label("Add attachments").set_input_files(
        files=[{"name": "quote.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 quote"}]
    )
    switch = page.get_by_role("switch", name=re.compile("Followed quote.pdf"))
    expect(switch).to_be_checked()
    page.get_by_label("Remind me to follow up").check()
    page.get_by_label("Reminder", exact=True).fill("Call Inès about pricing")

    # Send later: the advice in the recipient's time and the seller's.
    answers = _advice_answers(page)
    page.get_by_role("button", name="Send later…").click()
    advice = page.locator("[data-advice]")
    expect(advice).to_contain_text("recipient's time (America/New_York)")
    expect(advice).to_contain_text("your time (Europe/Paris)")
    advice.get_by_role("button", name="Use the suggested time").click()
    advised = answers[-1].json()  # what the page was told (inside a workday it moves on)
    expect(page.get_by_label("Send at")).to_have_value(_wall_clock(advised["send_at"], PARIS))
    assert_accessible(page)
    shoot(page, screenshots, "compose", full_page=True)

    page.get_by_role("button", name="Send now").click()
    page.wait_for_url(re.compile(r"/app/messages/[a-z2-7]{26}$"))
    message_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name="Our pricing")).to_be_visible()
    expect(page.get_by_text("Call Inès about pricing")).to_be_visible()
    # The reminder's default time: three days on at 9:00 in the seller's zone, not the
    # browser's (UTC here).
    reminder = api.http.get(f"/api/messages/{message_id}").json()["reminder"]
    assert _wall_clock(reminder["at"], PARIS).endswith("T09:00")
    attachments = page.locator("section[aria-labelledby=attachments] tbody tr")
    expect(attachments).to_contain_text("quote.pdf")
    expect(attachments).to_contain_text("Yes")
    # The body as delivered, from GET /api/messages/{id}/body, in its sandbox.
    expect(page.frame_locator("iframe.body-frame").get_by_text("our pricing")).to_be_visible()
    body = api.http.get(f"/api/messages/{message_id}/body").json()["html"]

    # The Assistant in a second tab, open before anything happens.
    assistant = page.context.new_page()
    errors: list[str] = []
    assistant.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    assistant.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    assistant.console_errors = errors  # type: ignore[attr-defined]
    sign_in(assistant, live_app.base, email, start="/app/assistant")
    expect(assistant.get_by_role("heading", name="Assistant")).to_be_visible()
    expect(assistant.get_by_text("Nothing to act on.")).to_be_visible()

    with no_reload(page), no_reload(assistant):
        live_app.later(600)  # past the delivery window
        (pixel,) = PIXEL.findall(body)
        assert be_the_recipient(live_app, pixel, person="mail").status_code == 200
        live_app.clock.advance(20)
        (click,) = CLICK.findall(body)
        assert be_the_recipient(live_app, click, person="browser").status_code == 302
        live_app.clock.advance(20)
        (download,) = DOWNLOAD.findall(body)  # the followed attachment, as a tracked link
        assert be_the_recipient(live_app, download, person="browser").status_code == 302
        expect(page.locator("[data-kpi=opens]")).to_have_text("1")
        expect(page.locator("[data-kpi=link_clicks]")).to_have_text("1")
        expect(page.locator("[data-kpi=attachment_views]")).to_have_text("1")
        expect(page.locator("ol.timeline")).to_contain_text("Opened")
        expect(page.locator("ol.timeline")).to_contain_text("Link clicked")
        expect(page.locator("ol.timeline")).to_contain_text("Attachment opened")
        live_app.later(600)  # the fold: the first open raises the assistant's card
        card = assistant.locator(f"li.alert-card:has(a[href='/app/messages/{message_id}'])")
        expect(card).to_be_visible()
        expect(card).to_contain_text("Opened: Our pricing")
        expect(card).to_contain_text("New")
        expect(card.get_by_role("link", name="Inès Customer")).to_have_attribute(
            "href", f"/app/records/contact/{created.json()['id']}"
        )
    assert_accessible(assistant)
    shoot(assistant, screenshots, "assistant-first-open")
    page.evaluate("() => window.scrollTo(0, 0)")
    shoot(page, screenshots, "message-after-compose")

    # Snooze hides the card; the API agrees.
    card.get_by_role("button", name=re.compile("^Snooze")).click()
    expect(card).to_have_count(0)
    assert not [
        a for a in api.http.get("/api/alerts").json()["alerts"] if a["message_id"] == message_id
    ]
    assert_no_console_errors(page)
    assert_no_console_errors(assistant)


def test_blocked_then_retry_follow_once_the_preference_changes(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    customer = _customer("noah")
    created = api.http.post(
        "/api/records/contact",
        json={"name": "Noah Private", "emails": [customer], "follow_email": "do_not_allow"},
    )
    assert created.status_code == 201, created.text
    record = created.json()

    sign_in(page, live_app.base, email, start="/app/compose")
    page.get_by_label("To", exact=True).fill(customer)
    expect(page.locator("[data-follow-state]")).to_have_attribute("data-follow-state", "blocked")
    blocked = page.locator(".blocked")
    expect(blocked).to_contain_text("Follow Email is Do Not Allow")
    expect(page.locator(f"[data-recipient='{customer}']")).to_contain_text("Cannot be followed")
    page.get_by_label("Subject").fill("A private note")
    page.get_by_label("Body").fill("<p>Hello Noah</p>")
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(r"/app/compose\?draft="))
    expect(page.get_by_role("heading", name="Edit draft")).to_be_visible()
    expect(page.locator("[data-follow-state]")).to_have_attribute("data-follow-state", "blocked")
    expect(page.get_by_role("button", name="Retry Follow")).to_be_visible()
    assert_accessible(page)
    shoot(page, screenshots, "compose-blocked")

    # View Preferences opens the record.
    blocked.get_by_role("link", name=re.compile("View Preferences")).click()
    page.wait_for_url(f"**/app/records/contact/{record['id']}")
    page.go_back()
    expect(page.get_by_role("heading", name="Edit draft")).to_be_visible()

    # An admin allows following again; Retry Follow makes the draft followed.
    admin = make_dev_token(live_app.services.settings, "admin@contoso.example", roles=(ADMIN_ROLE,))
    allowed = api.http.patch(
        f"/api/records/contact/{record['id']}",
        json={"follow_email": "allow"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert allowed.status_code == 200, allowed.text
    page.get_by_role("button", name="Retry Follow").click()
    expect(page.locator("[data-follow-state]")).to_have_attribute("data-follow-state", "followed")
    expect(page.get_by_text("Followed now.")).to_be_visible()
    draft_id = page.url.rsplit("=", 1)[1]
    assert api.http.get(f"/api/messages/{draft_id}").json()["follow_state"] == "followed"
    assert_no_console_errors(page)


def test_send_later_schedules_it_at_the_advised_time(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    customer = _customer("kai")
    zone = _night_zone(live_app.clock.now())
    created = api.http.post(
        "/api/records/contact",
        json={
            "name": "Kai Customer",
            "emails": [customer],
            "address": {"city": CITIES[zone], "time_zone": zone},
        },
    )
    assert created.status_code == 201, created.text
    assert api.http.put("/api/me", json={"time_zone": "Europe/Paris"}).status_code == 200

    sign_in(page, live_app.base, email, start="/app/compose")
    page.get_by_label("To", exact=True).fill(customer)
    expect(page.locator(f"[data-recipient='{customer}']")).to_contain_text("May be followed")
    page.get_by_label("Subject").fill("Next week's visit")
    page.get_by_label("Body").fill("<p>Hello Kai</p>")
    page.get_by_role("button", name="Send later…").click()
    advice = page.locator("[data-advice]")
    expect(advice).to_contain_text(f"recipient's time ({zone})")
    advised = api.http.get("/api/advice", params={"to": customer}).json()
    local = datetime.fromisoformat(advised["local_time"])
    assert f"{local:%H:%M}" == "08:00"  # the night's advice: the next working day's start
    expect(advice.locator("[data-time=recipient]")).to_contain_text(
        f"{local:%a}, {local:%b} {local.day}, 8:00 AM"
    )
    paris = datetime.fromisoformat(advised["send_at"]).astimezone(PARIS)
    expect(advice.locator("[data-time=seller]")).to_contain_text(
        f"{paris:%a}, {paris:%b} {paris.day}, {paris.hour % 12 or 12}:{paris:%M} {paris:%p}"
    )
    advice.get_by_role("button", name="Use the suggested time").click()
    page.get_by_role("button", name="Schedule").click()
    page.wait_for_url(re.compile(r"/app/messages/[a-z2-7]{26}$"))
    view = api.http.get(f"/api/messages/{page.url.rsplit('/', 1)[1]}").json()
    assert view["status"] == "scheduled"
    assert datetime.fromisoformat(view["send_at"]) == datetime.fromisoformat(advised["send_at"])
    expect(page.get_by_role("heading", name="Next week's visit")).to_be_visible()
    assert_no_console_errors(page)


def test_the_template_picker_shows_rates_and_the_recommended_badge(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    names = [f"{kind} {uuid.uuid4().hex[:6]}" for kind in ("Winner", "Runner-up")]
    made = [
        api.http.post("/api/templates", json={"name": n, "subject": n, "html": TEMPLATE_HTML})
        for n in names
    ]
    assert all(m.status_code == 201 for m in made), [m.text for m in made]
    winner, runner_up = (m.json()["id"] for m in made)
    asked: list[str] = []

    def with_stats(route: Route) -> None:
        # A recommendation needs dozens of sends of two templates (statistics.MIN_SENT):
        # the real answer is given the stats, to show how the picker shows them.
        asked.append(route.request.url)
        answer = route.fetch()
        listed = answer.json()
        for item in listed["items"]:
            if item["id"] == winner:
                item.update(
                    sent=48,
                    open_rate=0.42,
                    reply_rate=0.125,
                    recommended=True,
                    why="best reply rate",
                )
            elif item["id"] == runner_up:
                item.update(sent=40, open_rate=0.2, reply_rate=0.05, recommended=False)
        route.fulfill(response=answer, body=json.dumps(listed))

    page.route(re.compile(r"/api/templates(\?.*)?$"), with_stats)
    sign_in(page, live_app.base, email, start="/app/compose")
    row = page.locator(f"[data-template='{winner}']")
    expect(row.locator("td").nth(0)).to_have_text("42%")
    expect(row.locator("td").nth(1)).to_have_text("13%")
    expect(row.locator("td").nth(2)).to_have_text("48")
    expect(row).to_contain_text("Recommended")
    other = page.locator(f"[data-template='{runner_up}']")
    expect(other.locator("td").nth(0)).to_have_text("20%")
    expect(other.locator("td").nth(1)).to_have_text("5%")
    expect(other).not_to_contain_text("Recommended")
    assert all("sort=recommended" in url and "order=desc" in url for url in asked), asked
    assert_accessible(page)
    page.locator("section[aria-labelledby=templates]").screenshot(
        path=screenshots / "compose-templates.png", animations="disabled"
    )
