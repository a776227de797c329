"""Benchmark: our byte-preserving rewriter against pytracking's ``adapt_html``.

Both run on the same generated newsletter in the same process. Two figures for our side:

- ``ours_ms``: the rewrite function (``shared.tracking.rewrite.rewrite_html``) with tracking URLs
  signed beforehand, the pure function the target is set on;
- ``compose_ms``: the whole compose-time path
  (``shared.tracking.followed_body.followed_body``), which also HMAC-signs every link inside
  the timed part.

pytracking reserialises the document through lxml and encrypts every link with Fernet inside
``adapt_html``; its signing cannot be timed apart, so it is compared with both.

Run from the project root: ``python -m bench.bench_rewrite``.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any

from shared.core.ids import new_message_id
from shared.tracking.followed_body import FollowedBody, followed_body
from shared.tracking.rewrite import RewriteResult, rewrite_html
from shared.tracking.tokens import TokenSigner

# Filler text for the newsletter, with some non-ASCII words as real mail has.
_FILLER = (
    "spring collection arrives today with fresh colours lightweight fabrics and a few "
    "classics we brought back because you asked free delivery on orders over fifty euros "
    "limited stock the team picked these favourites for long evenings outside read the "
    "story behind our new studio café und Grüße aus München naïve résumé"
)
_WORDS = tuple(_FILLER.split())

_HEAD = """<!DOCTYPE html>
<html lang="en" xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml"
 xmlns:o="urn:schemas-microsoft-com:office:office">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The weekly digest</title>
<!--[if mso]>
<xml><o:OfficeDocumentSettings><o:AllowPNG/><o:PixelsPerInch>96</o:PixelsPerInch>
</o:OfficeDocumentSettings></xml>
<![endif]-->
<link href="https://fonts.example.net/css2?family=Inter:wght@400;700&amp;display=swap"
 rel="stylesheet">
<style>
  body { margin: 0; padding: 0; background: #f4f4f4 url("https://cdn.example.net/bg.png"); }
  .button a { background: #1a73e8; color: #ffffff !important; }
  @media screen and (max-width: 600px) { .column { width: 100% !important; } }
</style>
</head>
<body style="margin:0;padding:0;background-color:#f4f4f4;">
<a id="top"></a>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
<tr><td align="center" style="padding:24px 0;">
<table role="presentation" class="column" width="600" cellpadding="0" cellspacing="0"
 border="0" style="width:600px;max-width:600px;background:#ffffff;">
"""

_FOOT = """<tr><td style="padding:24px;font-family:Arial,sans-serif;font-size:12px;color:#888;">
<p>Questions? <a href="mailto:editor@example.com?subject=Digest%20feedback">Write to us</a>
or <a href="tel:+441234567890">call</a>. <a href="#top">Back to top</a></p>
<!-- footer links: <a href="https://old.example.com/unsubscribe">old unsubscribe</a> -->
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""


def _url(rng: random.Random, number: int) -> str:
    shop = rng.choice(("shop", "store", "news", "blog"))
    path = "/".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))
    return (
        f"https://www.{shop}-{rng.randint(1, 40)}.example.com/{path}?utm_source=newsletter"
        f"&amp;utm_medium=email&amp;utm_campaign=week{rng.randint(1, 52)}&amp;item={number}"
    )


def _article(rng: random.Random, number: int) -> tuple[str, int]:
    quote = rng.choice(('"', '"', '"', "'"))
    return (
        '<tr><td class="article" style="padding:16px 24px;font-family:Arial,sans-serif;">\n'
        f'<a href="{_url(rng, number)}"><img src="https://cdn.example.net/img/{number}.jpg" '
        'width="552" alt="" style="display:block;width:100%;height:auto;border:0;"></a>\n'
        '<h2 style="margin:12px 0 4px;font-size:20px;line-height:26px;color:#111111;">'
        f"<a href={quote}{_url(rng, number + 1)}{quote} "
        'style="color:#111111;text-decoration:none;" target="_blank">'
        f"Story number {number}</a></h2>\n"
        '<p style="margin:0;font-size:15px;line-height:22px;color:#333333;">{filler}</p>\n'
        '<p style="margin:8px 0 0;"><a href="' + _url(rng, number + 2) + '" '
        'style="color:#1a73e8;">Read more &rarr;</a> &middot; <a href="#top">Top</a></p>\n'
        "</td></tr>\n",
        3,
    )


def _button(rng: random.Random, number: int) -> tuple[str, int]:
    url = _url(rng, number)
    return (
        '<tr><td align="center" class="button" style="padding:8px 24px 24px;">\n'
        '<!--[if mso]><v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" '
        f'xmlns:w="urn:schemas-microsoft-com:office:word" href="{url}" '
        'style="height:44px;v-text-anchor:middle;width:220px;" arcsize="10%" stroke="f" '
        'fillcolor="#1a73e8"><w:anchorlock/><center style="color:#ffffff;font-family:'
        'sans-serif;font-size:16px;font-weight:bold;">Shop the sale</center></v:roundrect>'
        "<![endif]-->\n"
        f'<!--[if !mso]><!--><a href="{url}" style="background:#1a73e8;border-radius:4px;'
        "color:#ffffff;display:inline-block;font-family:sans-serif;font-size:16px;"
        'line-height:44px;text-align:center;text-decoration:none;width:220px;">'
        "Shop the sale</a><!--<![endif]-->\n"
        '<p style="margin:8px 0 0;font-size:13px;color:#666666;">{filler}</p>\n'
        "</td></tr>\n",
        2,
    )


def _single(rng: random.Random, number: int) -> tuple[str, int]:
    return (
        '<tr><td style="padding:4px 24px;font-size:14px;">'
        f'<a href="{_url(rng, number)}">One more thing</a> {{filler}}</td></tr>\n',
        1,
    )


def make_newsletter(target_bytes: int = 1_000_000, links: int = 2000) -> str:
    """A deterministic newsletter of about target_bytes with exactly `links` followable links."""
    rng = random.Random(20240601)
    items: list[str] = []
    count = 0
    while count < links:
        left = links - count
        if left >= 3 and len(items) % 7 != 6:
            item, found = _article(rng, count)
        elif left >= 2:
            item, found = _button(rng, count)
        else:
            item, found = _single(rng, count)
        items.append(item)
        count += found
    skeleton = len(_HEAD) + len(_FOOT) + sum(len(item) - len("{filler}") for item in items)
    per_item = max(0, (target_bytes - skeleton) // len(items))
    body = []
    for item in items:
        words: list[str] = []
        size = 0
        while size < per_item:
            word = rng.choice(_WORDS)
            words.append(word)
            size += len(word) + 1
        body.append(item.replace("{filler}", " ".join(words)[:per_item]))
    return _HEAD + "".join(body) + _FOOT


def _best(repeat: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def measure(repeat: int = 5) -> dict[str, float]:
    """Best-of-`repeat` milliseconds for both rewriters on the same newsletter."""
    from cryptography.fernet import Fernet
    from pytracking import Configuration
    from pytracking.html import adapt_html

    links = 2000
    document = make_newsletter(1_000_000, links)
    signer = TokenSigner({"bench": b"bench-key-0123456789abcdef012345"}, "bench")
    message_id = new_message_id("bench@contoso.example")
    configuration: Any = Configuration(
        base_open_tracking_url="https://t.example.org/o/",
        base_click_tracking_url="https://t.example.org/c/",
        encryption_bytestring_key=Fernet.generate_key(),
    )
    metadata = {"message_id": "msg-1", "recipient": "r-1"}

    def ours_once() -> FollowedBody:
        # The whole compose-time path: scan, HMAC-sign every link, splice, add the pixel.
        return followed_body(
            document,
            message_id=message_id,
            signer=signer,
            base_url="https://t.example.org",
            own_hosts=["t.example.org"],
            files=[],
        )

    click = signer.signer_for("click", message_id)
    presigned = [f"https://t.example.org/t/c/{click(i)}" for i in range(links)]

    def rewrite_once() -> RewriteResult:
        return rewrite_html(
            document,
            tracked_url=lambda index, _url: presigned[index],
            pixel_url="https://t.example.org/t/o/pixel.gif",
            own_hosts=["t.example.org"],
        )

    found = len(ours_once().links)
    ours = _best(repeat, rewrite_once)
    compose = _best(repeat, ours_once)
    theirs = _best(
        repeat,
        lambda: adapt_html(
            document,
            metadata,
            click_tracking=True,
            open_tracking=True,
            configuration=configuration,
        ),
    )
    return {
        "ours_ms": ours,
        "compose_ms": compose,
        "compose_speedup": theirs / compose,
        "pytracking_ms": theirs,
        "speedup": theirs / ours,
        "bytes": float(len(document.encode("utf-8"))),
        "links": float(found),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
