"""The alert section of docs/performance.md is replaced by a separate run, and only it."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import alerts
from bench.performance_doc import splice_alerts

RESULT = alerts.AlertResult(
    opens=4,
    alert_seconds=[3.0, 4.0],
    fold_seconds=[40.0, 41.0, 42.0, 43.0],
    alert_cycle_ms=[100.0],
    reminder_seconds=[2.0],
    reminders=1,
    waited_seconds=[95.0, 101.0],
    wait_setting=60.0,
)
DOC = "# Performance\n\n## Summary\n\nrows\n\n## First-open alert latency (`bench/alerts.py`)\n\nold figures\n\n## After\n\nkept\n"


def test_splicing_the_alert_section_replaces_it_alone_and_says_so() -> None:
    spliced = splice_alerts(DOC, RESULT, datetime(2026, 12, 7, 2, 0, tzinfo=UTC))
    assert "old figures" not in spliced and "## After\n\nkept" in spliced
    assert spliced.startswith("# Performance\n\n## Summary\n\nrows\n")
    assert "separate run on 2026-12-07 02:00 UTC" in spliced
    assert "| first-open alert, open waiting for evidence | 98.0 | 101.0 |" in spliced
    assert RESULT.checked
