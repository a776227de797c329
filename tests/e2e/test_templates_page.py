"""The Templates page in a browser: the grid over GET /api/templates shows each template's
open rate, reply rate, email count and the Recommended badge on the one the statistics
recommend, sorts by the API's sorts; a template is created and edited with its errors shown
next to the field the API names, and previewed for a chosen record in a sandboxed frame."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from shared.core.services import Services
from shared.templates import library as template_library
from tests.e2e.conftest import (
    LiveApp,
    SellerApi,
    assert_accessible,
    assert_no_console_errors,
    shoot,
    sign_in,
)


@pytest.fixture
def create_template(
    seller: tuple[str, SellerApi],
) -> Iterator[Callable[[str], dict[str, Any]]]:
    """Makes templates through the API, and archives them afterwards: templates are the
    organisation's, and a recommended one left behind would change what other tests of the
    session see recommended."""
    _, api = seller
    made: list[str] = []

    def create(name: str) -> dict[str, Any]:
        response = api.http.post(
            "/api/templates", json={"name": name, "subject": f"About {name}", "html": "<p>Hi</p>"}
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        made.append(created["id"])
        return created

    yield create
    for template_id in made:
        assert api.http.delete(f"/api/templates/{template_id}").status_code == 204


def count(live: LiveApp, template_id: str, sent: int, opened: int, replied: int) -> None:
    """Messages counted for the template as the send, fold and reply hooks count them."""

    async def mark(services: Services) -> None:
        for what, times in (("sent", sent), ("opened", opened), ("replied", replied)):
            for n in range(times):
                await template_library.mark(services.store, template_id, f"m{n:04d}", what)  # type: ignore[arg-type]

    live.run(mark)


def row_of(page: Page, name: str) -> Any:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))


def test_grid_shows_rates_counts_and_the_recommended_badge(
    page: Page,
    live_app: LiveApp,
    seller: tuple[str, SellerApi],
    create_template: Callable[[str], dict[str, Any]],
    screenshots: Path,
) -> None:
    email, api = seller
    tag = uuid.uuid4().hex[:6]
    best = create_template(f"Spring offer {tag}")
    plain = create_template(f"Plain follow-up {tag}")
    fresh = create_template(f"Brand new {tag}")
    # Both over the 30 emails a recommendation needs; the best clearly ahead on either metric.
    count(live_app, best["id"], sent=60, opened=57, replied=40)
    count(live_app, plain["id"], sent=60, opened=21, replied=3)
    listed = {t["id"]: t for t in api.http.get("/api/templates").json()["items"]}
    assert listed[best["id"]]["recommended"] and not listed[plain["id"]]["recommended"]

    sign_in(page, live_app.base, email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Templates", exact=True)).to_be_visible()
    table = page.get_by_role("table")
    expect(table).to_have_attribute("aria-busy", "false")
    # Recommended first (the default sort), with its badge and its numbers.
    header = table.locator("thead th[aria-sort]")
    expect(header).to_contain_text("Recommended")
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(table.locator("tbody tr").first).to_contain_text(best["name"])
    cells = row_of(page, best["name"]).locator("td")
    expect(cells.nth(1)).to_have_text("95%")  # open rate, 57 of 60
    expect(cells.nth(2)).to_have_text("67%")  # reply rate, 40 of 60
    expect(cells.nth(3)).to_have_text("Recommended")
    expect(cells.nth(4)).to_have_text("60")  # email count
    expect(row_of(page, plain["name"]).locator("td").nth(3)).not_to_contain_text("Recommended")
    expect(row_of(page, fresh["name"]).locator("td").nth(3)).to_have_text("not sent yet")
    expect(row_of(page, fresh["name"]).locator("td").nth(1)).to_have_text("—")
    expect(page.get_by_text(f"{best['name']} is recommended")).to_be_visible()
    expect(table.locator(".badge", has_text="Recommended")).to_have_count(1)
    assert_accessible(page)
    shoot(page, screenshots, "templates")

    # The API's sorts: open rate (highest first, then lowest), email count, name.
    table.get_by_role("button", name="Open rate").click()
    open_header = table.locator("thead th", has=page.get_by_role("button", name="Open rate"))
    expect(open_header).to_have_attribute("aria-sort", "descending")
    expect(page).to_have_url(re.compile(r"sort=open_rate"))
    names = table.locator("tbody tr td:first-child a")
    expect(names.filter(has_text=tag).first).to_have_text(best["name"])
    ours = [n for n in names.all_inner_texts() if n.endswith(tag)]
    assert ours.index(best["name"]) < ours.index(plain["name"])
    table.get_by_role("button", name="Email count").click()
    expect(table.locator("thead th[aria-sort]")).to_contain_text("Email count")
    table.get_by_role("button", name="Name").click()
    expect(table.locator("thead th[aria-sort]")).to_have_attribute("aria-sort", "ascending")
    expect(names.filter(has_text=tag).first).to_have_text(fresh["name"])  # "Brand new ..."
    ours = [n for n in names.all_inner_texts() if n.endswith(tag)]
    assert ours == sorted(ours, key=str.casefold)

    # Paged here (the API answers every template at once): ten a page.
    page.get_by_label("Rows per page").select_option("10")
    expect(page).to_have_url(re.compile(r"limit=10"))
    pager = page.get_by_role("navigation", name="Pages of templates")
    expect(pager.get_by_text("Page 1")).to_be_visible()
    assert table.locator("tbody tr").count() <= 10
    expect(pager.get_by_role("button", name="Previous")).to_be_disabled()

    # A row opens the template.
    row_of(page, best["name"]).locator("td").nth(4).click()
    expect(page).to_have_url(f"{live_app.base}/app/templates/{best['id']}")
    expect(page.get_by_role("heading", name=best["name"])).to_be_visible()
    expect(page.locator(".meta .badge", has_text="Recommended")).to_be_visible()
    assert_no_console_errors(page)


def test_create_and_edit_a_template_with_a_preview_for_a_record(
    page: Page, live_app: LiveApp, seller: tuple[str, SellerApi], screenshots: Path
) -> None:
    email, api = seller
    tag = uuid.uuid4().hex[:8]
    customer = f"dana.{tag}@northwind.example"
    api.contact(customer, f"Dana Buyer{tag}")
    account = api.http.post(
        "/api/records/account", json={"name": f"Northwind {tag}", "emails": [customer]}
    )
    assert account.status_code == 201, account.text

    sign_in(page, live_app.base, email, start="/app/templates")
    page.get_by_role("link", name="New template").click()
    expect(page.get_by_role("heading", name="New template")).to_be_visible()

    # Errors next to the field the API names: no name, then a field templates do not have.
    page.get_by_label("HTML", exact=True).fill("<p>Hi {{ recipient.shoe_size }}</p>")
    page.get_by_role("button", name="Create template").click()
    name_error = page.locator("#template-name-error")
    expect(name_error).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Name", exact=True).fill(f"Welcome {tag}")
    page.get_by_role("button", name="Create template").click()
    html_error = page.locator("#template-html-error")
    expect(html_error).to_contain_text("shoe_size")
    expect(name_error).to_have_count(0)
    expect(page.get_by_label("HTML", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("status").filter(has_text="Not saved")).to_be_visible()
    assert_accessible(page)

    # Previewed before it is saved, for the contact found by name.
    page.get_by_label("Subject").fill("For {{ recipient.full_name }}")
    page.get_by_label("HTML", exact=True).fill(
        "<h2>Hello {{ recipient.first_name }}</h2><p>From {{ sender.email }} to "
        "{{ recipient.company }}.</p>"
    )
    page.get_by_label("Find a record").fill(f"Buyer{tag}")
    record = page.get_by_label("Record", exact=True)
    expect(record.locator("option")).to_have_count(1)
    expect(record.locator("option").first).to_contain_text(f"Dana Buyer{tag} (Contact")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("[data-preview=subject]")).to_have_text(f"For Dana Buyer{tag}")
    frame = page.locator("iframe.body-frame")
    expect(frame).to_have_attribute("sandbox", "")
    body = page.frame_locator("iframe.body-frame")
    expect(body.get_by_role("heading", name="Hello Dana")).to_be_visible()
    expect(body.get_by_text(f"From {email} to Northwind {tag}.")).to_be_visible()

    page.get_by_role("button", name="Create template").click()
    expect(page).to_have_url(re.compile(r"/app/templates/[0-9a-f]{16}$"))
    template_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name=f"Welcome {tag}")).to_be_visible()
    saved = api.http.get(f"/api/templates/{template_id}").json()
    assert saved["subject"] == "For {{ recipient.full_name }}"

    # Edited: a bad subject is refused next to it; then saved, and previewed for the account.
    page.get_by_label("Subject").fill("{{ config }}")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#template-subject-error")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Subject").fill("News for {{ recipient.company }}")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.locator("#template-subject-error")).to_have_count(0)
    assert api.http.get(f"/api/templates/{template_id}").json()["subject"] == (
        "News for {{ recipient.company }}"
    )
    page.get_by_label("Find a record").fill(f"Northwind {tag}")
    expect(record.locator("option")).to_have_count(1)
    expect(record.locator("option").first).to_contain_text("(Account")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("[data-preview=subject]")).to_have_text(f"News for Northwind {tag}")
    expect(body.get_by_text(f"to Northwind {tag}.")).to_be_visible()
    assert_accessible(page)
    shoot(page, screenshots, "template-editor", full_page=True)

    # In the grid, not sent yet.
    page.get_by_role("link", name="Templates", exact=True).first.click()
    expect(row_of(page, f"Welcome {tag}").locator("td").nth(4)).to_have_text("0")
    assert_no_console_errors(page, "422")
