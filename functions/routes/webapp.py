"""The seller's web app, served by the app itself (no CDN): the shell at `/app` and at every
path under it (the browser routes deep links itself), the project's files from webapp/ at
`/app/static/...`, the pinned npm files that `make webapp-vendor` copies into webapp/vendor/
at `/app/vendor/<digest>/...`, the sign-in settings at `/app/config.json` and, only with
AUTH_MODE=dev, development tokens at `POST /app/dev-token`.

Every answer carries one strict Content-Security-Policy: scripts from this origin only, plus
the shell's import map allowed by its hash (an import map must be inline, and it is data, not
code); no inline script, no eval, nothing may frame the app. Vendor files are immutable under
a digest of their content, so a new version is a new URL; the project's files revalidate
(ETag). None of these routes is part of the API document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from functions.deps import ServicesDep
from shared.core.auth import ADMIN_ROLE, make_dev_token
from shared.core.errors import InvalidInput
from shared.core.settings import Settings

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"
VENDOR = WEBAPP / "vendor"

# What the project's files and the vendor files may be; anything else is a 404, so neither
# index.html, the copy script nor a stray file under webapp/ is served as a file.
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
VENDOR_TYPES = {**STATIC_TYPES, ".mjs": "text/javascript; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"  # cached, but asked again (ETag) each time: a deploy shows at once
_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)
_DIGEST = re.compile(r"[0-9a-f]{16}")

router = APIRouter(include_in_schema=False)


def safe_relative(relative: str, types: Mapping[str, str]) -> bool:
    """Whether a path taken from a URL may name a file under a served folder: no empty, `.`
    or `..` segment, no hidden file, no backslash or NUL, and a type we serve."""
    parts = relative.split("/")
    if any(not p or p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
        return False
    return PurePosixPath(relative).suffix in types


def vendor_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """A digest of the vendor files' names and contents: their URLs change with them."""
    digest = hashlib.sha256()
    for name, body in sorted(files):
        digest.update(f"{name}\0{len(body)}\0".encode())
        digest.update(body)
    return digest.hexdigest()[:16]


def render_shell(template: str, digest: str) -> str:
    """index.html with its vendor URLs under the current digest."""
    return template.replace("/app/vendor/", f"/app/vendor/{digest}/")


def script_hashes(html: str) -> list[str]:
    """CSP sources for the page's import maps: inline by nature, allowed by their hash."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(m.encode()).digest()).decode() + "'"
        for m in _IMPORT_MAP.findall(html)
    ]


def content_security_policy(hashes: Iterable[str] = (), sign_in: str | None = None) -> str:
    """The app's policy. `sign_in` is Entra's origin, which MSAL asks for tokens (sign-in
    itself is a redirect of the whole page, which no policy governs). Inline styles are
    allowed because a message body shown in its sandboxed srcdoc frame inherits this policy
    and mail is styled inline; they cannot run code, and images, fonts and requests stay on
    this origin. Frames: none but that srcdoc one (it has no URL for frame-src to refuse)."""
    remote = f" {sign_in}" if sign_in else ""
    return "; ".join(
        [
            "default-src 'none'",
            " ".join(["script-src 'self'", *hashes]),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self'{remote}",
            "frame-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def origin_of(url: str | None) -> str | None:
    """`https://host[:port]` of a URL, or None."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def sign_in_config(settings: Settings) -> dict[str, object]:
    """What the browser needs to sign in: the mode, and for Entra the MSAL settings (with
    the names of those missing, which the sign-in page shows)."""
    if settings.auth_mode == "dev":
        return {"auth": "dev"}
    values = {
        "client_id": settings.entra_spa_client_id,
        "authority": settings.entra_spa_authority,
        "scope": settings.entra_spa_scope,
    }
    missing = [f"ENTRA_SPA_{k.upper()}" for k, v in values.items() if not v]
    return {"auth": "entra", **values, "missing": missing}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    etag: str
    stamp: tuple[int, int]  # the file's mtime and size when read


_assets: dict[Path, Asset] = {}


def _read(path: Path) -> Asset:
    """The file, from memory unless it changed on disk (a local edit shows on reload)."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    asset = _assets.get(path)
    if asset is None or asset.stamp != stamp:
        body = path.read_bytes()
        asset = Asset(body, f'"{hashlib.sha256(body).hexdigest()[:20]}"', stamp)
        _assets[path] = asset
    return asset


def find_file(root: Path, relative: str, types: Mapping[str, str]) -> Path | None:
    """The file a URL's path names under `root`, symlinks resolved and still inside it."""
    if safe_relative(relative, types):
        path = (root / relative).resolve()
        if path.is_relative_to(root.resolve()) and path.is_file():
            return path
    return None


def _found(root: Path, relative: str, types: Mapping[str, str]) -> Path:
    path = find_file(root, relative, types)
    if path is None:
        raise HTTPException(404)
    return path


_digests: dict[tuple[tuple[str, int, int], ...], str] = {}


def _current_digest() -> str | None:
    """The digest of webapp/vendor/ as it is now (None when it is empty or missing)."""
    if not VENDOR.is_dir():
        return None
    files = sorted(p for p in VENDOR.iterdir() if p.is_file() and p.suffix in VENDOR_TYPES)
    assets = {p.name: _read(p) for p in files}
    stamps = tuple((name, *asset.stamp) for name, asset in assets.items())
    if stamps and stamps not in _digests:
        _digests.clear()
        _digests[stamps] = vendor_digest((name, a.body) for name, a in assets.items())
    return _digests.get(stamps)


def _headers(settings: Settings, hashes: Iterable[str] = ()) -> dict[str, str]:
    sign_in = origin_of(settings.entra_spa_authority) if settings.auth_mode == "entra" else None
    return {
        "Content-Security-Policy": content_security_policy(hashes, sign_in),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _file(
    path: Path, types: Mapping[str, str], cache: str, settings: Settings, if_none_match: str | None
) -> Response:
    asset = _read(path)
    headers = {**_headers(settings), "Cache-Control": cache, "ETag": asset.etag}
    if if_none_match == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=types[path.suffix], headers=headers)


IfNoneMatch = Annotated[str | None, Header()]


@router.get("/app/static/{relative:path}")
async def static_file(
    relative: str, services: ServicesDep, if_none_match: IfNoneMatch = None
) -> Response:
    """A file of the app from webapp/ (not the vendor folder, which has its own route)."""
    if relative.startswith("vendor/"):
        raise HTTPException(404)
    path = _found(WEBAPP, relative, STATIC_TYPES)
    return _file(path, STATIC_TYPES, REVALIDATE, services.settings, if_none_match)


@router.get("/app/vendor/{digest}/{name}")
async def vendor_file(
    digest: str, name: str, services: ServicesDep, if_none_match: IfNoneMatch = None
) -> Response:
    """A pinned npm file. Immutable under the current digest; under an older one (a tab
    opened before a deploy) the current file, revalidated."""
    if not _DIGEST.fullmatch(digest):
        raise HTTPException(404)
    path = _found(VENDOR, name, VENDOR_TYPES)
    cache = IMMUTABLE if digest == _current_digest() else REVALIDATE
    return _file(path, VENDOR_TYPES, cache, services.settings, if_none_match)


@router.get("/app/config.json")
async def config(services: ServicesDep) -> Response:
    """How the browser signs in (AUTH_MODE, and Entra's MSAL settings)."""
    body = json.dumps(sign_in_config(services.settings))
    headers = {**_headers(services.settings), "Cache-Control": "no-store"}
    return Response(body, media_type="application/json", headers=headers)


class DevTokenIn(BaseModel):
    """A development sign-in: any address, and the admin role if asked for."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254)
    admin: bool = False


class DevTokenPublic(BaseModel):
    token: str


async def _dev_only(services: ServicesDep) -> None:
    # Resolved before the body is read: outside dev mode the route does not exist at all.
    if services.settings.auth_mode != "dev":
        raise HTTPException(404)


@router.post("/app/dev-token", dependencies=[Depends(_dev_only)])
async def dev_token(body: DevTokenIn, services: ServicesDep, response: Response) -> DevTokenPublic:
    """A development bearer token, as `make dev-token` makes (AUTH_MODE=dev only)."""
    roles = (ADMIN_ROLE,) if body.admin else ()
    try:
        token = make_dev_token(services.settings, body.email, roles=roles)
    except ValueError as error:
        raise InvalidInput("email", str(error)) from None
    response.headers.update({**_headers(services.settings), "Cache-Control": "no-store"})
    return DevTokenPublic(token=token)


@router.get("/app")
@router.get("/app/{route:path}")
async def shell(services: ServicesDep, route: str = "") -> Response:
    """The shell, for /app and any deep link under it (static and vendor have their own)."""
    if route.startswith(("static/", "vendor/")):
        raise HTTPException(404)
    digest = _current_digest()
    if digest is None:
        raise HTTPException(503, "webapp/vendor/ is empty: run `make webapp-vendor`")
    html = render_shell(_read(WEBAPP / "index.html").body.decode(), digest)
    headers = {**_headers(services.settings, script_hashes(html)), "Cache-Control": REVALIDATE}
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)
