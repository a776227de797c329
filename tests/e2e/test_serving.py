"""How the app serves the web app: content types, cache headers and the Content-Security-
Policy; no path leaves webapp/; every deep link answers the shell; the development token
route exists in AUTH_MODE=dev only; and in AUTH_MODE=entra the browser signs in with MSAL's
redirect flow, authorization code with PKCE."""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from functions.routes import webapp
from shared.core.settings import Settings
from tests.conftest import Clock
from tests.e2e.conftest import LiveApp, assert_accessible, new_seller, serve, shoot, sign_in

IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)
TENANT = "11111111-2222-4333-8444-555555555555"
API_APP_ID = "66666666-7777-4888-9999-000000000000"
LOGIN = "https://login.microsoftonline.com"


def entra_settings(settings: Settings, **overrides: str) -> Settings:
    values = {
        "auth_mode": "entra",
        "entra_issuer": f"{LOGIN}/{TENANT}/v2.0",
        "entra_audience": API_APP_ID,
        "entra_jwks_url": f"{LOGIN}/{TENANT}/discovery/v2.0/keys",
        "entra_spa_client_id": API_APP_ID,
        "entra_spa_authority": f"{LOGIN}/{TENANT}",
        "entra_spa_scope": f"api://{API_APP_ID}/Engagement.Use",
        **overrides,
    }
    return settings.model_copy(update=values)


def shell(live: LiveApp) -> httpx.Response:
    return httpx.get(f"{live.base}/app", timeout=30)


def vendor_url(live: LiveApp, name: str) -> str:
    found = re.search(rf"/app/vendor/[0-9a-f]{{16}}/{re.escape(name)}", shell(live).text)
    assert found, name
    return found.group(0)


def test_safe_relative_refuses_paths_out_of_the_folder() -> None:
    types = webapp.STATIC_TYPES
    assert webapp.safe_relative("main.js", types)
    assert webapp.safe_relative("pages/message.js", types)
    for bad in (
        "../functions/http_app.py",
        "pages/../../pyproject.toml",
        "./main.js",
        "pages//message.js",
        ".hidden.js",
        "..\\..\\main.js",
        "main.js\x00.css",
        "index.html",
        "copy-vendor.mjs",
        "",
    ):
        assert not webapp.safe_relative(bad, types), bad


def test_a_symlink_out_of_the_folder_is_not_served(tmp_path: Path) -> None:
    root = tmp_path / "webapp"
    root.mkdir()
    (tmp_path / "secret.js").write_text("secret")
    (root / "inside.js").write_text("ok")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    assert (
        webapp.find_file(root, "inside.js", webapp.STATIC_TYPES) == (root / "inside.js").resolve()
    )
    assert webapp.find_file(root, "link.js", webapp.STATIC_TYPES) is None
    assert webapp.find_file(root, "missing.js", webapp.STATIC_TYPES) is None


def test_the_policy_allows_scripts_from_the_app_and_its_import_map_only() -> None:
    policy = webapp.content_security_policy(["'sha256-abc='"])
    directives = dict(d.split(" ", 1) if " " in d else (d, "") for d in policy.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self' 'sha256-abc='"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe-eval" not in policy and "unsafe-inline" not in directives["script-src"]
    with_entra = webapp.content_security_policy([], "https://login.microsoftonline.com")
    assert "connect-src 'self' https://login.microsoftonline.com" in with_entra
    assert "frame-src 'none'" in with_entra


def test_the_vendor_digest_follows_the_content() -> None:
    one = webapp.vendor_digest([("a.mjs", b"1"), ("b.js", b"2")])
    assert one == webapp.vendor_digest([("b.js", b"2"), ("a.mjs", b"1")])
    assert one != webapp.vendor_digest([("a.mjs", b"1"), ("b.js", b"3")])
    assert re.fullmatch(r"[0-9a-f]{16}", one)


def test_content_types_cache_headers_and_policy(live_app: LiveApp) -> None:
    page = shell(live_app)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-content-type-options"] == "nosniff"
    policy = page.headers["content-security-policy"]
    (import_map,) = IMPORT_MAP.findall(page.text)
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in policy
    assert "<script>" not in page.text  # no inline script, only the import map and a module
    with httpx.Client(base_url=live_app.base, timeout=30) as http:
        for path, content_type in (
            ("/app/static/main.js", "text/javascript; charset=utf-8"),
            ("/app/static/pages/message.js", "text/javascript; charset=utf-8"),
            ("/app/static/app.css", "text/css; charset=utf-8"),
            ("/app/static/icon.svg", "image/svg+xml"),
        ):
            answer = http.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"] == content_type
            assert answer.headers["cache-control"] == "no-cache"
            assert answer.headers["content-security-policy"] == webapp.content_security_policy()
            again = http.get(path, headers={"If-None-Match": answer.headers["etag"]})
            assert again.status_code == 304 and not again.content
        preact = http.get(vendor_url(live_app, "preact.mjs"))
        assert preact.status_code == 200
        assert preact.headers["content-type"] == "text/javascript; charset=utf-8"
        assert preact.headers["cache-control"] == "public, max-age=31536000, immutable"
        chart = http.get(vendor_url(live_app, "chart.umd.min.js"))
        assert chart.status_code == 200 and b"Chart.js v4" in chart.content[:200]
        # A tab opened before a deploy asks for an older digest: the file, revalidated.
        stale = http.get("/app/vendor/0123456789abcdef/preact.mjs")
        assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
        for missing in ("/app/static/nothing.js", "/app/vendor/0123456789abcdef/nothing.mjs"):
            answer = http.get(missing)
            assert answer.status_code == 404
            assert answer.json() == {"error": {"field": "path", "message": "no such route"}}
        config = http.get("/app/config.json")
        assert config.json() == {"auth": "dev"}
        assert config.headers["cache-control"] == "no-store"


def raw_get(live: LiveApp, path: str) -> tuple[int, bytes]:
    """A request with the path exactly as written (httpx and browsers remove dot segments)."""
    host, port = urlsplit(live.base).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "/app/static/../../pyproject.toml",
        "/app/static/../functions/http_app.py",
        "/app/static/%2e%2e/%2e%2e/pyproject.toml",
        "/app/static/..%2f..%2fpyproject.toml",
        "/app/static/pages/..%2f..%2f..%2fMakefile",
        "/app/static/%2e%2e%5c%2e%2e%5cMakefile",
        "/app/static/index.html",
        "/app/static/copy-vendor.mjs",
        "/app/static/vendor/preact.mjs",
        "/app/static/.gitignore",
        "/app/vendor/0123456789abcdef/..%2f..%2fpyproject.toml",
        "/app/vendor/0123456789abcdef/licences%2fpreact.txt",
        "/app/vendor/..%2f..%2f..%2fpyproject.toml/preact.mjs",
    ],
)
def test_no_path_leaves_the_served_folders(live_app: LiveApp, path: str) -> None:
    status, body = raw_get(live_app, path)
    assert status == 404, (path, status)
    assert b"[project]" not in body and b"import" not in body and b"PHONY" not in body


def test_deep_links_answer_the_shell(live_app: LiveApp) -> None:
    expected = shell(live_app).text
    for path in ("/app/", "/app/messages/abc", "/app/records/contact/r1", "/app/no/such/page"):
        answer = httpx.get(f"{live_app.base}{path}", timeout=30)
        assert answer.status_code == 200, path
        assert answer.text == expected
        assert "content-security-policy" in answer.headers
    assert httpx.post(f"{live_app.base}/app/messages/abc", timeout=30).status_code == 405


def test_deep_links_open_their_page_in_the_browser(
    page: Page, live_app: LiveApp, screenshots: Path
) -> None:
    sign_in(page, live_app.base, new_seller(), start="/app/compose")
    expect(page.get_by_role("heading", name="Compose")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_be_visible()
    shoot(page, screenshots, "deep-link-compose")
    page.goto(f"{live_app.base}/app/no/such/page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    assert_accessible(page)
    # The policy holds in the browser: a script put into the page does not run.
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__inline = true"; document.body.append(s); }"""
    )
    assert page.evaluate("() => window.__inline") is None
    assert any("Content Security Policy" in e for e in page.console_errors)  # type: ignore[attr-defined]


def test_dev_token_route_exists_in_dev_mode_only(live_app: LiveApp, entra_app: LiveApp) -> None:
    made = httpx.post(f"{live_app.base}/app/dev-token", json={"email": "dana@contoso.example"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    assert made.json()["token"].count(".") == 2
    refused = httpx.post(f"{live_app.base}/app/dev-token", json={"email": "not an address"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "email"
    # In Azure (AUTH_MODE=entra) the route is not there, whatever the body.
    for body in ({"email": "dana@contoso.example", "admin": True}, {"nonsense": 1}):
        answer = httpx.post(f"{entra_app.base}/app/dev-token", json=body)
        assert answer.status_code == 404, answer.text
        assert answer.json() == {"error": {"field": "path", "message": "no such route"}}


def test_a_development_token_is_the_sellers_own(live_app: LiveApp) -> None:
    with httpx.Client(base_url=live_app.base, timeout=30) as http:
        made = http.post("/app/dev-token", json={"email": "Dana@Contoso.example", "admin": True})
        me = http.get("/api/me", headers={"Authorization": f"Bearer {made.json()['token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == "dana@contoso.example"
    assert me.json()["is_admin"] is True


@pytest.fixture
def entra_app(settings: Settings, clock: Clock) -> Iterator[LiveApp]:
    with serve(entra_settings(settings), clock) as app:
        yield app


def test_entra_sign_in_is_msal_redirect_with_pkce(
    browser: Browser, entra_app: LiveApp, screenshots: Path
) -> None:
    config = httpx.get(f"{entra_app.base}/app/config.json", timeout=30).json()
    assert config == {
        "auth": "entra",
        "client_id": API_APP_ID,
        "authority": f"{LOGIN}/{TENANT}",
        "scope": f"api://{API_APP_ID}/Engagement.Use",
        "missing": [],
    }
    policy = httpx.get(f"{entra_app.base}/app", timeout=30).headers["content-security-policy"]
    assert f"connect-src 'self' {LOGIN}" in policy

    context = browser.new_context(locale="en-US")
    page = context.new_page()
    authorize: list[str] = []

    def login(route: Route) -> None:
        url = route.request.url
        if url.endswith("/.well-known/openid-configuration"):
            route.fulfill(json=openid_configuration())
        else:  # the authorize page: recorded, never reached
            authorize.append(url)
            route.fulfill(status=200, content_type="text/html", body="<title>Entra</title>")

    page.route(f"{LOGIN}/**", login)
    page.goto(f"{entra_app.base}/app/messages/m1")
    expect(page.get_by_role("button", name="Sign in with Microsoft")).to_be_visible()
    assert_accessible(page)
    shoot(page, screenshots, "sign-in-entra")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.wait_for_url(f"{LOGIN}/**")
    (url,) = authorize
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert urlsplit(url).path == f"/{TENANT}/oauth2/v2.0/authorize"
    assert query["client_id"] == API_APP_ID
    assert query["redirect_uri"] == f"{entra_app.base}/app"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert f"api://{API_APP_ID}/Engagement.Use" in query["scope"].split()
    context.close()


def test_entra_sign_in_says_what_is_missing(
    browser: Browser, settings: Settings, clock: Clock, screenshots: Path
) -> None:
    unconfigured = entra_settings(settings, entra_spa_client_id="", entra_spa_scope="")
    with serve(unconfigured, clock) as app:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{app.base}/app")
        expect(page.get_by_text("is not configured")).to_contain_text("ENTRA_SPA_CLIENT_ID")
        expect(page.get_by_text("is not configured")).to_contain_text("ENTRA_SPA_SCOPE")
        shoot(page, screenshots, "sign-in-entra-unconfigured")
        context.close()


def openid_configuration() -> dict[str, object]:
    """Entra's metadata for the tenant, as MSAL reads it before redirecting."""
    base = f"{LOGIN}/{TENANT}"
    return {
        "issuer": f"{base}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_types_supported": ["code", "id_token", "code id_token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    }
