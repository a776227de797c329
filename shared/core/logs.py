"""Logging levels, set once per process (the Functions worker through
shared.core.telemetry.configure, the local runner, the CLI).

The app's own loggers log at LOG_LEVEL (INFO: one line per timer cycle that did something,
nothing per request). Libraries log at AZURE_LOG_LEVEL (WARNING): the storage SDK logs every
request and response at INFO, with URLs that name messages and mailboxes. There is no access
log: functions.middleware logs each request at DEBUG as route template, method, status and
time, never its path (tokens, ids), query (addresses) or client address. Behind those rules,
every handler of the root logger (the console's, the Functions worker's) scrubs what it writes
(shared.core.scrubbing): an exception's text can still carry an address or a URL.
"""

from __future__ import annotations

import logging
import sys

from shared.core.scrubbing import scrub
from shared.core.settings import Settings

APP_LOGGERS = ("shared", "functions", "local", "devtools")
# Loggers of libraries that log requests (URLs, headers) at INFO or DEBUG.
LIBRARY_LOGGERS = (
    "azure",
    "msal",
    "msgraph",
    "kiota_http",
    "httpx",
    "httpcore",
    "urllib3",
    "aiohttp",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "asyncio",
)
CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ScrubbingFilter(logging.Filter):
    """Scrubs a record's message and exception text of addresses, IPs, tokens and ids before
    a handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


def configure_logging(settings: Settings, *, console: bool = False) -> None:
    """Set the levels (again: the last call wins) and scrub what the root logger's handlers
    write; with `console`, send records to stderr (the local runner; in Azure the Functions
    worker has its handler)."""
    root = logging.getLogger()
    if console:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter(CONSOLE_FORMAT))
        root.handlers[:] = [stderr]
        root.setLevel(logging.WARNING)  # anything not named below: warnings only
    for handler in root.handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter())
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(settings.azure_log_level)
