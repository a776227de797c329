"""Benchmark: the per-event classifier
(`shared.classification.classifier.classify_event`) on the events of the evaluation set,
against the one piece of client analysis the pixel path already pays for, truncating the
client address (`shared.classification.devices.truncate_ip`), timed the same way in the same
run.

Three figures for the classifier, each per event:

- warm: user agents and networks seen before (their lookups are cached per process), the
  steady state of a worker;
- cold: both caches emptied before every call, so every event pays for parsing its user
  agent and resolving its network from scratch (the worst case, a never-seen client);
- fold: `classify_message` over each send, per event, for the timer that folds events.

Per-call timings (p50, p99) include the timer's own cost on both sides; the means come from
timing whole passes. Run from the project root: ``python -m bench.classify``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import time
from collections.abc import Callable, Sequence

from shared.classification.classifier import (
    EventSignals,
    classify_event,
    clear_caches,
)
from shared.classification.devices import truncate_ip
from shared.classification.message_rules import MessageContext, classify_message
from shared.classification.networks import load_networks
from tests.classification.traces import build

TARGET_US = 50.0  # per event, on the pixel path (docs/measurement.md)


def _client_address(network: str, n: int) -> str:
    """A full client address inside a stored network, as a request would carry it."""
    if ":" in network:
        return f"{network}{n % 0xFFFF + 1:x}"
    return f"{network.rsplit('.', 1)[0]}.{n % 254 + 1}"


def _per_call(
    calls: Sequence[Callable[[], object]], before: Callable[[], None] | None
) -> list[float]:
    """Microseconds of each call, measured one by one."""
    timings = []
    clock = time.perf_counter_ns
    for call in calls:
        if before is not None:
            before()
        start = clock()
        call()
        timings.append((clock() - start) / 1000)
    return timings


def _pass_mean(calls: Sequence[Callable[[], object]], rounds: int) -> float:
    """Microseconds per call over whole passes (the best of `rounds`)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for call in calls:
            call()
        best = min(best, time.perf_counter() - start)
    return best / len(calls) * 1e6


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(sends: int = 500, rounds: int = 5) -> dict[str, float]:
    """Time the classifier and the baseline over the evaluation set's events."""
    networks = load_networks()
    traces = build(sends=sends)
    events: list[EventSignals] = [e.signals for send in traces for e in send.events]
    addresses = [_client_address(e.ip, n) for n, e in enumerate(events)]
    classify = [functools.partial(classify_event, e, networks) for e in events]
    baseline = [functools.partial(truncate_ip, a) for a in addresses]

    def forget() -> None:
        clear_caches()
        networks.clear_cache()

    gc.disable()
    try:
        for call in classify:  # warm the caches, as a worker's first minutes would
            call()
        warm = [t for _ in range(rounds) for t in _per_call(classify, None)]
        cold = [t for _ in range(rounds) for t in _per_call(classify, forget)]
        base = [t for _ in range(rounds) for t in _per_call(baseline, None)]
        warm_mean = _pass_mean(classify, rounds)
        base_mean = _pass_mean(baseline, rounds)
        judged = [
            [(e.signals, classify_event(e.signals, networks)) for e in s.events] for s in traces
        ]
        contexts = [MessageContext(link_count=s.link_count) for s in traces]
        start = time.perf_counter()
        for pairs, context in zip(judged, contexts, strict=True):
            classify_message(pairs, context)
        fold_us = (time.perf_counter() - start) / len(events) * 1e6
    finally:
        gc.enable()
    return {
        "events": float(len(events)),
        "distinct_user_agents": float(len({e.user_agent for e in events})),
        "warm_p50_us": statistics.median(warm),
        "warm_p99_us": _quantile(warm, 0.99),
        "warm_mean_us": warm_mean,
        "cold_p50_us": statistics.median(cold),
        "cold_p99_us": _quantile(cold, 0.99),
        "baseline_p50_us": statistics.median(base),
        "baseline_p99_us": _quantile(base, 0.99),
        "baseline_mean_us": base_mean,
        "ratio_warm_mean": warm_mean / base_mean,
        "ratio_cold_p50": statistics.median(cold) / statistics.median(base),
        "fold_us_per_event": fold_us,
        "target_us": TARGET_US,
    }


def report(result: dict[str, float]) -> str:
    """Plain-text lines for the terminal."""
    ok = result["warm_p99_us"] < result["target_us"] and result["cold_p50_us"] < result["target_us"]
    return "\n".join(
        [
            f"classify: {result['events']:.0f} events of the evaluation set, "
            f"{result['distinct_user_agents']:.0f} distinct user agents",
            f"  classify_event warm  p50 {result['warm_p50_us']:5.2f} us  "
            f"p99 {result['warm_p99_us']:5.2f} us  mean {result['warm_mean_us']:5.2f} us",
            f"  classify_event cold  p50 {result['cold_p50_us']:5.2f} us  "
            f"p99 {result['cold_p99_us']:5.2f} us  (caches emptied before every call)",
            f"  baseline truncate_ip p50 {result['baseline_p50_us']:5.2f} us  "
            f"p99 {result['baseline_p99_us']:5.2f} us  mean {result['baseline_mean_us']:5.2f} us",
            f"  ratio to baseline: warm mean {result['ratio_warm_mean']:.2f}x, "
            f"cold p50 {result['ratio_cold_p50']:.2f}x",
            f"  fold (classify_message) {result['fold_us_per_event']:.2f} us per event",
            f"  target: under {result['target_us']:.0f} us per event (warm p99 and cold p50): "
            f"{'ok' if ok else 'MISSED'}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.classify", description=__doc__)
    parser.add_argument("--sends", type=int, default=500, help="sends of the evaluation set")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the events")
    args = parser.parse_args()
    print(report(measure(args.sends, args.rounds)))


if __name__ == "__main__":
    main()
