"""Telemetry: metrics, traces and logs to Application Insights when
APPLICATIONINSIGHTS_CONNECTION_STRING is set; otherwise nothing is exported and the Azure
Monitor distro is not even imported (it costs a cold worker about 0.3 s).

Instruments go through the plain OpenTelemetry API, which FastAPI imports anyway, so they
cost the tracking path nothing to import. Until `configure` turns telemetry on, recording is
a single `is None` test.

What never leaves the worker: e-mail addresses, subjects, IP addresses, tracking tokens,
message and Graph ids, URL paths and queries. Metric attributes are ours and hold route
templates and classes only; spans keep an allow-list of attributes (everything else, from
FastAPI's or the Graph SDK's own spans, is dropped) and their texts are scrubbed; log records
are scrubbed before export.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from shared.core.logs import configure_logging
from shared.core.scrubbing import scrubbing_pipeline
from shared.core.settings import Settings

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

SERVICE_NAME = "email-engagement"
# Traces kept per second: the pixel path can take hundreds of requests a second.
_TRACES_PER_SECOND = 5.0
# FastAPI has its own telemetry; the others would trace URLs (with tokens and addresses).
_UNUSED_INSTRUMENTATIONS = (
    "azure_sdk", "django", "fastapi", "flask", "httpx", "httpx2",
    "psycopg2", "requests", "urllib", "urllib3",
)  # fmt: skip


class Instruments:
    """The app's metrics, made on one meter provider."""

    def __init__(self, provider: metrics.MeterProvider) -> None:
        meter = provider.get_meter("engagement")
        self.http_duration = meter.create_histogram(
            "engagement.http.duration", unit="ms", description="HTTP request duration per route"
        )
        self.events = meter.create_counter(
            "engagement.events.recorded", unit="{event}", description="Events folded, per class"
        )
        self.sync_duration = meter.create_histogram(
            "engagement.sync.duration", unit="s", description="Duration of one sync or retry cycle"
        )
        self.throttled = meter.create_counter(
            "engagement.graph.throttled", unit="{answer}", description="429/503 answers from Graph"
        )
        self.failed = meter.create_counter(
            "engagement.items.failed", unit="{item}", description="Items that failed to track"
        )


_instruments: Instruments | None = None  # None: telemetry is off
_exporting = False


def configure(settings: Settings, *, meter_provider: metrics.MeterProvider | None = None) -> bool:
    """Set this worker's log levels (shared.core.logs) and turn telemetry on: export to Azure
    Monitor when the connection string is set (once per process), or record on
    `meter_provider` (tests). False when off."""
    global _instruments, _exporting
    configure_logging(settings)
    if meter_provider is not None:
        _instruments = Instruments(meter_provider)
        return True
    secret = settings.applicationinsights_connection_string
    if secret is None:
        _instruments = None
        return False
    if not _exporting:
        _export(secret.get_secret_value())
        _exporting = True
    _instruments = Instruments(metrics.get_meter_provider())
    return True


def enabled() -> bool:
    """Whether metrics are being recorded."""
    return _instruments is not None


def _export(connection_string: str) -> None:
    # Imported here only: the distro and the SDK are heavy, and off unless configured.
    from azure.monitor.opentelemetry import configure_azure_monitor
    from azure.monitor.opentelemetry.exporter import AzureMonitorTraceExporter, RateLimitedSampler
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The distro takes the switch for its own trace pipeline from the environment only: off,
    # since its exporter would send URLs (tokens, addresses) as they are. Ours is set below.
    os.environ["OTEL_TRACES_EXPORTER"] = "none"
    spans, logs = scrubbing_pipeline(AzureMonitorTraceExporter(connection_string=connection_string))
    configure_azure_monitor(
        connection_string=connection_string,
        resource=Resource.create({"service.name": SERVICE_NAME}),
        # Live metrics stream raw request URLs and exception texts, unscrubbed.
        enable_live_metrics=False,
        instrumentation_options={name: {"enabled": False} for name in _UNUSED_INSTRUMENTATIONS},
        log_record_processors=[logs],
    )
    # Every span passes through the scrubbing exporter. The resource is made again now that
    # the distro has chosen its resource detectors, so traces carry the same one.
    tracer_provider = TracerProvider(
        sampler=RateLimitedSampler(_TRACES_PER_SECOND),
        resource=Resource.create({"service.name": SERVICE_NAME}),
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    logger.info("telemetry exported to Azure Monitor")


# -- recording -----------------------------------------------------------------------------


def record_events(kind: str, cls: str, n: int) -> None:
    """Count `n` events of one kind (open, click, attachment) and class (human, scanner,
    proxy_open, prefetch, unknown), as the fold records them."""
    if _instruments is not None and n:
        _instruments.events.add(n, {"kind": kind, "class": cls})


def record_error_class(failure_class: str) -> None:
    """One error as a mailbox's health records it; the throttled ones (Graph's 429 and 503
    answers, past the SDK's own retries) count in `engagement.graph.throttled`."""
    if _instruments is not None and failure_class == "throttled":
        _instruments.throttled.add(1)


def record_failed(failure_class: str) -> None:
    """Count one item that failed to track, by failure class (throttled, timeout, ...)."""
    if _instruments is not None:
        _instruments.failed.add(1, {"class": failure_class})


@contextmanager
def timed_cycle(name: str) -> Iterator[None]:
    """Time one sync or retry cycle (a histogram in seconds) and trace it as one span, so
    the Graph requests of the cycle hang under it."""
    start = time.perf_counter()
    with trace.get_tracer(__name__).start_as_current_span(f"{name} cycle"):
        try:
            yield
        finally:
            if _instruments is not None:
                seconds = time.perf_counter() - start
                _instruments.sync_duration.record(seconds, {"cycle": name})


def record_http(route: str, method: str, status: int, milliseconds: float) -> None:
    """One HTTP request's duration, by route template (never the raw path), method and
    status class."""
    if _instruments is not None:
        attributes = {
            "http.route": route,
            "http.request.method": method,
            "http.response.status_class": f"{status // 100}xx",
        }
        _instruments.http_duration.record(milliseconds, attributes)
