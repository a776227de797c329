"""The Admin page in a browser: admins only; the organisation's engagement switch; and the
mailbox health dashboard, with a mailbox made to fail for real: the Graph stand-in answers its
calls 500 (the category check) and then 403 (everything: the app may no longer read it), the
real sync cycle runs and records it, and the page shows it failing, its lag, its last error
and its errors by class for the day, beside a mailbox that syncs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from playwright.sync_api import Page, expect

from devtools.graph_standin import GraphStandIn
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.outlook import mailboxes
from shared.outlook.sync import sync_mailbox
from tests.e2e.conftest import (
    LiveApp,
    assert_accessible,
    assert_no_console_errors,
    new_seller,
    shoot,
    sign_in,
)


@pytest.fixture
def admin_http(graph_live_app: LiveApp) -> Iterator[httpx.Client]:
    """The admin API with an admin's development token; the engagement switch is on again
    afterwards, whatever the test did, as every other test expects."""
    token = make_dev_token(graph_live_app.services.settings, new_seller(), roles=(ADMIN_ROLE,))
    with httpx.Client(
        base_url=graph_live_app.base, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        yield http
        assert http.put("/api/admin/engagement", json={"enabled": True}).status_code == 200


def health_of(http: httpx.Client, email: str) -> dict[str, Any]:
    answer = http.get("/api/admin/mailboxes", params={"days": 7})
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = next(m for m in answer.json()["mailboxes"] if m["email"] == email)
    return found


def test_the_dashboard_shows_a_mailbox_failing_for_real(
    page: Page,
    graph_live_app: LiveApp,
    graph_standin: GraphStandIn,
    admin_http: httpx.Client,
    screenshots: Path,
) -> None:
    healthy, broken = new_seller(), new_seller()
    for email in (healthy, broken):
        graph_standin.add_mailbox(email)
        graph_live_app.run(lambda s, e=email: mailboxes.enrol(s, e, []))  # type: ignore[misc]
        graph_live_app.run(lambda s, e=email: sync_mailbox(s, e))  # type: ignore[misc]
    assert health_of(admin_http, broken)["status"] == "ok"
    try:
        # The category check fails once (a server error): the cycle goes on and succeeds.
        graph_standin.fail_always(status=500, path_contains=f"{broken}/outlook/masterCategories")
        graph_live_app.run(lambda s: sync_mailbox(s, broken))
        graph_standin.clear_faults()
        # An hour and a half later the app may no longer read the mailbox: every call
        # answers 403.
        graph_live_app.clock.advance(90 * 60)
        graph_standin.fail_always(status=403, path_contains=f"{broken}/")
        with pytest.raises(ODataError):
            graph_live_app.run(lambda s: sync_mailbox(s, broken))
    finally:
        graph_standin.clear_faults()
    graph_live_app.run(lambda s: sync_mailbox(s, healthy))  # the other one syncs on
    recorded = health_of(admin_http, broken)
    assert recorded["status"] == "failing", recorded
    assert recorded["errors"] == {"throttled": 0, "timeout": 0, "rejected": 2, "unknown": 1}
    assert health_of(admin_http, healthy)["status"] == "ok"

    sign_in(page, graph_live_app.base, new_seller(), admin=True)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    row = page.locator(f"tr[data-mailbox='{broken}']")
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("Failing")
    expect(cells.nth(3)).to_have_text(re.compile(r"^9\d min$"))  # since the last success
    expect(cells.nth(7)).to_have_text("3")  # errors
    expect(cells.nth(8)).to_have_text("rejected: ODataError")
    healthy_cells = page.locator(f"tr[data-mailbox='{healthy}'] td")
    expect(healthy_cells.nth(0)).to_have_text("OK")
    expect(healthy_cells.nth(3)).to_have_text(re.compile(r"^\d+ s$"))
    expect(page.locator("[data-status=failing]")).not_to_have_text("0")

    # The chart of errors by class, for the failing mailbox alone: described, with its numbers.
    page.get_by_label("Chart").select_option(broken)
    chart = page.get_by_role(
        "img", name=re.compile(f"Failed Graph calls per UTC day by class, {broken}")
    )
    expect(chart).to_have_attribute(
        "aria-label", re.compile(r"Rejected \(access denied, bad request\) 2, Other 1")
    )
    page.get_by_text("The numbers").click()
    # The days with errors (one, or two when the hour and a half crossed midnight UTC).
    days = [d for d in recorded["errors_by_day"] if any(d[c] for c in recorded["errors"])]
    numbers = page.locator("section[aria-labelledby=errors-chart] tbody tr")
    expect(numbers.locator("th")).to_have_text([d["date"] for d in days])
    expect(numbers.locator("td")).to_have_text(
        [str(d[c]) for d in days for c in ("throttled", "timeout", "rejected", "unknown")]
    )
    page.get_by_label("Days").select_option("30")
    expect(chart).to_have_attribute(
        "aria-label", re.compile(r"Rejected \(access denied, bad request\) 2")
    )
    page.get_by_label("Days").select_option("14")
    expect(page.locator("canvas")).to_have_count(1)
    assert_accessible(page)
    shoot(page, screenshots, "admin", full_page=True)
    assert_no_console_errors(page)


def test_the_engagement_switch_turns_engagement_off_and_on(
    page: Page, graph_live_app: LiveApp, admin_http: httpx.Client
) -> None:
    sign_in(page, graph_live_app.base, new_seller(), admin=True, start="/app/admin")
    switch = page.get_by_role("switch", name="Email engagement")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "false")
    expect(page.locator("#engagement-why")).to_contain_text("Off for the whole organisation")
    assert admin_http.get("/api/admin/engagement").json() == {"enabled": False}
    assert_accessible(page)
    switch.click()
    expect(switch).to_have_attribute("aria-checked", "true")
    assert admin_http.get("/api/admin/engagement").json() == {"enabled": True}
    assert_no_console_errors(page)


def test_the_admin_page_is_not_a_sellers(page: Page, graph_live_app: LiveApp) -> None:
    sign_in(page, graph_live_app.base, new_seller())
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Records")).to_be_visible()
    expect(navigation.get_by_role("link", name="Admin")).to_have_count(0)
    page.goto(f"{graph_live_app.base}/app/admin")
    expect(page.get_by_text("This page is for admins")).to_be_visible()
    expect(page.get_by_role("switch")).to_have_count(0)
    assert_accessible(page)
