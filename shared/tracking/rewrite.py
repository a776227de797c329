"""Rewrite a seller's HTML e-mail: wrap its links in tracking URLs and add the open pixel.

The HTML is never reserialised: a single-pass scanner finds the href values a mail client would
follow, and the output is the input with only those values replaced and the pixel inserted.
Reserialising through a parser reorders attributes, drops Outlook conditional comments and
breaks templates that the sender tested byte for byte.

The scanner follows the HTML5 tokenizer where it matters for finding links and the body end:
quoted attribute values may hold ``>``; the first of duplicate attributes wins; comments,
``<script>``, ``<style>``, ``<textarea>``, ``<title>``, ``<xmp>``, ``<iframe>``, ``<noembed>``
and ``<noframes>`` are skipped as raw text (``<plaintext>`` to the end). ``<noscript>`` is
ordinary markup, since mail clients run no scripts and show its content. The inside of a
downlevel-hidden conditional comment (``<!--[if mso]> ... <![endif]-->``) is scanned as
markup, because Outlook renders it.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from html.entities import html5 as _NAMED_REFS
from string import ascii_lowercase

from shared.tracking.urls import followable_host


@dataclass(slots=True)
class FollowedLink:
    """One link that was replaced, with where its raw value sat in the input. (Not frozen: a
    newsletter makes thousands of these, and a frozen dataclass is made three times slower.)"""

    index: int
    url: str
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class RewriteResult:
    """The rewritten HTML, its links in document order and where the pixel went."""

    html: str
    links: tuple[FollowedLink, ...]
    pixel_at: int | None


def _any_case(word: str) -> str:
    """``script`` -> ``[sS][cC]...``: character classes keep the regex engine's fast paths."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


_WS = "\t\n\f\r "
_END_NAME = r"(?=[\t\n\f\r />])"
_NAME = r"[^\t\n\f\r />][^\t\n\f\r />=]*+"
_EQUALS = r"[\t\n\f\r ]*+=[\t\n\f\r ]*+"
_VALUE = r"""(?:"[^"]*+"|'[^']*+'|(?!["'])[^\t\n\f\r >]*+)"""
# One attribute as the HTML5 tokenizer reads it: a quote only opens a value right after "=",
# so `<a title=x"y>` ends at its ">", and `<a title="a>b">` does not end early.
# The commonest form, `="..."` right after the name, is tried first: one cheap test.
_ATTR = rf"""(?:="[^"]*+"|{_EQUALS}{_VALUE}|(?![\t\n\f\r ]*=))"""
_ATTRS = rf"[\t\n\f\r /]*+(?:{_NAME}{_ATTR}[\t\n\f\r /]*+)*+"
_HREF = _any_case("href")
_BODY = rf"{_any_case('body')}{_END_NAME}"
_RAW_TEXT = ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes")
_LINK_NAMES = rf"{_any_case('a')}{_END_NAME}|{_any_case('area')}{_END_NAME}|{_any_case('v:')}"


def _ordinary_start() -> str:
    """The first letters of a start tag that neither carries a link nor holds raw text.

    Alternatives that each begin with a character class let the regex engine reject most of
    them on one character, which matters: this runs for every tag of the document. A first
    letter that special names begin with is taken with the next character when that begins
    none of them (``<td``, ``<span``, ``<img``), without a look-ahead.
    """
    by_first: dict[str, list[str]] = {}
    for name in ("a", "area", *_RAW_TEXT, "plaintext"):
        by_first.setdefault(name[0], []).append(name[1:])
    seconds = {first: {rest[0] for rest in rests if rest} for first, rests in by_first.items()}
    seconds["v"] = {":"}  # v: starts a VML element, which may carry a link
    plain = "".join(c + c.upper() for c in ascii_lowercase if c not in seconds)
    alternatives = [f"[{plain}]"]
    for first, chars in seconds.items():
        excluded = "".join(c + c.upper() if c.isalpha() else c for c in sorted(chars))
        alternatives.append(rf"{_any_case(first)}[^{excluded}\t\n\f\r />]")
    alternatives.append(f"{_any_case('v')}(?!:)")
    for first, rests in by_first.items():
        names = "|".join(_any_case(rest) for rest in rests)
        alternatives.append(f"{_any_case(first)}(?!(?:{names}){_END_NAME})")
    return "(?:" + "|".join(alternatives) + ")"


# A raw-text element, content and end tag included, when it is closed at all.
_RAW_ELEMENTS = "|".join(
    rf"{_any_case(n)}{_END_NAME}{_ATTRS}>(?:[^<]++|<(?!/{_any_case(n)}{_END_NAME}))*+"
    rf"</{_any_case(n)}{_END_NAME}{_ATTRS}>"
    for n in _RAW_TEXT
)
# Up to the first "-->" or "--!>", the only ways a comment ends.
_COMMENT_BODY = r"(?:[^-]++|-(?!-!?>))*+"
# After "<!--": a downlevel-hidden conditional comment, whose comment ends with
# "<![endif]-->". Its inside is markup for Outlook, so it is scanned like the rest.
_CONDITIONAL = rf"\[if\b[^\]]*\]>(?={_COMMENT_BODY}(?<=<!\[endif\])--!?>)"

# A conditional comment with no "<a" or "<v" inside (in either case), where no reading of its
# inside can find a link: passed over whole rather than scanned apart, as most are (Outlook's
# table scaffolding). The look-ahead requires the first "<!" inside to be "<![endif]-->", with
# no such "<a" or "<v" before it; the rest runs to the first "-->" or "--!>" and requires it
# to be that same one, which makes this a conditional comment as _CONDITIONAL has it. Both
# parts search for one character at a time, which the regex engine does fast. Anything else
# ("<<", another "<!" inside) is left to the general path.
_PLAIN_CONDITIONAL = (
    r"!--\[if\b[^\]]*\]>(?=[^<]*+(?:<[^aAvV!<][^<]*+|<(?=<))*+<!\[endif\]--!?>)"
    r"[^>]*+(?:(?<!--)(?<!--!)>[^>]*+)*+(?:(?<=<!\[endif\]--)|(?<=<!\[endif\]--!))>"
)

# All the scanner needs, as one regex matched again and again from where the last match
# ended. The first part passes over text, end tags (a bare one like "</td>" first: most are),
# plain conditional comments, other comments, doctype and bogus comments, tags that cannot
# carry a link we follow, raw-text elements, and the opening of any other conditional comment
# (its inside is markup). No two of these can match at one place, so they are in the order
# that costs least: those starting "</" or "<!" are rejected on one character by a start tag.
# Then comes a link-bearing tag with the span of its first href (browsers ignore later
# duplicates), the start of a conditional comment, or </body>. Nothing there means the end of
# the input or a construct left open until the end.
_TOKEN = re.compile(
    r"[^<]*+(?:<(?:"
    r"/[ac-zAC-Z][^\t\n\f\r />]*+>"
    rf"|/[ac-zAC-Z][^\t\n\f\r />]*+{_ATTRS}>"
    rf"|/(?!{_BODY})[bB][^\t\n\f\r />]*+{_ATTRS}>"
    rf"|{_PLAIN_CONDITIONAL}"
    rf"|!--(?!{_CONDITIONAL})(?:-?>|{_COMMENT_BODY}--!?>)"
    r"|/(?![A-Za-z])[^>]*+>"
    r"|!(?!--)[^>]*+>"
    r"|\?[^>]*+>"
    rf"|{_ordinary_start()}[^\t\n\f\r />]*+{_ATTRS}>"
    rf"|{_RAW_ELEMENTS}"
    r"|(?![A-Za-z!/?])"
    r")[^<]*+)*+"
    r"(?:"
    rf"(?P<link><(?:{_LINK_NAMES})[^\t\n\f\r />]*+"
    rf"(?:[\t\n\f\r /]*+(?!{_HREF}[\t\n\f\r />=]){_NAME}{_ATTR})*+"
    rf"(?:[\t\n\f\r /]*+{_HREF}(?:{_EQUALS}(?P<href>{_VALUE})|(?![\t\n\f\r ]*=)){_ATTRS})?+"
    r"[\t\n\f\r /]*+>)"
    rf"|(?P<conditional><!--{_CONDITIONAL})"
    rf"|(?P<body></{_BODY}{_ATTRS}>)"
    r")?+"
)
_COMMENT_END = re.compile(r"--!?>")
_CHAR_REF = re.compile(
    r"&(?:#[xX](?P<hex>[0-9a-fA-F]+);?|#(?P<dec>[0-9]+);?|(?P<name>[A-Za-z][A-Za-z0-9]*;?))"
)
_BEYOND_UNICODE = 0x110000
_LONGEST_REF = max(len(name) for name in _NAMED_REFS)
_UNQUOTED_UNSAFE = re.compile(r"[\t\n\f\r `]")
# Cheap early outs for the commonest values that are not followed whatever they decode to.
_NEVER_FOLLOWED = ("#", "mailto:", "tel:")
_NEEDS_CARE = re.compile(r"[&<>\"'\t\n\f\r `]")

_PIXEL_STYLE = "display:block;width:1px;height:1px;border:0;margin:0;padding:0;"


def pixel_markup(pixel_url: str) -> str:
    """The exact open-pixel tag inserted, so callers and tests can find or strip it."""
    src = html_lib.escape(pixel_url, quote=True)
    return f'<img src="{src}" width="1" height="1" alt="" border="0" style="{_PIXEL_STYLE}" />'


def _numeric_ref(match: re.Match[str]) -> str:
    """Decode a numeric reference as HTML5 does, whatever the number of digits."""
    digits, base = (match["hex"], 16) if match["hex"] is not None else (match["dec"], 10)
    digits = digits.lstrip("0")
    code = int(digits or "0", base) if len(digits) <= 8 else _BEYOND_UNICODE
    if code == 0 or code >= _BEYOND_UNICODE or 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    if 0x80 <= code <= 0x9F:  # the C1 range means windows-1252 where that defines it
        try:
            return bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            pass
    return chr(code)


def _named_ref(value: str, match: re.Match[str]) -> str:
    """Decode a named reference with the attribute-value rule for legacy names without ';'."""
    candidate = match["name"]
    if candidate.endswith(";") and candidate in _NAMED_REFS:
        return _NAMED_REFS[candidate]
    for length in range(min(len(candidate), _LONGEST_REF), 1, -1):
        prefix = candidate[:length]
        if prefix in _NAMED_REFS and not prefix.endswith(";"):
            after = match.start("name") + length
            following = value[after : after + 1]
            if following == "=" or (following.isascii() and following.isalnum()):
                return match[0]
            return _NAMED_REFS[prefix] + candidate[length:]
    return match[0]


def decode_attribute_value(value: str) -> str:
    """Decode character references the way a browser does inside an attribute value.

    ``html.unescape`` would turn ``?a=1&copy=2`` into ``?a=1©=2``; browsers keep it literal.
    """
    if "&" not in value:
        return value
    if value.count("&") == value.count("&amp;"):
        return value.replace("&amp;", "&")

    def replace(match: re.Match[str]) -> str:
        if match["name"] is None:
            return _numeric_ref(match)
        return _named_ref(value, match)

    return _CHAR_REF.sub(replace, value)


def _scan(
    html: str, pos: int, end: int, hrefs: list[tuple[int, int, str]], *, top: bool
) -> tuple[int | None, int]:
    """Collect the href values of html[pos:end] as (start, end, quote) of each raw value.

    Returns the last real </body> (None if none) and where the text stops being markup: the
    end, or an unclosed comment, tag or raw-text element running to it, so that the pixel is
    never swallowed by one. Only the top level counts a </body>: one inside a conditional
    comment is seen by Outlook alone.
    """
    body_end = None
    while True:
        for token in _TOKEN.finditer(html, pos, end):
            kind = token.lastgroup
            if kind == "link":
                start, stop = token.span("href")
                if stop > start and html[start] in "\"'":
                    hrefs.append((start + 1, stop - 1, html[start]))
                elif start >= 0:
                    hrefs.append((start, stop, ""))
            elif kind == "body":
                if top:
                    body_end = token.start(kind)
            elif kind == "conditional":
                # Scanned on its own, bounded, so that nothing inside outlives the comment.
                close = _COMMENT_END.search(html, token.end(), end)
                if close is None:  # cannot happen: the regex looked ahead for it
                    return body_end, token.start(kind)
                _scan(html, token.end(), close.start() - len("<![endif]"), hrefs, top=False)
                pos = close.end()
                break
            else:
                return body_end, token.end()
        else:
            return body_end, end


def _written(url: str, quote: str) -> str:
    """The tracking URL escaped for the attribute, quoted if it was unquoted and must be."""
    value = html_lib.escape(url, quote=True)
    if quote == "" and (not value or _UNQUOTED_UNSAFE.search(value)):
        return f'"{value}"'
    return value


def rewrite_html(
    html: str,
    *,
    tracked_url: Callable[[int, str], str],
    pixel_url: str | None,
    own_hosts: Collection[str] = (),
) -> RewriteResult:
    """Replace every followable link with ``tracked_url(index, url)`` and add the open pixel.

    Links to ``own_hosts`` are left alone so that a message is never wrapped twice.
    """
    own = frozenset(host.lower() for host in own_hosts)
    hrefs: list[tuple[int, int, str]] = []
    body_end, markup_end = _scan(html, 0, len(html), hrefs, top=True)
    pixel = "" if pixel_url is None else pixel_markup(pixel_url)
    # Where the pixel goes; past the end of the input once placed, or when there is none.
    pixel_pos = len(html) + 1
    if pixel_url is not None:
        pixel_pos = body_end if body_end is not None else markup_end

    # The output is built from slices of the input in one pass, the pixel spliced in on the
    # way; shift is how far output offsets have moved from input offsets so far.
    parts: list[str] = []
    links: list[FollowedLink] = []
    last = shift = 0
    pixel_at = None
    for start, end, quote in hrefs:
        url = html[start:end]
        if url.startswith(_NEVER_FOLLOWED):
            continue
        if "&" in url:
            url = decode_attribute_value(url)
        url = url.strip(_WS)
        host = followable_host(url)
        if host is None or host in own:
            continue
        if pixel_pos <= start:
            parts += (html[last:pixel_pos], pixel)
            pixel_at, shift, last = pixel_pos + shift, shift + len(pixel), pixel_pos
            pixel_pos = len(html) + 1
        index = len(links)
        target = tracked_url(index, url)
        if not target or _NEEDS_CARE.search(target) is not None:
            target = _written(target, quote)
        parts += (html[last:start], target)
        shift += len(target) - (end - start)
        last = end
        links.append(FollowedLink(index, url, (start, end)))
    if pixel_pos <= len(html):
        parts += (html[last:pixel_pos], pixel)
        pixel_at, last = pixel_pos + shift, pixel_pos
    parts.append(html[last:])
    return RewriteResult(html="".join(parts), links=tuple(links), pixel_at=pixel_at)
