"""The Records page in a browser: contacts, leads and accounts found by name and type, one
created from the page; a record's page with its Follow Email switch (a seller switches it off,
and may not switch an opt-out back on: disabled, saying why, while an admin may), and its
timeline: the followed messages sent to it with their KPIs, linking to the message, and an
Outlook item tracked to it (from the Graph stand-in), whose body opens in a sandboxed frame."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from devtools.graph_standin import GraphStandIn
from shared.core.services import Services
from shared.outlook import mailboxes
from shared.outlook.sync import sync_mailbox
from tests.e2e.conftest import (
    LiveApp,
    SellerApi,
    assert_accessible,
    assert_no_console_errors,
    new_seller,
    shoot,
    sign_in,
)

CATEGORY = "Tracked to Engagement"


def create(api: SellerApi, kind: str, name: str, address: str, **extra: Any) -> dict[str, Any]:
    response = api.http.post(
        f"/api/records/{kind}", json={"name": name, "emails": [address], **extra}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_search_records_and_switch_follow_email_off(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    tag = uuid.uuid4().hex[:8]
    contact = create(api, "contact", f"Quinn Zephyr{tag}", f"quinn.{tag}@zephyr.example")
    create(api, "lead", f"Zephyr{tag} Labs", f"hello.{tag}@zephyr-labs.example")
    create(api, "account", f"Zephyr{tag} Holdings", f"office.{tag}@zephyr.example")
    sent = api.compose(to=[contact["emails"][0]], subject=f"Proposal {tag}")
    assert sent["follow_state"] == "followed"

    sign_in(page, live_app.base, email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records").click()
    expect(page.get_by_role("heading", name="Records", exact=True)).to_be_visible()
    page.get_by_role("searchbox", name="Search").fill(f"zephyr{tag}")
    table = page.get_by_role("table")
    expect(page).to_have_url(re.compile(rf"q=zephyr{tag}"))
    expect(table.locator("tbody tr")).to_have_count(3)
    search = page.get_by_role("search")
    search.get_by_label("Type").select_option("lead")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text(f"Zephyr{tag} Labs")
    search.get_by_label("Type").select_option("")
    expect(table.locator("tbody tr")).to_have_count(3)
    row = table.locator("tbody tr", has_text=f"Quinn Zephyr{tag}")
    expect(row).to_contain_text("Contact")
    expect(row).to_contain_text("Allow")
    assert_accessible(page)
    shoot(page, screenshots, "records")

    # The record's page: Follow Email on, and the message sent to it with its KPIs.
    row.locator("td").nth(2).click()
    expect(page).to_have_url(f"{live_app.base}/app/records/contact/{contact['id']}")
    expect(page.get_by_role("heading", name=f"Quinn Zephyr{tag}")).to_be_visible()
    switch = page.get_by_role("switch", name="Follow Email")
    expect(switch).to_have_attribute("aria-checked", "true")
    expect(switch).to_be_enabled()
    timeline = page.locator(".record-timeline")
    entry = timeline.locator("li", has_text=f"Proposal {tag}")
    expect(entry).to_contain_text("Followed email")
    expect(entry.locator("dl.kpis")).to_contain_text("Opens")
    assert_accessible(page)
    shoot(page, screenshots, "record", full_page=True)

    # Switched off by the seller: then only an admin may switch it back on.
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch).to_be_disabled()
    expect(page.locator("#follow-email-why")).to_contain_text("Only an admin")
    expect(page.get_by_role("table", name=re.compile("Changes"))).to_contain_text("Do Not Allow")
    assert api.http.get(f"/api/records/contact/{contact['id']}").json()["follow_email"] == (
        "do_not_allow"
    )

    # The message's link opens it.
    entry.get_by_role("link", name=f"Proposal {tag}").click()
    expect(page).to_have_url(f"{live_app.base}/app/messages/{sent['id']}")
    assert_no_console_errors(page)


def test_an_opt_out_is_disabled_for_a_seller_and_an_admin_may_undo_it(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    tag = uuid.uuid4().hex[:8]
    lead = create(
        api, "lead", f"Opted Out{tag}", f"no.{tag}@optout.example", follow_email="do_not_allow"
    )
    assert lead["can_change_follow_email"] is False

    sign_in(page, live_app.base, email, start=f"/app/records/lead/{lead['id']}")
    switch = page.get_by_role("switch", name="Follow Email")
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(switch).to_be_disabled()
    why = page.locator("#follow-email-why")
    expect(why).to_contain_text("opted out")
    expect(why).to_contain_text("Only an admin")
    expect(switch).to_have_attribute("aria-describedby", re.compile("follow-email-why"))
    assert_accessible(page)
    shoot(page, screenshots, "record-opted-out")

    # An admin may allow it again.
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, live_app.base, new_seller(), admin=True, start=f"/app/records/lead/{lead['id']}")
    switch = page.get_by_role("switch", name="Follow Email")
    expect(switch).to_be_enabled()
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    assert api.http.get(f"/api/records/lead/{lead['id']}").json()["follow_email"] == "allow"
    assert_no_console_errors(page)


def test_create_a_record_from_the_page(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi]
) -> None:
    email, api = seller
    tag = uuid.uuid4().hex[:8]
    sign_in(page, live_app.base, email, start="/app/records")
    page.get_by_text("Create a contact, lead or account").click()
    page.locator("details").get_by_label("Type", exact=True).select_option("account")
    page.locator("#new-name").fill(f"Tailspin {tag}")
    page.locator("#new-email").fill("not an address")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#new-email-error")).to_be_visible()
    expect(page.locator("#new-email")).to_have_attribute("aria-invalid", "true")
    page.locator("#new-email").fill(f"buy.{tag}@tailspin.example")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/app/records/account/"))
    expect(page.get_by_role("heading", name=f"Tailspin {tag}")).to_be_visible()
    found = api.http.get("/api/records", params={"email": f"buy.{tag}@tailspin.example"})
    assert [r["type"] for r in found.json()["records"]] == ["account"]
    assert_no_console_errors(page, "422")


def test_timeline_shows_a_tracked_outlook_item_with_its_body_in_a_sandbox(
    page: Page, graph_live_app: LiveApp, graph_standin: GraphStandIn, screenshots: Path
) -> None:
    email = new_seller()
    graph_standin.add_mailbox(email)
    graph_live_app.run(lambda s: mailboxes.enrol(s, email, []))
    api = SellerApi(graph_live_app, email)
    tag = uuid.uuid4().hex[:8]
    address = f"lead-{tag}@northwind.example"
    lead = create(api, "lead", f"Northwind {tag}", address)
    sent = api.compose(to=[address], subject=f"Quote {tag}")
    assert sent["status"] == "sent" and sent["follow_state"] == "followed"
    graph_live_app.run(lambda s: sync_mailbox(s, email))  # the baseline
    graph_standin.deliver(
        email,
        subject=f"Pricing question {tag}",
        body_html="<p>How much for 5 seats?</p><img src='https://example.invalid/p.gif' alt=''>",
        sender=address,
        to=[email],
        categories=[CATEGORY],
        received=graph_live_app.clock.now() + timedelta(minutes=5),
    )

    async def synced(services: Services) -> None:
        report = await sync_mailbox(services, email)
        assert report is not None and report.failed == 0

    graph_live_app.run(synced)
    api.close()

    sign_in(page, graph_live_app.base, email, start=f"/app/records/lead/{lead['id']}")
    timeline = page.locator(".record-timeline")
    item = timeline.locator("li", has_text=f"Pricing question {tag}")
    expect(item).to_contain_text("Outlook email")
    expect(item).to_contain_text(f"From {address}")
    expect(item).to_contain_text("tracked by the tracking category")
    # The followed message, and its copy in Sent Items tracked by its token.
    quote = timeline.locator("li", has_text=f"Quote {tag}")
    badge = page.locator(".badge")
    expect(quote.filter(has=badge.get_by_text("Followed email", exact=True))).to_have_count(1)
    copy = quote.filter(has=badge.get_by_text("Outlook email", exact=True))
    expect(copy).to_contain_text("the sent copy of a followed email")
    button = item.get_by_role("button", name="Show the body")
    button.click()
    expect(item.get_by_role("button", name="Hide the body")).to_have_attribute(
        "aria-expanded", "true"
    )
    frame = item.locator("iframe")
    expect(frame).to_have_attribute("sandbox", "")
    expect(item.frame_locator("iframe").get_by_text("How much for 5 seats?")).to_be_visible()
    assert_accessible(page)
    shoot(page, screenshots, "record-timeline", full_page=True)
    assert_no_console_errors(page)


def test_records_are_paged_by_the_apis_continuation(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi]
) -> None:
    email, api = seller
    tag = uuid.uuid4().hex[:8]
    for n in range(12):
        create(api, "contact", f"Pager{tag} {n:02d}", f"p{n:02d}.{tag}@pager.example")

    sign_in(page, live_app.base, email, start=f"/app/records?q=pager{tag}&limit=10")
    table = page.get_by_role("table")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(10)
    pager = page.get_by_role("navigation", name="Pages of records")
    pager.get_by_role("button", name="Next").click()
    expect(pager.get_by_text("Page 2")).to_be_visible()
    expect(rows).to_have_count(2)
    expect(pager.get_by_role("button", name="Next")).to_be_disabled()
    second = set(rows.locator("td:first-child").all_inner_texts())
    pager.get_by_role("button", name="Previous").click()
    expect(pager.get_by_text("Page 1")).to_be_visible()
    expect(rows).to_have_count(10)
    first = set(rows.locator("td:first-child").all_inner_texts())
    assert first | second == {f"Pager{tag} {n:02d}" for n in range(12)}
    assert_no_console_errors(page)
