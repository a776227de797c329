from __future__ import annotations

from bench import lists, performance_doc


def test_the_list_benchmark_runs_checks_its_answers_and_reports_ratios() -> None:
    result = lists.measure(messages=300, repeats=2, sizes=(150,))
    assert result.checked, result.checks
    assert result.equal  # counts written directly read the same as counts made by `mark`
    # The floor: one index range query and the page's point reads.
    assert result.timings[lists.LIST_FLOOR].storage_requests == 1 + lists.LIMIT
    # and its two parts, timed apart.
    assert result.timings[lists.RANGE_ALONE].storage_requests == 1
    assert result.timings[lists.POINT_READ].storage_requests == 1
    for name in lists.LISTS:  # the floor's, the seller's partitions, and the ranges of `any`
        ranges = 4 if "follow_state=any" in name else 1
        assert result.timings[name].storage_requests == 1 + ranges + lists.LIMIT, name
    assert set(result.pages) == {150, 300} and result.flat
    assert result.before.storage_requests == 1 + lists.LIMIT  # 300 rows: one query page
    assert result.ratio(lists.LIST_FIRST) == (
        result.timings[lists.LIST_FIRST].median_ms / result.timings[lists.LIST_FLOOR].median_ms
    )
    assert "floor" in lists.report(result)
    section = "\n".join(performance_doc._lists_section(result))
    assert "300 messages" in section and "Median / floor" in section
    assert "| 150 messages | 300 messages |" in section and "the same at every size" in section
    # The target is judged on the slowest list request, in either outcome.
    slowest = max(result.timings[name].median_ms for name in lists.LISTS)
    assert ("**Met.**" in section) == (slowest <= 100)
    assert ("the index range query alone" in section) == (slowest > 100)
