"""Signing in to the web app in a browser: the development sign-in (AUTH_MODE=dev), the
navigation it opens, the admin page for admins only, and a token the API refuses sending
the seller back to sign in."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import (
    LiveApp,
    assert_accessible,
    assert_no_console_errors,
    new_seller,
    shoot,
    sign_in,
)

NAV = ["Followed emails", "Compose", "Assistant", "Templates", "Records"]


def test_development_sign_in_opens_the_app(
    page: Page, live_app: LiveApp, screenshots: Path
) -> None:
    email = new_seller()
    page.goto(f"{live_app.base}/app/templates")
    expect(page).to_have_url(f"{live_app.base}/app/signin?return=%2Fapp%2Ftemplates")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Admin").check()
    shoot(page, screenshots, "sign-in")
    page.get_by_role("button", name="Sign in").click()

    # Back where the seller was going, signed in as that address with the admin role.
    expect(page).to_have_url(f"{live_app.base}/app/templates")
    expect(page.get_by_role("heading", name="Templates")).to_be_visible()
    expect(page.get_by_text(f"{email} (admin)")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text([*NAV, "Admin"])
    expect(nav.get_by_role("link", name="Templates")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("link", name="New template")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('engagement.token')").count(".") == 2
    nav.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Admin")).to_be_visible()
    assert_accessible(page)
    assert_no_console_errors(page)


def test_admin_page_is_for_admins_only(page: Page, live_app: LiveApp, screenshots: Path) -> None:
    sign_in(page, live_app.base, new_seller())
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(NAV)
    page.goto(f"{live_app.base}/app/admin")
    expect(page.get_by_text("This page is for admins")).to_be_visible()
    shoot(page, screenshots, "admin-refused")
    assert_no_console_errors(page)


def test_a_refused_token_returns_to_sign_in(
    page: Page, live_app: LiveApp, screenshots: Path
) -> None:
    sign_in(page, live_app.base, new_seller())
    page.evaluate("() => sessionStorage.setItem('engagement.token', 'not.a.token')")
    page.goto(f"{live_app.base}/app/messages/m-none")
    expect(page).to_have_url(f"{live_app.base}/app/signin?return=%2Fapp%2Fmessages%2Fm-none")
    assert page.evaluate("() => sessionStorage.getItem('engagement.token')") is None
    shoot(page, screenshots, "signed-out")
    assert_no_console_errors(page, "401")


def test_sign_out(page: Page, live_app: LiveApp, screenshots: Path) -> None:
    email = new_seller()
    sign_in(page, live_app.base, email)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('engagement.token')") is None
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    shoot(page, screenshots, "sign-out")


def test_the_keyboard_reaches_the_content_first(page: Page, live_app: LiveApp) -> None:
    sign_in(page, live_app.base, new_seller())
    page.reload()  # a fresh load: focus starts at the top of the page
    expect(page.get_by_role("heading", name="Followed emails")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    assert page.url == f"{live_app.base}/app#main"
    # A navigation moves focus to the new page's heading, for screen readers.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Records").click()
    expect(page.get_by_role("heading", name="Records")).to_be_focused()
