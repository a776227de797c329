"""Log levels set once per process, and the access log: route template, status and time,
never a path, query or client address."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator

import httpx
import pytest

from shared.core import telemetry
from shared.core.logs import APP_LOGGERS, LIBRARY_LOGGERS, ScrubbingFilter, configure_logging
from shared.core.settings import Settings
from tests.utils.factories import compose, ensure_contacts


@pytest.fixture
def restore_levels() -> Iterator[None]:
    names = [*APP_LOGGERS, *LIBRARY_LOGGERS, "functions.access"]
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_levels")
def test_the_sdks_request_log_is_quiet_unless_asked_for() -> None:
    configure_logging(Settings())
    assert logging.getLogger("shared.outlook.sync").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("functions.timers.fold").getEffectiveLevel() == logging.INFO
    policy = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    assert policy.getEffectiveLevel() == logging.WARNING
    assert not logging.getLogger("functions.access").isEnabledFor(logging.DEBUG)

    configure_logging(Settings(log_level="debug", azure_log_level="info"))
    assert logging.getLogger("functions.access").isEnabledFor(logging.DEBUG)
    assert policy.getEffectiveLevel() == logging.INFO


@pytest.mark.usefixtures("restore_levels")
def test_the_worker_sets_its_levels_with_its_telemetry() -> None:
    logging.getLogger("azure").setLevel(logging.NOTSET)
    telemetry.configure(Settings(azure_log_level="error"))
    assert logging.getLogger("azure.storage.blob").getEffectiveLevel() == logging.ERROR


def test_a_log_level_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="log_level"):
        Settings(log_level="chatty")


@pytest.mark.usefixtures("restore_levels")
async def test_the_access_log_names_routes_never_paths_queries_or_addresses(
    client: httpx.AsyncClient, auth: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging(Settings(log_level="DEBUG"))
    recipient = "access.log.reader@fabrikam.example"
    await ensure_contacts(client, auth, [recipient])
    sent = await compose(client, auth, to=[recipient])
    pixel = re.findall(r'src="http://track\.test(/t/o/[^"]+)"', sent["html"])[0]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="functions.access"):
        await client.get(pixel, headers={"X-Forwarded-For": "203.0.113.9"})
        await client.get("/api/preferences", params={"to": recipient}, headers=auth)
        await client.get(f"/api/messages/{sent['id']}", headers=auth)
    lines = [r.getMessage() for r in caplog.records if r.name == "functions.access"]
    assert [line.rsplit(" ", 2)[0] for line in lines] == [
        "GET /t/o/{token} 200",
        "GET /api/preferences 200",
        "GET /api/messages/{message_id} 200",
    ]
    text = "\n".join(lines)
    for secret in (pixel.rsplit("/", 1)[1], recipient, "203.0.113", sent["id"]):
        assert secret not in text


def test_what_a_handler_writes_is_scrubbed_exceptions_included() -> None:
    try:
        raise ValueError("no mailbox for ana@contoso.example at https://graph.example/u/ana")
    except ValueError:
        record = logging.LogRecord(
            "shared.outlook.sync", logging.ERROR, __file__, 1, "failed for %s from %s",
            ("kim@fabrikam.example", "198.51.100.7"), sys.exc_info(),
        )  # fmt: skip
    assert ScrubbingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "failed for [email] from [ip]" in text and "ValueError" in text
    for secret in ("ana@contoso.example", "kim@", "198.51.100", "/u/ana"):
        assert secret not in text
