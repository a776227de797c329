"""The Assistant in a browser: a first open and a fired reminder appear as action cards while
the page is open (it polls GET /api/alerts with the answer's ETag), the reminder (high
priority) first, each linking to its message and its records; Dismiss and Snooze take a
card away, and the API agrees."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from shared.assistant.reminders import reminder_cycle
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


def test_cards_arrive_live_high_priority_first_and_are_dismissed_or_snoozed(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    customer = f"maya.{uuid.uuid4().hex[:8]}@fabrikam.example"
    record = api.contact(customer, "Maya Customer")
    remind_at = live_app.clock.now() + timedelta(hours=1)
    with_reminder = api.compose(
        to=[customer],
        subject="The contract",
        reminder={
            "title": "Call Maya about the contract",
            "condition": "no_reply_by",
            "at": remind_at.isoformat(),
        },
    )
    opened = api.compose(to=[customer], subject="Your quote, Maya")

    sign_in(page, live_app.base, email, start="/app/assistant")
    expect(page.get_by_role("heading", name="Assistant")).to_be_visible()
    expect(page.get_by_text("Nothing to act on.")).to_be_visible()
    cards = page.locator("ul.cards > li.alert-card")

    with no_reload(page):
        # Maya reads the quote in Outlook after the delivery window; the fold raises the card.
        live_app.later(600)
        (pixel,) = PIXEL.findall(opened["html"])
        assert be_the_recipient(live_app, pixel, person="mail").status_code == 200
        live_app.later(600)
        expect(cards).to_have_count(1)
        expect(cards.first).to_contain_text("Opened: Your quote, Maya")
        expect(cards.first).to_contain_text("Normal")
        expect(cards.first).to_contain_text("New")
        # The contract's reminder comes due without a reply: a high-priority card, on top.
        live_app.clock.advance(3600)
        report = live_app.run(reminder_cycle)
        assert report.fired == 1
        expect(cards).to_have_count(2)
        expect(cards.first).to_contain_text("Call Maya about the contract")
        expect(cards.first).to_contain_text("High priority")
        expect(cards.nth(1)).to_contain_text("Opened: Your quote, Maya")
        expect(page.get_by_role("status").filter(has_text="1 new card.")).to_be_visible()

    reminder = cards.filter(has_text="Call Maya about the contract")
    expect(reminder.get_by_role("link", name="the message")).to_have_attribute(
        "href", f"/app/messages/{with_reminder['id']}"
    )
    expect(reminder.get_by_role("link", name="Maya Customer")).to_have_attribute(
        "href", f"/app/records/contact/{record['id']}"
    )
    first_open = cards.filter(has_text="Opened: Your quote, Maya")
    expect(first_open.get_by_role("link", name="Open the message")).to_have_attribute(
        "href", f"/app/messages/{opened['id']}"
    )
    expect(first_open).to_contain_text("Outlook")
    assert_accessible(page)
    shoot(page, screenshots, "assistant")

    # Dismiss: gone for good.
    reminder.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(cards).to_have_count(1)
    expect(page.get_by_role("status").filter(has_text="dismissed")).to_be_visible()
    listed = api.http.get("/api/alerts").json()["alerts"]
    assert [a["message_id"] for a in listed] == [opened["id"]]

    # Snooze for a week: hidden until then. The browser's clock is set to the server's (the
    # tests move the server's forward), as a seller's computer agrees with the server.
    page.clock.set_system_time(live_app.clock.now())
    first_open.get_by_label("Snooze for").select_option("1 week")
    first_open.get_by_role("button", name=re.compile("^Snooze")).click()
    expect(cards).to_have_count(0)
    expect(page.get_by_text("Nothing to act on.")).to_be_visible()
    assert api.http.get("/api/alerts").json()["alerts"] == []
    assert_no_console_errors(page)
