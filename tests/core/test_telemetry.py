"""Telemetry: the app's metrics on an in-memory reader, what is scrubbed before export, and
that nothing heavy is imported (or exported) unless a connection string is set."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, Status, StatusCode

from devtools.graph_standin import GraphStandIn
from shared.core import scrubbing, telemetry
from shared.core.services import Services
from shared.core.settings import Settings
from shared.engagement.fold import fold_cycle
from shared.outlook import mailboxes
from shared.outlook.sync import sync_mailbox
from tests.conftest import Clock
from tests.graph import conftest as graph_fixtures
from tests.graph.conftest import Seller
from tests.utils.azurite import ROOT
from tests.utils.factories import compose

PIXEL = re.compile(r'src="http://track\.test(/t/o/([^"]+))"')
CUSTOMER = "customer@fabrikam.example"

# The Graph stand-in and services pointed at it, as tests/graph has them.
standin = graph_fixtures.standin
graph_services = graph_fixtures.graph_services
seller = graph_fixtures.seller


@pytest.fixture
def reader(settings: Settings) -> Iterator[InMemoryMetricReader]:
    """Telemetry on, recording on an in-memory reader; off again afterwards."""
    metric_reader = InMemoryMetricReader()
    assert telemetry.configure(settings, meter_provider=MeterProvider([metric_reader]))
    yield metric_reader
    assert not telemetry.configure(settings)


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


async def test_http_duration_is_per_route_template_without_tokens_or_ids(
    reader: InMemoryMetricReader, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sent = await compose(client, auth)
    pixel, token = PIXEL.findall(sent["html"])[0]
    assert (await client.get(pixel)).status_code == 200
    assert (await client.get(f"/api/messages/{sent['id']}", headers=auth)).status_code == 200
    assert (await client.get("/t/c/dev1.tampered")).status_code == 404
    assert (await client.get("/nothing/here")).status_code == 404
    assert (await client.get("/health")).status_code == 200

    seen = {
        (
            p.attributes["http.route"],
            p.attributes["http.request.method"],
            p.attributes["http.response.status_class"],
        )
        for p in points(reader, "engagement.http.duration")
    }
    assert {
        ("/api/messages", "POST", "2xx"),
        ("/t/o/{token}", "GET", "2xx"),
        ("/api/messages/{message_id}", "GET", "2xx"),
        ("/t/c/{token}", "GET", "4xx"),
        ("unmatched", "GET", "4xx"),
        ("/health", "GET", "2xx"),
    } <= seen
    exported = reader.get_metrics_data().to_json()  # type: ignore[union-attr]
    for secret in (token, sent["id"], "dev1.tampered", "ana.seller@contoso.example", CUSTOMER):
        assert secret not in exported


async def test_record_events_counts_per_kind_and_class(reader: InMemoryMetricReader) -> None:
    telemetry.record_events("open", "human", 3)
    telemetry.record_events("open", "scanner", 1)
    telemetry.record_events("open", "human", 2)
    telemetry.record_events("click", "proxy_open", 0)
    counts = {
        (p.attributes["kind"], p.attributes["class"]): p.value
        for p in points(reader, "engagement.events.recorded")
    }
    assert counts == {("open", "human"): 5, ("open", "scanner"): 1}


async def test_the_fold_counts_recorded_events_per_class(
    reader: InMemoryMetricReader,
    client: httpx.AsyncClient,
    auth: dict[str, str],
    services: Services,
    clock: Clock,
) -> None:
    sent = await compose(client, auth, to=["telemetry.reader@fabrikam.example"])
    pixel, _ = PIXEL.findall(sent["html"])[0]
    clock.advance(600)
    await client.get(pixel)  # the test client is a person's Outlook
    await client.get(pixel, headers={"User-Agent": "python-requests/2.31.0"})
    await fold_cycle(services, now=clock.advance(60), grace=services.grace)
    counts = {
        (p.attributes["kind"], p.attributes["class"]): p.value
        for p in points(reader, "engagement.events.recorded")
    }
    assert counts[("open", "human")] >= 1 and counts[("open", "scanner")] >= 1


def test_recording_with_telemetry_off_is_a_no_op(settings: Settings) -> None:
    assert not telemetry.configure(settings)
    assert not telemetry.enabled()
    telemetry.record_events("open", "human", 1)
    telemetry.record_failed("rejected")
    telemetry.record_error_class("throttled")


async def test_sync_cycle_records_its_duration_failures_and_throttling(
    reader: InMemoryMetricReader,
    seller: Seller,
    standin: GraphStandIn,
    graph_services: Services,
) -> None:
    await sync_mailbox(graph_services, seller.email)
    item = standin.deliver(
        seller.email,
        subject="Tagged",
        body_html="<p>t</p>",
        sender=CUSTOMER,
        to=[seller.email],
        categories=["Tracked to Engagement"],
    )
    standin.drop_property(seller.email, item["id"], "internetMessageId")  # cannot be tracked
    with telemetry.timed_cycle("sync"):  # as the sync timer wraps its cycle
        await sync_mailbox(graph_services, seller.email)
    (duration,) = points(reader, "engagement.sync.duration")
    assert duration.attributes == {"cycle": "sync"} and duration.count == 1 and duration.sum > 0
    failed = {p.attributes["class"]: p.value for p in points(reader, "engagement.items.failed")}
    assert failed["rejected"] >= 1

    # a category write answered 429 inside the $batch: recorded in the mailbox's health
    folder = standin.add_folder(seller.email, "Deals")
    await mailboxes.enrol(graph_services, seller.email, [folder])
    filed = standin.deliver(
        seller.email, folder=folder, subject="Deal", body_html="<p>d</p>", sender=CUSTOMER,
        to=[seller.email],
    )  # fmt: skip
    standin.fail_next(1, status=429, path_contains=filed["id"], method="PATCH")
    await sync_mailbox(graph_services, seller.email)
    assert sum(p.value for p in points(reader, "engagement.graph.throttled")) >= 1


def test_scrub_removes_addresses_ips_tokens_ids_and_url_paths() -> None:
    text = scrubbing.scrub(
        "GET https://acct.blob.core.windows.net/interactions/b/abcdefghijklmnopqrstuvwxyz/e?sig=x"
        " for bob@fabrikam.example from 198.51.100.7 or 2001:db8::1,"
        " token dev1.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGh,"
        " message abcdefghijklmnopqrstuvwx23 at 12:30:45"
    )
    assert text == (
        "GET https://acct.blob.core.windows.net/[path] for [email] from [ip] or [ip],"
        " token dev1.[id], message [id] at 12:30:45"
    )


def test_spans_keep_only_safe_attributes_and_scrubbed_texts() -> None:
    span = ReadableSpan(
        name="GET",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 200,
            "url.path": "/t/o/dev1.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGh.gif",
            "url.query": "email=bob@fabrikam.example",
            "client.address": "198.51.100.7",
            "user_agent.original": "Mozilla/5.0",
            "_MS.sampleRate": 50.0,
        },
        status=Status(StatusCode.ERROR, "mailbox bob@fabrikam.example not found"),
    )
    safe = scrubbing.scrub_span(span)
    assert dict(safe.attributes or {}) == {
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "_MS.sampleRate": 50.0,
        "http.route": "/t/o/{token}",
    }
    assert safe.status.description == "mailbox [email] not found"


_EXPORT_SCRIPT = """
import asyncio, json, logging, sys, httpx
from azure.monitor.opentelemetry import exporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk._logs.export import LogRecordExportResult

spans, logs = [], []
def keep_spans(self, batch, **kwargs):
    spans.extend({"name": s.name, "attributes": dict(s.attributes or {})} for s in batch)
    return SpanExportResult.SUCCESS
def keep_logs(self, batch, **kwargs):
    logs.extend({"body": str(r.log_record.body), "attributes": {k: str(v) for k, v in
                 (r.log_record.attributes or {}).items()}} for r in batch)
    return LogRecordExportResult.SUCCESS
exporter.AzureMonitorTraceExporter.export = keep_spans
exporter.AzureMonitorLogExporter.export = keep_logs

import function_app
from opentelemetry import trace, _logs
from shared.bootstrap import get_services

async def main():
    get_services()  # the worker's services: telemetry is configured here
    await asyncio.sleep(1)  # the rate-limited sampler keeps every span after a quiet second
    transport = httpx.ASGITransport(app=function_app.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/t/o/dev1.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGh.gif")).status_code == 200
        await client.get("/api/records?email=bob@fabrikam.example")
    try:
        raise ValueError("could not reach bob@fabrikam.example at 198.51.100.7")
    except ValueError:
        logging.getLogger("shared.test").exception("failed for bob@fabrikam.example")

asyncio.run(main())
trace.get_tracer_provider().force_flush()
_logs.get_logger_provider().force_flush()
print(json.dumps({"azure_monitor": "azure.monitor.opentelemetry" in sys.modules,
                  "spans": spans, "logs": logs}))
"""


def _run(script: str, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env, "TMPDIR": str(tmp), "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true"},
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def test_without_a_connection_string_nothing_heavy_is_imported(
    app_env: None, tmp_path: Path
) -> None:
    script = """
import asyncio, json, sys, httpx
import function_app
from shared.bootstrap import get_services

async def main():
    get_services()
    transport = httpx.ASGITransport(app=function_app.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/t/o/dev1.nothing.gif")).status_code == 200

asyncio.run(main())
heavy = sorted(m for m in sys.modules if m.startswith(("azure.monitor", "opentelemetry.sdk")))
print(json.dumps({"heavy": heavy}))
"""
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    assert _run(script, env, tmp_path) == {"heavy": []}


def test_with_a_connection_string_exports_scrubbed_spans_and_logs(
    app_env: None, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=http://127.0.0.1:9/"
        ),
    }
    out = _run(_EXPORT_SCRIPT, env, tmp_path)
    assert out["azure_monitor"]
    routes = {s["attributes"].get("http.route") for s in out["spans"]}
    assert "/t/o/{token}" in routes
    assert any("failed for [email]" in record["body"] for record in out["logs"])
    exported = json.dumps(out)
    for secret in ("AbCdEfGhIjKlMnOp", "bob@fabrikam.example", "198.51.100.7"):
        assert secret not in exported
