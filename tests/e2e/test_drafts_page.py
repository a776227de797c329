"""Drafts in a browser: listed at /app/drafts (GET /api/messages/drafts), reopened in the
compose form, edited there (PATCH /api/messages/{id}), scheduled (Send later) and deleted
after a confirmation (DELETE), each change checked through the API as well."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    LiveApp,
    SellerApi,
    assert_accessible,
    assert_no_console_errors,
    shoot,
    sign_in,
)


def _draft(api: SellerApi, customer: str, subject: str) -> dict[str, object]:
    return api.compose(to=[customer], subject=subject, html="<p>Hello</p>", send=False)


def test_a_draft_reopens_is_edited_and_deleted(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    customer = f"lena.{uuid.uuid4().hex[:8]}@fabrikam.example"
    api.contact(customer, "Lena Customer")
    first = _draft(api, customer, "Quote for Lena")
    second = _draft(api, customer, "Second thoughts")
    later = _draft(api, customer, "Later, please")
    sent = api.compose(to=[customer], subject="Already sent")

    sign_in(page, live_app.base, email, start="/app/drafts")
    expect(page.get_by_role("heading", name="Drafts")).to_be_visible()
    table = page.get_by_role("table", name="Your drafts")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table).not_to_contain_text(sent["subject"])  # type: ignore[arg-type]
    expect(table).to_contain_text(customer)
    assert_accessible(page)
    shoot(page, screenshots, "drafts")

    # Reopened in the compose form, with what was saved (its Message page links there too).
    page.goto(f"{live_app.base}/app/messages/{first['id']}")
    expect(page.get_by_role("link", name="Edit the draft")).to_have_attribute(
        "href", f"/app/compose?draft={first['id']}"
    )
    page.go_back()
    table.get_by_role("link", name="Quote for Lena").click()
    page.wait_for_url(f"**/app/compose?draft={first['id']}")
    expect(page.get_by_role("heading", name="Edit draft")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_have_value(customer)
    expect(page.get_by_label("Subject")).to_have_value("Quote for Lena")
    expect(page.get_by_label("Body")).to_have_value("<p>Hello</p>")

    # Edited: PATCH, and the list below the form shows the new subject.
    page.get_by_label("Subject").fill("Revised quote for Lena")
    page.get_by_label("Body").fill("<p>Hello Lena, the revised quote.</p>")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    stored = api.http.get(f"/api/messages/{first['id']}").json()
    assert (stored["status"], stored["subject"]) == ("draft", "Revised quote for Lena")
    written = api.http.get(f"/api/messages/{first['id']}/body").json()["original"]
    assert "the revised quote" in written
    page.reload()
    expect(page.get_by_label("Subject")).to_have_value("Revised quote for Lena")
    assert_accessible(page)

    # Deleted from the list below the form, after a confirmation; the form starts anew.
    drafts = page.get_by_role("table", name="Your drafts")
    expect(drafts.locator("tbody tr")).to_have_count(3)
    drafts.get_by_role("button", name="Delete “Revised quote for Lena”").click()
    confirm = page.get_by_role("group", name="Delete “Revised quote for Lena”?")
    confirm.get_by_role("button", name="Keep it").click()
    expect(confirm).to_have_count(0)
    assert api.http.get(f"/api/messages/{first['id']}").status_code == 200
    drafts.get_by_role("button", name="Delete “Revised quote for Lena”").click()
    assert_accessible(page)
    confirm.get_by_role("button", name=re.compile("^Yes, delete")).click()
    page.wait_for_url(re.compile(r"/app/compose$"))
    expect(page.get_by_role("heading", name="Compose")).to_be_visible()
    assert api.http.get(f"/api/messages/{first['id']}").status_code == 404

    # Another reopened and sent later (PATCH /api/messages/{id}/schedule): no longer a draft.
    page.get_by_role("link", name="All drafts").click()
    expect(page.get_by_role("heading", name="Drafts")).to_be_visible()
    table = page.get_by_role("table", name="Your drafts")
    expect(table.locator("tbody tr")).to_have_count(2)
    table.get_by_role("link", name="Later, please").click()
    expect(page.get_by_label("Subject")).to_have_value("Later, please")
    page.get_by_role("button", name="Send later…").click()
    send_at = (live_app.clock.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    page.get_by_label("Send at").fill(f"{send_at:%Y-%m-%dT%H:%M}")  # the seller's zone: UTC
    page.get_by_role("button", name="Schedule").click()
    page.wait_for_url(f"**/app/messages/{later['id']}")
    scheduled = api.http.get(f"/api/messages/{later['id']}").json()
    assert scheduled["status"] == "scheduled"
    assert datetime.fromisoformat(scheduled["send_at"]) == send_at

    # And one deleted from the Drafts page itself.
    page.goto(live_app.base + "/app/drafts")
    table = page.get_by_role("table", name="Your drafts")
    expect(table.locator("tbody tr")).to_have_count(1)
    table.get_by_role("button", name="Delete “Second thoughts”").click()
    page.get_by_role("button", name=re.compile("^Yes, delete")).click()
    expect(page.get_by_role("status").filter(has_text="Deleted “Second thoughts”.")).to_be_visible()
    expect(page.get_by_text("No drafts.")).to_be_visible()
    assert api.http.get(f"/api/messages/{second['id']}").status_code == 404
    assert api.http.get(f"/api/messages/{sent['id']}").status_code == 200
    assert_no_console_errors(page)
