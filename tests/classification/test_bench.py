from __future__ import annotations

from bench.classify import measure, report


def test_the_benchmark_runs_and_reports_against_its_baseline() -> None:
    result = measure(sends=10, rounds=1)
    assert result["events"] > 0
    assert result["warm_p50_us"] > 0 and result["baseline_p50_us"] > 0
    assert result["ratio_warm_mean"] == result["warm_mean_us"] / result["baseline_mean_us"]
    text = report(result)
    assert "classify_event warm" in text and "baseline truncate_ip" in text and "target" in text
