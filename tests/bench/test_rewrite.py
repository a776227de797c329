from __future__ import annotations

import itertools
import re

import pytest
from pytracking import Configuration
from pytracking.html import adapt_html

from bench import bench_rewrite, performance_doc
from bench.bench_rewrite import CLICK_BASE, SECTION, Newsletter, corpus_newsletter
from shared.tracking.rewrite import rewrite_html
from tests.utils.corpus import CORPUS_EMAILS, corpus_files


@pytest.fixture(scope="module")
def newsletter() -> Newsletter:
    return corpus_newsletter()


def followed(html: str) -> list[str]:
    """Our rewriter's links, each replaced by a marker that says its index."""
    return [
        link.url
        for link in rewrite_html(html, tracked_url=lambda i, _: f"@@{i}@@", pixel_url=None).links
    ]


def test_the_newsletter_is_every_corpus_template_once(newsletter: Newsletter) -> None:
    names = [path.relative_to(CORPUS_EMAILS).as_posix() for path in corpus_files()]
    assert len(names) > 50
    assert list(newsletter.sections) == names
    starts = [newsletter.html.index(SECTION.format(name)) for name in names]
    assert starts == sorted(starts)
    assert newsletter.html.count("<!-- section: ") == len(names)
    assert newsletter.html.count("<![endif]-->") > 1000  # Outlook's markup came along
    assert newsletter.html.count('style="') > 5000  # and the inline styles


def test_every_template_contributes_links_and_the_count_is_the_one_promised(
    newsletter: Newsletter,
) -> None:
    ours = followed(newsletter.html)
    assert len(ours) == newsletter.links == 473  # the corpus as docs/performance.md reports it
    html = newsletter.html
    cuts = [html.index(SECTION.format(name)) for name in newsletter.sections] + [len(html)]
    per_section = [len(followed(html[a:b])) for a, b in itertools.pairwise(cuts)]
    assert all(n >= 1 for n in per_section), dict(
        zip(newsletter.sections, per_section, strict=True)
    )
    assert sum(per_section) == newsletter.links
    # The templates' own links are kept, their placeholders filled in: none is left to skip.
    assert sum("contoso" in url for url in ours) > 400
    assert "https://sendgrid.com" in ours and "http://htmlemail.io" in ours
    assert all(url.startswith(("http://", "https://")) for url in ours)


def test_pytracking_rewrites_the_same_links(newsletter: Newsletter) -> None:
    configuration = Configuration(
        base_open_tracking_url="https://t.example.org/t/o/", base_click_tracking_url=CLICK_BASE
    )
    html = adapt_html(newsletter.html, {"message_id": "m"}, configuration=configuration)
    assert html.count(CLICK_BASE) == newsletter.links


def test_our_rewrite_of_the_newsletter_keeps_every_other_byte(newsletter: Newsletter) -> None:
    text = newsletter.html
    assert "@@" not in text
    result = rewrite_html(text, tracked_url=lambda i, _: f"@@{i}@@", pixel_url=None)
    raw = [text[slice(*link.span)] for link in result.links]
    assert re.sub(r"@@(\d+)@@", lambda m: raw[int(m[1])], result.html) == text


def test_the_benchmark_checks_both_sides_and_reports_same_run_ratios(
    newsletter: Newsletter,
) -> None:
    run = bench_rewrite.measure(rounds=1, newsletter=newsletter)
    assert run.checked, run.rewritten
    assert set(run.timings) == set(bench_rewrite.CONTENDERS)
    assert all(len(t.cpu_ms) == len(t.wall_ms) == 1 for t in run.timings.values())
    compose, default = run.timings["compose"], run.timings["default"]
    assert run.speedup("default") == default.cpu / compose.cpu
    assert run.speedup("default", wall=True) == default.wall / compose.wall
    assert "pytracking default" in bench_rewrite.report(run)
    section = "\n".join(performance_doc._rewrite_section(run))
    assert f"{run.links} followable links" in section and "encryption on" in section
    assert "Check: every contender rewrote exactly" in section
    assert len(performance_doc._rewrite_summary(run)) == 2
