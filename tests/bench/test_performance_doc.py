"""The alert and fold sections of docs/performance.md are replaced by a separate run, and
only they."""

from __future__ import annotations

from datetime import UTC, datetime

from bench import alerts, fold
from bench.performance_doc import splice_alerts, splice_fold

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


FOLDED = fold.FoldResult(
    [
        fold.ShapeResult("many messages, one open each", 600, 600, 4.0, 5.0, 600),
        fold.ShapeResult("few messages, many events each", 20, 600, 4.0, 1.0, 600),
    ],
    [fold.WorkersResult(1, 1200, 10.0, 1200), fold.WorkersResult(2, 1200, 6.0, 1200)],
)


def test_splicing_the_fold_sections_replaces_them_and_the_model_follows_the_figures() -> None:
    document = DOC.replace("## After", "## Capacity model\n\nold model\n\n## After")
    spliced = splice_fold(document, FOLDED, datetime(2026, 12, 7, 2, 0, tzinfo=UTC))
    assert "old model" not in spliced and "## After\n\nkept" in spliced
    assert "| many messages, one open each (600 messages) | 600 | 150 | 120 | **0.80** |" in spliced
    assert "| 2 | 200 | 1.67x |" in spliced
    # the harder shape sets a worker's rate (120 events/s): a peak of 556 events/s needs 5
    assert "One worker folds about 120 events/s" in spliced
    assert "| 10,000 | 30 | 2,400,000 | 556 | 5 |" in spliced
    assert "about **182 folded events/s for one seller**" in spliced
