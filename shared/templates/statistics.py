"""How each email template performs, which one to recommend, and sorting the template list.
Pure: no I/O.

Rates are per message: `open_rate` is messages opened at least once / sent, `reply_rate` is
messages with at least one reply / sent. Each comes with the Wilson score lower bound at 95%
(`*_low`): the rate we can be fairly sure the template reaches, given how few sends it has.
Three replies out of three sends is a rate of 100% but a lower bound of 44%; forty out of a
hundred is 40% and 31%.

The recommendation rule, chosen so that luck on a handful of sends never wins:

1. Only templates with at least MIN_SENT sends take part; the others are "not enough data".
2. The metric is chosen before anyone is compared: reply rate, which is what a seller is
   after, when the taking-part templates have MIN_REPLIES replies between them; open rate
   otherwise (replies are rare, and with a few of them every template ties). Choosing it
   first keeps the rule from shopping for a metric that produces a winner.
3. The template with the highest lower bound is recommended if that lower bound is above
   the measured rate of every other taking-part template: even on a pessimistic reading it
   beats what the others actually did. A recommendation is a comparison, so there must be
   at least two taking-part templates; equal templates never pass step 3 (a Wilson lower
   bound is below its own rate), so at most one is recommended, and often none is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, Literal, TypeVar

from shared.core.errors import InvalidInput

MIN_SENT = 30
MIN_REPLIES = 10
Z_95 = NormalDist().inv_cdf(0.975)  # 1.959964: two-sided 95%

Metric = Literal["reply_rate", "open_rate"]
_METRIC_WORDS = {"reply_rate": "reply rate", "open_rate": "open rate"}

SortKey = Literal["sent", "open_rate", "reply_rate", "recommended", "name", "created_at"]
SORT_KEYS: tuple[str, ...] = SortKey.__args__  # type: ignore[attr-defined]
Row = TypeVar("Row", bound=Mapping[str, Any])


@dataclass(frozen=True, slots=True)
class TemplateCounts:
    """What was counted for one template's messages."""

    template_id: str
    sent: int
    opened: int  # messages opened at least once
    replied: int  # messages with at least one reply


@dataclass(frozen=True, slots=True)
class TemplateStats:
    """One template's rates and whether it is the one to use."""

    template_id: str
    sent: int
    opened: int
    replied: int
    open_rate: float | None
    reply_rate: float | None
    open_rate_low: float | None
    reply_rate_low: float | None
    recommended: bool
    why: str

    def rate(self, metric: Metric) -> float | None:
        return self.reply_rate if metric == "reply_rate" else self.open_rate

    def low(self, metric: Metric) -> float | None:
        return self.reply_rate_low if metric == "reply_rate" else self.open_rate_low

    def to_json(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "sent": self.sent,
            "opened": self.opened,
            "replied": self.replied,
            "open_rate": self.open_rate,
            "reply_rate": self.reply_rate,
            "open_rate_low": self.open_rate_low,
            "reply_rate_low": self.reply_rate_low,
            "recommended": self.recommended,
            "why": self.why,
        }


def wilson_lower(successes: int, trials: int, z: float = Z_95) -> float | None:
    """Wilson score lower bound of a proportion; None with no trials. Unlike the rate itself
    it grows with evidence, so 3/3 ranks below 400/500."""
    if trials <= 0:
        return None
    if successes <= 0:
        return 0.0  # exactly: rounding would leave 1e-18, enough to "beat" another zero
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return (centre - spread) / (1 + z2 / trials)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def _measured(counts: TemplateCounts) -> TemplateStats:
    # Counters are folded separately and can briefly disagree (an open counted before its
    # send); the list must still show, so they are clamped rather than refused.
    sent = max(0, counts.sent)
    opened = min(max(0, counts.opened), sent)
    replied = min(max(0, counts.replied), sent)
    return TemplateStats(
        template_id=counts.template_id,
        sent=sent,
        opened=opened,
        replied=replied,
        open_rate=_rate(opened, sent),
        reply_rate=_rate(replied, sent),
        open_rate_low=wilson_lower(opened, sent),
        reply_rate_low=wilson_lower(replied, sent),
        recommended=False,
        why="",
    )


def _pct(value: float | None) -> str:
    return f"{value or 0.0:.1%}"


def choose_metric(stats: Iterable[TemplateStats]) -> Metric:
    """Reply rate once the templates with enough sends have MIN_REPLIES replies between
    them, open rate before that."""
    replies = sum(s.replied for s in stats if s.sent >= MIN_SENT)
    return "reply_rate" if replies >= MIN_REPLIES else "open_rate"


def _winner(eligible: Sequence[TemplateStats], metric: Metric) -> TemplateStats | None:
    """The template whose lower bound beats every other one's measured rate, if any."""
    if len(eligible) < 2:
        return None
    best = max(eligible, key=lambda s: s.low(metric) or 0.0)
    best_low = best.low(metric) or 0.0
    others = (s.rate(metric) or 0.0 for s in eligible if s is not best)
    return best if all(best_low > rate for rate in others) else None


def _why(
    stats: TemplateStats,
    metric: Metric,
    eligible: Sequence[TemplateStats],
    winner: TemplateStats | None,
) -> str:
    words = _METRIC_WORDS[metric]
    if stats.sent == 0:
        return "Not sent yet."
    if stats.sent < MIN_SENT:
        return (
            f"Sent {stats.sent} times; it needs {MIN_SENT} sends before it can be compared "
            "with the others."
        )
    # Say so when open rate stands in for replies, or a seller will wonder why.
    note = (
        f" Replies are still too few to compare ({MIN_REPLIES} needed), so this uses the open rate."
        if metric == "open_rate"
        else ""
    )
    if stats is winner:
        best_other = max(s.rate(metric) or 0.0 for s in eligible if s is not stats)
        return (
            f"Recommended: over {stats.sent} sends its {words} is at least "
            f"{_pct(stats.low(metric))} (95% confidence), above every other template's "
            f"measured {words} (best {_pct(best_other)}).{note}"
        )
    if len(eligible) < 2:
        return f"Enough sends, but no other template has {MIN_SENT} sends to compare it with yet."
    if winner is not None:
        return f"Another template has a clearly higher {words}.{note}"
    return f"Enough sends, but no template's {words} is clearly higher than the others' yet.{note}"


def template_stats(counts: Iterable[TemplateCounts]) -> list[TemplateStats]:
    """Rates, lower bounds and the recommendation for every template, in the given order."""
    measured = [_measured(c) for c in counts]
    metric = choose_metric(measured)
    eligible = [s for s in measured if s.sent >= MIN_SENT]
    winner = _winner(eligible, metric)
    return [
        replace(s, recommended=s is winner, why=_why(s, metric, eligible, winner)) for s in measured
    ]


def _name(row: Mapping[str, Any]) -> str:
    return str(row.get("name") or "").casefold()


def sort_templates(rows: Iterable[Row], key: str, order: str) -> list[Row]:
    """`rows` (template fields merged with their stats) sorted by `key`; rows without a
    value (no rate before the first send) come last either way, ties go by name, and rows
    equal in both keep their order."""
    if key not in SORT_KEYS:
        raise InvalidInput("sort", f"must be one of {', '.join(SORT_KEYS)}")
    if order not in ("asc", "desc"):
        raise InvalidInput("order", "must be asc or desc")
    descending = order == "desc"
    if key == "name":
        return sorted(rows, key=_name, reverse=descending)
    by_name = sorted(rows, key=_name)
    present = [r for r in by_name if r.get(key) is not None]
    missing = [r for r in by_name if r.get(key) is None]
    # sort() is stable even with reverse=True, so the name order survives within ties.
    present.sort(key=lambda r: r[key], reverse=descending)
    return present + missing
