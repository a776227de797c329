"""Benchmark: our compose-time link rewrite against pytracking's ``adapt_html``, on a
newsletter built from the real templates of the shared corpus (``../shared/corpus/emails``).

Every template gives its body once, as a row of one outer table, and its head (styles,
conditional comments) to the one head; the links a template leaves for the sender to fill in
(``#``, merge tags, bare domains) are filled with tracked-looking URLs, as a sender would.
Four contenders rewrite that same document in the same process:

- ``compose``: our compose-time path (``shared.tracking.followed_body.followed_body``), which
  HMAC-SHA256-signs every link inside the timed part;
- ``rewrite``: our rewrite function alone (``shared.tracking.rewrite.rewrite_html``), its
  tracking URLs signed beforehand;
- ``default``: pytracking's ``adapt_html`` in its default configuration (each link's JSON in
  base64, no encryption), given only the two base URLs it cannot do without;
- ``encrypted``: the same with ``encryption_bytestring_key`` set (Fernet, per link).

Each round runs the four once in a fresh shuffled order, each after a garbage collection; the
median of each is kept, in the thread's CPU time (what the call costs, whatever else the
machine runs) and in wall time. Every contender must rewrite exactly the links the newsletter
was built with and add its open pixel.

Run from the project root: ``python -m bench.bench_rewrite``.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.core.ids import new_message_id
from shared.tracking.followed_body import followed_body
from shared.tracking.rewrite import rewrite_html
from shared.tracking.tokens import TokenSigner
from tests.utils.corpus import CORPUS_EMAILS

TARGET = 8.0  # the compose path over pytracking's default configuration, CPU and wall time
ROUNDS = 31
BASE_URL = "https://t.example.org"
CLICK_BASE = f"{BASE_URL}/t/c/"
OPEN_BASE = f"{BASE_URL}/t/o/"
CONTENDERS = ("compose", "rewrite", "default", "encrypted")
SECTION = "<!-- section: {} -->"

_HEAD = re.compile(r"<head\b[^>]*>(.*?)</head\s*>", re.IGNORECASE | re.DOTALL)
_BODY_START = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_STYLE_ATTRIBUTE = re.compile(r"""\sstyle\s*=\s*(?:"[^"]*"|'[^']*')""", re.IGNORECASE)
# A document has one title and one set of meta tags: the newsletter's own.
_TITLE_AND_META = re.compile(r"<title\b.*?</title\s*>|<meta\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ANCHOR_HREF = re.compile(
    r"""(<a\s(?:[^>]*?\s)?href\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE | re.DOTALL
)
_BARE_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)

_DOCUMENT_START = """<!DOCTYPE html>
<html lang="en" xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml"
 xmlns:o="urn:schemas-microsoft-com:office:office">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The monthly digest</title>
"""
_BODY_START_TAGS = """</head>
<body style="margin:0;padding:0;word-spacing:normal;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
"""
_DOCUMENT_END = """</table>
</body>
</html>
"""


@dataclass(frozen=True, slots=True)
class Newsletter:
    """The benchmark's input and the number of links every rewriter must find in it."""

    html: str
    links: int  # the templates' own http(s) links and their placeholders, filled in
    sections: tuple[str, ...]  # the templates, in order, as "folder/file.html"


def _is_placeholder(value: str) -> bool:
    """A link the template leaves for the sender to fill in: "#", a merge tag, a bare domain."""
    return value != "" and not value.startswith(("http://", "https://", "mailto:", "tel:"))


def _section(name: str, template: str) -> tuple[str, str, int]:
    """A template's head without title and meta, its body as a table row, and its links."""
    opening = _BODY_START.search(template)
    if opening is None:
        raise ValueError(f"{name} has no <body>")
    inner = template[opening.end() : template.lower().rfind("</body")]
    slug = re.sub(r"[^a-z0-9]+", "-", name.removesuffix(".html").lower())
    links = 0

    def fill(match: re.Match[str]) -> str:
        nonlocal links
        value = match[2] if match[2] is not None else match[3]
        if not _is_placeholder(value):
            links += value.startswith(("http://", "https://"))
            return match[0]
        links += 1
        if _BARE_DOMAIN.fullmatch(value):
            url = f"https://www.{value}/contoso"
        else:
            url = (
                f"https://www.contoso.example/{slug}/{links}?utm_source=newsletter"
                f"&amp;utm_medium=email&amp;utm_campaign={slug}"
            )
        return f'{match[1]}"{url}"'

    body = _ANCHOR_HREF.sub(fill, inner)
    style = _STYLE_ATTRIBUTE.search(opening[0])  # the template's page colour and font
    row = f"{SECTION.format(name)}\n<tr><td{style[0] if style else ''}>\n{body}\n</td></tr>\n"
    head = _HEAD.search(template)
    return (_TITLE_AND_META.sub("", head[1]) if head else ""), row, links


def corpus_newsletter(corpus: Path = CORPUS_EMAILS) -> Newsletter:
    """One long newsletter made of every ``*.html`` template under `corpus`, each once, in the
    order of their paths: deterministic for a given corpus."""
    files = sorted(corpus.rglob("*.html"))
    if not files:
        raise FileNotFoundError(f"no HTML e-mails under {corpus} (../shared beside the repo?)")
    heads: list[str] = []
    rows: list[str] = []
    links = 0
    for path in files:
        head, row, found = _section(path.relative_to(corpus).as_posix(), path.read_text("utf-8"))
        heads.append(head)
        rows.append(row)
        links += found
    return Newsletter(
        html=_DOCUMENT_START + "".join(heads) + _BODY_START_TAGS + "".join(rows) + _DOCUMENT_END,
        links=links,
        sections=tuple(path.relative_to(corpus).as_posix() for path in files),
    )


@dataclass(frozen=True, slots=True)
class Timing:
    """Milliseconds of each round, in the thread's CPU time and in wall time."""

    cpu_ms: tuple[float, ...]
    wall_ms: tuple[float, ...]

    @property
    def cpu(self) -> float:
        """Median CPU time."""
        return statistics.median(self.cpu_ms)

    @property
    def wall(self) -> float:
        """Median wall time."""
        return statistics.median(self.wall_ms)


@dataclass(frozen=True, slots=True)
class RewriteRun:
    """One run: the input, each contender's timings, the links each rewrote."""

    bytes: int
    templates: int
    links: int
    rounds: int
    load_average: float
    timings: dict[str, Timing]
    rewritten: dict[str, int]
    pixels: dict[str, bool]

    @property
    def checked(self) -> bool:
        """Every contender rewrote exactly the newsletter's links and added its pixel."""
        return all(n == self.links for n in self.rewritten.values()) and all(self.pixels.values())

    def speedup(self, theirs: str, ours: str = "compose", *, wall: bool = False) -> float:
        """How many times faster `ours` is than `theirs`: median over median."""
        t, o = self.timings[theirs], self.timings[ours]
        return t.wall / o.wall if wall else t.cpu / o.cpu

    @property
    def met(self) -> bool:
        """The target, in CPU time and in wall time alike."""
        return min(self.speedup("default"), self.speedup("default", wall=True)) >= TARGET


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    cpu, wall = time.thread_time(), time.perf_counter()
    call()
    return (time.thread_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def measure(rounds: int = ROUNDS, newsletter: Newsletter | None = None) -> RewriteRun:
    """`rounds` interleaved rounds of the four contenders on the corpus newsletter."""
    from cryptography.fernet import Fernet
    from pytracking import Configuration
    from pytracking.html import adapt_html

    letter = newsletter or corpus_newsletter()
    document = letter.html
    signer = TokenSigner({"bench": b"bench-key-0123456789abcdef012345"}, "bench")
    message_id = new_message_id("bench@contoso.example")
    metadata = {"message_id": message_id}  # what our tokens carry besides the link's index
    configurations: dict[str, Any] = {
        "default": Configuration(
            base_open_tracking_url=OPEN_BASE, base_click_tracking_url=CLICK_BASE
        ),
        "encrypted": Configuration(
            base_open_tracking_url=OPEN_BASE,
            base_click_tracking_url=CLICK_BASE,
            encryption_bytestring_key=Fernet.generate_key(),
        ),
    }
    click = signer.signer_for("click", message_id)
    presigned = [CLICK_BASE + click(i) for i in range(letter.links)]

    def compose() -> str:
        return followed_body(
            document,
            message_id=message_id,
            signer=signer,
            base_url=BASE_URL,
            own_hosts=["t.example.org"],
            files=[],
        ).html

    def rewrite() -> str:
        return rewrite_html(
            document,
            # A link beyond the expected ones still gets a URL, so that the check counts it.
            tracked_url=lambda i, _url: presigned[i] if i < len(presigned) else CLICK_BASE,
            pixel_url=f"{OPEN_BASE}pixel.gif",
            own_hosts=["t.example.org"],
        ).html

    def pytracking(configuration: Any) -> Callable[[], str]:
        def run() -> str:
            html: str = adapt_html(document, metadata, configuration=configuration)
            return html

        return run

    calls: dict[str, Callable[[], str]] = {
        "compose": compose,
        "rewrite": rewrite,
        "default": pytracking(configurations["default"]),
        "encrypted": pytracking(configurations["encrypted"]),
    }
    load_average = os.getloadavg()[0]
    # The check, untimed, is also the warm-up.
    outputs = {name: call() for name, call in calls.items()}
    rewritten = {name: html.count(CLICK_BASE) for name, html in outputs.items()}
    pixels = {name: OPEN_BASE in html for name, html in outputs.items()}
    del outputs

    cpu: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    wall: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    order = list(CONTENDERS)
    shuffle = random.Random(20240601).shuffle
    for _ in range(rounds):
        # A fresh order each round: no contender always runs right after the same other one
        # (after pytracking, say, whose freed memory the next call faults in again).
        shuffle(order)
        for name in order:
            gc.collect()
            spent, elapsed = _timed(calls[name])
            cpu[name].append(spent)
            wall[name].append(elapsed)
    return RewriteRun(
        bytes=len(document.encode("utf-8")),
        templates=len(letter.sections),
        links=letter.links,
        rounds=rounds,
        load_average=load_average,
        timings={name: Timing(tuple(cpu[name]), tuple(wall[name])) for name in CONTENDERS},
        rewritten=rewritten,
        pixels=pixels,
    )


def report(run: RewriteRun) -> str:
    """Plain-text lines for the terminal."""
    lines = [
        f"rewrite: newsletter of {run.templates} corpus templates, {run.bytes / 1e6:.2f} MB, "
        f"{run.links} links; medians of {run.rounds} interleaved rounds, load average "
        f"{run.load_average:.2f}"
    ]
    for name in CONTENDERS:
        t = run.timings[name]
        lines.append(
            f"  {name:9} cpu {t.cpu:7.1f} ms  wall {t.wall:7.1f} ms  "
            f"links {run.rewritten[name]}/{run.links}"
        )
    lines += [
        f"  compose path: {run.speedup('default'):.1f}x pytracking default (wall "
        f"{run.speedup('default', wall=True):.1f}x; target >= {TARGET:.0f}x: "
        f"{'met' if run.met else 'MISSED'}), {run.speedup('encrypted'):.1f}x encrypted",
        f"  rewrite function alone: {run.speedup('default', 'rewrite'):.1f}x default, "
        f"{run.speedup('encrypted', 'rewrite'):.1f}x encrypted",
    ]
    if not run.checked:
        lines.append("  CHECK FAILED: a contender rewrote other links or added no pixel")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_rewrite", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved timed rounds")
    run = measure(parser.parse_args().rounds)
    print(report(run))
    if not run.checked:
        raise SystemExit("the rewrite check failed")


if __name__ == "__main__":
    main()
