from __future__ import annotations

from datetime import UTC, datetime

from bench import performance_doc, webapp


def test_the_web_app_benchmark_times_a_usable_page_against_its_api_request() -> None:
    result = webapp.measure(messages=60, rounds=1)
    assert result.checked  # the page showed the API's rows, first by sent time then by opens
    assert {what: len(ms) for what, ms in result.ms.items()} == {
        "cold": 1,
        "warm": 1,
        "sort": 1,
        "floor": 1,
    }
    assert result.ratio("cold") == result.median("cold") / result.median("floor")
    assert "cold: median" in webapp.report(result)
    document = "# Performance\n\n## Before\n\nkept\n\n## Web app: time to a usable Followed emails page (`bench/webapp.py`)\n\nfigures of before\n\n## After\n\nkept\n"
    spliced = performance_doc.splice_webapp(
        document, result, datetime(2026, 12, 7, 8, 0, tzinfo=UTC), separate=True
    )
    assert "figures of before" not in spliced and spliced.count("kept") == 2
    assert "separate run on 2026-12-07 08:00 UTC" in spliced
    assert "**60 messages**" in spliced and "| Measured | Median (ms) | Median / floor |" in spliced
    appended = performance_doc.splice_webapp("# Performance\n", result, separate=False)
    assert appended.startswith("# Performance\n\n## Web app") and "separate run" not in appended
