"""Keeping personal data out of telemetry: texts scrubbed of addresses, IPs, tokens, ids and
URL paths; spans reduced to an allow-list of attributes; log records scrubbed before export.
Used by shared.core.telemetry when export is on."""

from __future__ import annotations

import re
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

# -- keeping personal data out -------------------------------------------------------------

_TRACKING_PREFIXES = (
    ("/t/o/", "/t/o/{token}"),
    ("/t/c/", "/t/c/{token}"),
    ("/t/a/", "/t/a/{token}"),
)


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


def scrubbing_pipeline(exporter: SpanExporter) -> tuple[SpanExporter, LogRecordProcessor]:
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
