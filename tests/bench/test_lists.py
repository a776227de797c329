from __future__ import annotations

from bench import lists, performance_doc


def test_the_list_benchmark_runs_checks_its_answers_and_reports_ratios() -> None:
    result = lists.measure(messages=300, repeats=2)
    assert result.checked, result.checks
    assert result.equal  # counts written directly read the same as counts made by `mark`
    assert result.timings[lists.LIST_FLOOR].storage_requests == 1  # 300 rows: one page
    assert result.ratio(lists.LIST_FIRST) == (
        result.timings[lists.LIST_FIRST].median_ms / result.timings[lists.LIST_FLOOR].median_ms
    )
    assert "floor" in lists.report(result)
    section = "\n".join(performance_doc._lists_section(result))
    assert "300 messages" in section and "Median / floor" in section
