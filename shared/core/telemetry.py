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
import re
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace

from shared.core.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)

SERVICE_NAME = "email-engagement"
# Traces kept per second: the pixel path can take hundreds of requests a second.
_TRACES_PER_SECOND = 5.0
# FastAPI has its own telemetry; the others would trace URLs (with tokens and addresses).
_UNUSED_INSTRUMENTATIONS = (
    "azure_sdk", "django", "fastapi", "flask", "httpx", "httpx2",
    "psycopg2", "requests", "urllib", "urllib3",
)  # fmt: skip
_TRACKING_PREFIXES = (
    ("/t/o/", "/t/o/{token}"),
    ("/t/c/", "/t/c/{token}"),
    ("/t/a/", "/t/a/{token}"),
)


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
    """Turn telemetry on for this worker: export to Azure Monitor when the connection string
    is set (once per process), or record on `meter_provider` (tests). False when off."""
    global _instruments, _exporting
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
    spans, logs = _scrubbing(AzureMonitorTraceExporter(connection_string=connection_string))
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
    privacy_proxy, unknown), as the fold records them."""
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


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The matched route's template (`/api/messages/{message_id}`), never the raw path,
    which holds tokens and ids."""
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str):
        return template
    path = scope.get("path", "")
    for prefix, tracking in _TRACKING_PREFIXES:
        if path.startswith(prefix):
            return tracking
    return "unmatched"


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class RequestTimer:
    """Times each HTTP request into `engagement.http.duration` by route template, method
    and status class. Plain ASGI; with telemetry off it only hands the request on."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instruments = _instruments
        if instruments is None or scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500  # unless a response starts: the app failed

        async def timed_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            attributes = {
                "http.route": route_template(scope),
                "http.request.method": scope["method"],
                "http.response.status_class": f"{status // 100}xx",
            }
            instruments.http_duration.record((time.perf_counter() - start) * 1000, attributes)


# -- keeping personal data out -------------------------------------------------------------

# Patterns as strings: `re` compiles them on first use (export only), not at import, which
# every worker pays for.
_URL = r"\b(https?://[^/\s\"'<>]+)[^\s\"'<>]*"
_EMAIL = r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_LONG_ID = r"[A-Za-z0-9_+=-]*\d[A-Za-z0-9_+=-]*"  # runs with a digit, kept under 20 characters
_MESSAGE_ID = r"\b[a-z2-7]{26}\b"
_IPV4 = r"\b(?:\d{1,3}\.){3}\d{1,3}\b"
_IPV6 = r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"


def _long_id(match: re.Match[str]) -> str:
    return "[id]" if len(match.group()) >= 20 else match.group()


def _ipv6(match: re.Match[str]) -> str:
    text = match.group()
    return "[ip]" if "::" in text or text.count(":") >= 3 else text


def scrub(text: str) -> str:
    """`text` without e-mail addresses, IP addresses, tokens, ids or URL paths."""
    text = re.sub(_URL, r"\1/[path]", text)
    text = re.sub(_EMAIL, "[email]", text)
    text = re.sub(_IPV4, "[ip]", text)
    text = re.sub(_IPV6, _ipv6, text)
    text = re.sub(_LONG_ID, _long_id, text)
    return re.sub(_MESSAGE_ID, "[id]", text)


# Span attributes that hold no personal data; every other one is dropped before export.
SAFE_SPAN_ATTRIBUTES = frozenset(
    {
        "http.route",
        "http.request.method",
        "http.method",
        "http.response.status_code",
        "http.status_code",
        "error.type",
        "url.scheme",
        "server.address",
        "server.port",
        "network.protocol.name",
        "network.protocol.version",
        "code.function.name",
    }
)
_EXPORTER_PREFIX = "_MS."  # the exporter's own, such as the sampling rate behind item counts
_PATH_KEYS = ("url.path", "http.target")


def _scrubbed_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, (list, tuple)):
        return tuple(scrub(v) if isinstance(v, str) else v for v in value)
    return value


def scrub_span_attributes(attributes: Any) -> dict[str, Any]:
    """The allow-listed attributes of a span, plus a route template when only the path was
    recorded (the tracking routes are plain Starlette routes)."""
    kept = {
        k: v
        for k, v in (attributes or {}).items()
        if k in SAFE_SPAN_ATTRIBUTES or k.startswith(_EXPORTER_PREFIX)
    }
    if "http.route" not in kept:
        for key in _PATH_KEYS:
            if isinstance(path := (attributes or {}).get(key), str):
                kept["http.route"] = route_template({"path": path})
                break
    return kept


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` that is safe to export."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Status

    status = span.status
    if status.description:
        status = Status(status.status_code, scrub(status.description))
    return ReadableSpan(
        name=scrub(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrub_span_attributes(span.attributes),
        events=[
            Event(
                e.name,
                {k: _scrubbed_value(v) for k, v in (e.attributes or {}).items()},
                e.timestamp,
            )
            for e in span.events
        ],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def scrub_log_record(log_record: ReadWriteLogRecord) -> None:
    """Scrub a log record's text and attributes in place, before the exporter sees it
    (exception messages can carry URLs and addresses)."""
    record = log_record.log_record
    if isinstance(record.body, str):
        record.body = scrub(record.body)
    attributes: Any = record.attributes
    for key, value in list((attributes or {}).items()):
        if not key.startswith("code."):
            attributes[key] = _scrubbed_value(value)


def _scrubbing(exporter: SpanExporter) -> tuple[SpanExporter, LogRecordProcessor]:
    """A span exporter that hands `exporter` scrubbed copies, and a log processor that
    scrubs records ahead of the distro's exporting processor."""
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.trace.export import SpanExporter

    class Spans(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return exporter.export([scrub_span(s) for s in spans])

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporter.force_flush(timeout_millis)

    class Logs(LogRecordProcessor):
        def on_emit(self, log_record: ReadWriteLogRecord) -> None:
            scrub_log_record(log_record)

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return Spans(), Logs()
