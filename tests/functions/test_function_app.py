"""The Functions glue, proven: function_app's registrations, a real func.HttpRequest through
the ASGI function, and the timer function called with a TimerRequest."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import UpdateMode
from azure.functions.timer import TimerRequest

import shared.core.auth
import shared.core.services
from shared.core.ids import partition_of
from shared.core.settings import get_settings
from shared.core.storage import ensure_storage
from shared.crm import records
from shared.engagement import fold_queue
from tests.utils.azurite import ROOT
from tests.utils.factories import compose_body


@pytest.fixture(scope="module")
async def function_app(app_env: None) -> AsyncIterator[dict[str, Any]]:
    """function_app, imported with the test Azurite in its environment, and its functions by
    name (the app indexes its functions once, as the host does)."""
    get_settings.cache_clear()
    shared.core.services._services = None
    sys.modules.pop("function_app", None)
    module = importlib.import_module("function_app")
    yield {f.get_function_name(): f for f in module.app.get_functions()}
    await shared.bootstrap.get_services().store.close()
    get_settings.cache_clear()
    shared.core.services._services = None


def test_registered_functions_and_triggers(function_app: dict[str, Any]) -> None:
    functions = function_app
    assert set(functions) == {
        "http_app_func",
        "fold_events",
        "fold_shard",
        "dispatch_scheduled",
        "sync_mailboxes",
        "retry_failed_items",
        "purge_old_interactions",
        "fire_reminders",
        "alert_first_opens",
    }
    http = functions["http_app_func"].get_trigger().get_dict_repr()
    assert http["type"] == "httpTrigger"
    assert http["authLevel"] == func.AuthLevel.ANONYMOUS
    assert http["route"] == "/{*route}"
    timer = functions["fold_events"].get_trigger().get_dict_repr()
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "%FOLD_SCHEDULE%"
    assert timer["runOnStartup"] is False
    queue = functions["fold_shard"].get_trigger().get_dict_repr()
    assert queue["type"] == "queueTrigger"
    assert queue["queueName"] == "fold-shards" and queue["connection"] == "STORAGE"
    for name, setting in (
        ("dispatch_scheduled", "%DISPATCH_SCHEDULE%"),
        ("sync_mailboxes", "%SYNC_SCHEDULE%"),
        ("retry_failed_items", "%RETRY_SCHEDULE%"),
        ("purge_old_interactions", "%RETENTION_SCHEDULE%"),
        ("fire_reminders", "%REMINDER_SCHEDULE%"),
        ("alert_first_opens", "%ALERT_SCHEDULE%"),
    ):
        binding = functions[name].get_trigger().get_dict_repr()
        assert binding["schedule"] == setting and binding["runOnStartup"] is False


def test_host_json_has_no_route_prefix() -> None:
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == ""


async def call_http(
    functions: dict[str, Any],
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> func.HttpResponse:
    user_function = functions["http_app_func"].get_user_function()
    request = func.HttpRequest(method=method, url=url, headers=headers or {}, body=body)
    response: func.HttpResponse = await user_function(request, None)
    return response


async def test_pixel_through_the_functions_http_trigger(function_app: dict[str, Any]) -> None:
    services = shared.bootstrap.get_services()
    await ensure_storage(services.store)
    token = shared.core.auth.make_dev_token(services.settings, "glue@contoso.example")
    customer = compose_body()["to"][0]
    await records.create(
        services,
        shared.core.auth.dev_seller("glue@contoso.example"),
        "contact",
        records.RecordIn(name="C", emails=[customer]),
    )
    created = await call_http(
        function_app, "POST", "http://localhost/api/messages",
        body=json.dumps(compose_body()).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    assert created.status_code == 201
    html = json.loads(created.get_body())["html"]
    pixel = re.search(r'src="http://track\.test(/t/o/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    response = await call_http(
        function_app,
        "GET",
        f"http://localhost{pixel}",
        headers={"User-Agent": "Mozilla/5.0 (iPhone)"},
    )
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert len(response.get_body()) == 43
    bad = await call_http(function_app, "GET", "http://localhost/t/c/dev1.nope")
    assert bad.status_code == 404
    assert bad.headers.get("Location") is None


async def test_the_fold_timer_and_the_queue_function_fold(function_app: dict[str, Any]) -> None:
    services = shared.bootstrap.get_services()
    await ensure_storage(services.store)
    timer = function_app["fold_events"].get_user_function()
    await timer(timer=TimerRequest(past_due=True))
    legacy = await services.store.state.get_entity("fold", "cursor")
    assert legacy["bucket"] and legacy["until"]  # the legacy layout's cursor is started
    # What the timer queues (its queueing is tested in tests/engagement/test_shards.py),
    # the queue function folds: the shard's cursor exists after it.
    worker = function_app["fold_shard"].get_user_function()
    body = fold_queue.message(7, "20990101000000").encode()
    await worker(message=func.QueueMessage(id="m1", body=body))
    assert (await services.store.state.get_entity("fold", "shard-07"))["bucket"]
    await worker(message=func.QueueMessage(id="m2", body=b"not ours"))  # dropped, no error


async def test_alert_timer_alerts_on_a_first_open_without_the_fold(
    function_app: dict[str, Any],
) -> None:
    services = shared.bootstrap.get_services()
    await ensure_storage(services.store)
    token = shared.core.auth.make_dev_token(services.settings, "glue.alert@contoso.example")
    customer = "glue.customer@fabrikam.example"
    await records.create(
        services,
        shared.core.auth.dev_seller("glue@contoso.example"),
        "contact",
        records.RecordIn(name="C", emails=[customer]),
    )
    created = await call_http(
        function_app, "POST", "http://localhost/api/messages",
        body=json.dumps(compose_body(to=[customer])).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    sent = json.loads(created.get_body())
    pixel = re.search(r'src="http://track\.test(/t/o/[^"]+)"', sent["html"]).group(1)  # type: ignore[union-attr]
    # The message went out ten minutes ago (this test runs on the real clock): past the
    # delivery window, an open in Outlook is clearly a person's and alerted at once.
    await services.store.messages.update_entity(
        {
            "PartitionKey": partition_of(sent["id"]),
            "RowKey": sent["id"],
            "sent_at": (datetime.now(UTC) - timedelta(minutes=10)).isoformat(),
        },
        mode=UpdateMode.MERGE,
    )
    await call_http(
        function_app,
        "GET",
        f"http://localhost{pixel}",
        headers={
            "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328)",
            "Accept": "image/*",
        },
    )
    timer = function_app["alert_first_opens"].get_user_function()
    await timer(timer=TimerRequest(past_due=False))
    listed = await call_http(
        function_app, "GET", "http://localhost/api/alerts",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert [a["kind"] for a in json.loads(listed.get_body())["alerts"]] == ["first_open"]


async def test_alert_timer_fires_a_reminder_within_seconds_of_its_time(
    function_app: dict[str, Any],
) -> None:
    """Reminders ride the 5-s alert timer: one due-index query a cycle, so a reminder fires
    seconds after its time, not up to 15 minutes later."""
    services = shared.bootstrap.get_services()
    await ensure_storage(services.store)
    token = shared.core.auth.make_dev_token(services.settings, "glue.reminder@contoso.example")
    at = services.clock() + timedelta(seconds=2)
    body = compose_body(to=["glue.reminded@fabrikam.example"])
    body["reminder"] = {"title": "Ring them", "condition": "at", "at": at.isoformat()}
    await call_http(
        function_app, "POST", "http://localhost/api/messages", body=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    await asyncio.sleep((at - services.clock()).total_seconds() + 0.2)
    timer = function_app["alert_first_opens"].get_user_function()
    await timer(timer=TimerRequest(past_due=False))
    listed = await call_http(
        function_app, "GET", "http://localhost/api/alerts",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    alerts = json.loads(listed.get_body())["alerts"]
    assert [(a["kind"], a["subject"]) for a in alerts] == [("reminder", "Ring them")]


def test_tracking_path_does_not_import_graph(app_env: None) -> None:
    """In a fresh interpreter with the Graph backend configured: import the app, serve a
    pixel and a click, and look for the Graph SDK in sys.modules."""
    script = """
import asyncio, sys, httpx
import function_app

async def main():
    transport = httpx.ASGITransport(app=function_app.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/t/o/dev1.nothing.gif")).status_code == 200
        assert (await client.get("/t/c/dev1.nothing")).status_code == 404
    function_app.asgi.state.services()  # the worker's services, built as a request does

asyncio.run(main())
print(sorted({m.split(".")[0] for m in sys.modules if m.startswith(("msgraph", "kiota"))}))
"""
    env = {
        **os.environ,
        "DELIVERY_BACKEND": "graph",
        "GRAPH_AUTH": "static",
        "GRAPH_STATIC_TOKEN": "t",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    import msgraph  # noqa: F401  # the check above could fail: the SDK is installed


def test_host_json_keeps_urls_out_of_the_hosts_own_request_telemetry() -> None:
    """The host's request log (App Insights' requests) carries each URL: tracking tokens in
    paths, recipients' addresses in queries. The app records requests by route template
    itself (engagement.http.duration), so the host's is off, with live metrics."""
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    logging = host["logging"]
    assert logging["logLevel"]["Host.Results"] == "None"
    insights = logging["applicationInsights"]
    assert insights["enableLiveMetrics"] is False
    assert insights["httpAutoCollectionOptions"]["enableHttpTriggerExtendedInfoCollection"] is False
