"""The FastAPI app behind the single anonymous HTTP function. It authenticates seller routes
itself and maps domain errors to HTTP answers in one place."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from functions.errors import domain_error, http_error, validation_error
from functions.middleware import BodyLimit, CatchAll, RequestTimer
from functions.routes import (
    activities,
    admin,
    alerts,
    health,
    me,
    messages,
    records,
    templates,
    tracking,
    webapp,
)
from shared.bootstrap import get_services
from shared.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from shared.core.services import Services

logger = logging.getLogger(__name__)


def _request_limit(services: Services) -> int:
    s = services.settings
    return s.max_html_bytes + s.max_total_attachment_bytes * 4 // 3 + 256 * 1024


def create_app(services: Callable[[], Services] = get_services) -> FastAPI:
    """The app; `services` gives the worker's clients (tests hand in Azurite-backed ones)."""

    # No slash redirects: Starlette builds them from the request's Host header, so "/t" would
    # send a recipient to whatever host the request named. A path answers as it is, or 404.
    app = FastAPI(title="Email engagement", version="0.1.0", redirect_slashes=False)
    app.state.services = services
    app.router.routes.extend(tracking.routes)
    app.include_router(messages.router)
    app.include_router(activities.router)
    app.include_router(me.router)
    app.include_router(admin.router)
    app.include_router(records.router)
    app.include_router(alerts.router)
    app.include_router(templates.router)
    app.include_router(health.router)
    app.include_router(webapp.router)  # the seller's web app, /app
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)  # routing: no such path or method
    for error in (InvalidInput, NotFound, Conflict, Forbidden, Unauthorized):
        app.add_exception_handler(error, domain_error)

    app.add_middleware(BodyLimit, limit=lambda: _request_limit(services()))
    app.add_middleware(CatchAll)
    app.add_middleware(RequestTimer)  # outermost: times refused requests too
    return app
