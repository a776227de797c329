"""Anonymous tracking endpoints, fetched by recipients' mail clients.

Rules: the pixel always answers the GIF; a bad link answers a plain 404 page and never a
redirect; a redirect only ever goes to a target the seller wrote (looked up by a signed
token); one storage write at most; nothing slow or Graph-related is imported here. They are
plain Starlette routes: FastAPI's dependency injection and validation cost more per request
than the whole handler, on the path that takes the most traffic.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from shared.core.services import Services
from shared.core.vocabulary import EventKind
from shared.tracking.links import attachment_link
from shared.tracking.recording import Hit, record_hit
from shared.tracking.tokens import TrackingRef

logger = logging.getLogger(__name__)

# A 1x1 transparent GIF (43 bytes).
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
_UNAVAILABLE = "This link cannot be opened right now. Please try again in a minute.\n"
_NOT_FOUND = "This link is not valid. Please check that you copied it completely.\n"


def _not_found() -> PlainTextResponse:
    return PlainTextResponse(_NOT_FOUND, status_code=404, headers=_NO_CACHE)


def _unavailable() -> PlainTextResponse:
    return PlainTextResponse(
        _UNAVAILABLE, status_code=503, headers={**_NO_CACHE, "Retry-After": "30"}
    )


def _ref(services: Services, token: str, kind: EventKind) -> TrackingRef | None:
    ref = services.signer.verify(token)
    return ref if ref is not None and ref.kind == kind else None


async def _record(services: Services, request: Request, ref: TrackingRef) -> None:
    hit = Hit(
        user_agent=request.headers.get("user-agent", ""),
        forwarded_for=request.headers.get("x-forwarded-for"),
        peer=request.client.host if request.client else None,
        method=request.method,
        has_accept="accept" in request.headers,
    )
    await record_hit(services, ref, hit)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services()
    return services


async def open_pixel(request: Request) -> Response:
    """Record an open and answer the pixel, whatever happens: a broken image in a customer's
    inbox is worse than a lost open."""
    try:
        services = _services(request)
        token = request.path_params.get("token", "")
        ref = _ref(services, token.removesuffix(".gif"), "open") if token else None
        if ref is not None:
            await _record(services, request, ref)
    except Exception:
        logger.exception("open pixel failed; answering the GIF anyway")
    return Response(PIXEL_GIF, media_type="image/gif", headers=_NO_CACHE)


async def click(request: Request) -> Response:
    """Record a click and redirect to the link the seller wrote; 404 for anything else."""
    services = _services(request)
    ref = _ref(services, request.path_params["token"], "click")
    if ref is None:
        return _not_found()
    try:
        location = await services.links.location(ref.message_id, ref.index)
    except Exception:
        logger.exception("could not look up a followed link")
        return _unavailable()
    if location is None:
        return _not_found()
    await _record(services, request, ref)
    return RedirectResponse(location, status_code=302, headers=_NO_CACHE)


async def attachment(request: Request) -> Response:
    """Record an attachment view and redirect to a download link valid for minutes."""
    services = _services(request)
    ref = _ref(services, request.path_params["token"], "attachment")
    if ref is None:
        return _not_found()
    await _record(services, request, ref)
    try:
        url = await attachment_link(
            services.store,
            ref.message_id,
            ref.index,
            minutes=services.settings.attachment_link_minutes,
        )
    except Exception:
        logger.exception("could not make a download link")
        return _unavailable()
    return RedirectResponse(url, status_code=302, headers=_NO_CACHE)


async def unknown(request: Request) -> Response:
    """Any other tracking-looking path: the same plain page, never a redirect."""
    return _not_found()


_METHODS = ["GET", "HEAD"]
# Everything under /t/o/ is the pixel (a token with "/" in it, mangled by a mail client, still
# gets the GIF); everything else under /t answers itself, so the router never redirects
# ("/t" to "/t/" would go to whatever Host the request named).
routes = [
    Route("/t/o", open_pixel, methods=_METHODS),
    Route("/t/o/{token:path}", open_pixel, methods=_METHODS),
    Route("/t/c/{token}", click, methods=_METHODS),
    Route("/t/a/{token}", attachment, methods=_METHODS),
    Route("/t", unknown, methods=_METHODS),
    Route("/t/{anything:path}", unknown, methods=_METHODS),
]
