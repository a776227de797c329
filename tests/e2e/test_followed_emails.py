"""The Followed emails page in a browser: the grid over GET /api/messages lists messages
made through the API, sorts by the API's sorts (aria-sort on the sorted header), pages by
continuation token, filters by follow state, and a row opens its message, by mouse and by
keyboard."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from shared.engagement.fold import fold_cycle
from tests.e2e.conftest import (
    LiveApp,
    SellerApi,
    assert_accessible,
    assert_no_console_errors,
    be_the_recipient,
    shoot,
    sign_in,
)

PIXEL = re.compile(r'src="(http://track\.test/t/o/[^"]+)"')
CUSTOMER = "pat.customer@fabrikam.example"


def subjects(page: Page) -> list[str]:
    return page.locator("tbody tr td:first-child a").all_inner_texts()


def test_lists_sorts_pages_and_filters_messages(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    api.contact(CUSTOMER, "Pat Customer")
    sent = [api.compose(to=[CUSTOMER], subject=f"Quote {n:02}") for n in range(1, 31)]
    blocked = api.compose(to=["stranger@elsewhere.example"], subject="To a stranger")
    assert blocked["follow_state"] == "blocked"
    # Quote 07 opened twice and Quote 19 once, after the delivery window; then folded, as
    # the list shows folded numbers.
    live_app.clock.advance(600)
    for message, times in ((sent[6], 2), (sent[18], 1)):
        (pixel,) = PIXEL.findall(message["html"])
        for _ in range(times):
            assert be_the_recipient(live_app, pixel, person="mail").status_code == 200
            live_app.clock.advance(30)
    live_app.run(lambda s: fold_cycle(s, now=live_app.clock.advance(60), grace=s.grace))

    sign_in(page, live_app.base, email)
    expect(page.get_by_role("heading", name="Followed emails")).to_be_visible()
    table = page.get_by_role("table")
    expect(table.locator("tbody tr")).to_have_count(25)  # the default page size
    expect(table.locator("thead th[aria-sort]")).to_have_text(re.compile("Sent"))
    expect(table.locator("thead th[aria-sort]")).to_have_attribute("aria-sort", "descending")
    assert subjects(page)[:2] == ["Quote 30", "Quote 29"]  # newest first

    # Ten a page: Next, Next (the last: Next disabled), Previous.
    page.get_by_label("Rows per page").select_option("10")
    expect(table.locator("tbody tr")).to_have_count(10)
    expect(page).to_have_url(re.compile(r"limit=10"))
    first = subjects(page)
    assert first == [f"Quote {n:02}" for n in range(30, 20, -1)]
    pager = page.get_by_role("navigation", name="Pages of followed emails")
    pager.get_by_role("button", name="Next").click()
    expect(pager.get_by_text("Page 2")).to_be_visible()
    expect(table.locator("tbody tr").first).to_contain_text("Quote 20")
    second = subjects(page)
    assert second == [f"Quote {n:02}" for n in range(20, 10, -1)]
    pager.get_by_role("button", name="Next").click()
    expect(table.locator("tbody tr").first).to_contain_text("Quote 10")
    expect(pager.get_by_role("button", name="Next")).to_be_disabled()
    pager.get_by_role("button", name="Previous").click()
    expect(table.locator("tbody tr").first).to_contain_text("Quote 20")
    assert subjects(page) == second

    # Most opened first, then fewest: the sort header is a button, aria-sort follows it.
    opens = table.get_by_role("button", name="Opens")
    opens.click()
    header = table.locator("thead th", has=page.get_by_role("button", name="Opens"))
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(table.locator("tbody tr").first).to_contain_text("Quote 07")
    assert subjects(page)[:2] == ["Quote 07", "Quote 19"]
    first_row = table.locator("tbody tr").first
    expect(first_row.locator("td").nth(4)).to_have_text("2")
    expect(first_row.locator("td").nth(5)).not_to_have_text("—")  # last opened
    expect(page.get_by_role("table")).to_have_attribute("aria-busy", "false")
    assert_accessible(page)
    shoot(page, screenshots, "followed-emails")
    opens.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(table.locator("tbody tr").first).not_to_contain_text("Quote 07")
    for name in ("Sent", "Last opened", "Attachment views", "Link clicks", "Replies"):
        table.get_by_role("button", name=name).click()
        expect(table.locator("thead th[aria-sort]")).to_contain_text(name)
        expect(table.locator("tbody tr")).to_have_count(10)

    # Filter: the blocked message alone.
    page.get_by_label("Follow state").select_option("blocked")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text("To a stranger")
    expect(table.locator("tbody tr")).to_contain_text("Blocked")

    # A row opens its message: a click anywhere on it, or its link by keyboard.
    table.locator("tbody tr td").nth(1).click()
    expect(page).to_have_url(f"{live_app.base}/app/messages/{blocked['id']}")
    expect(page.get_by_role("heading", name="To a stranger")).to_be_visible()
    page.go_back()
    page.get_by_label("Follow state").select_option("followed")
    table.get_by_role("button", name="Sent").click()
    expect(table.locator("tbody tr").first).to_contain_text("Quote 30")
    link = page.get_by_role("link", name="Quote 30")
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_app.base}/app/messages/{sent[29]['id']}")
    assert_no_console_errors(page)
