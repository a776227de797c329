from __future__ import annotations

import html as html_lib
import random
import re
import time
from collections import Counter
from collections.abc import Collection
from html.parser import HTMLParser
from pathlib import Path

import pytest

from shared.tracking.rewrite import (
    RewriteResult,
    decode_attribute_value,
    pixel_markup,
    rewrite_html,
)
from shared.tracking.urls import host_of, is_followable
from tests.utils.corpus import CORPUS_EMAILS, corpus_files

OURS = "trk.test"
PIXEL_URL = "https://trk.test/o/m1?s=a&t=b"
CORPUS = corpus_files()
_WS = "\t\n\f\r "


def marker(index: int, url: str) -> str:
    """A unique tracking URL per link; its "&" must come out escaped."""
    return f"https://{OURS}/c/{index}?v={index}&m=1"


def rewrite(
    text: str, *, pixel_url: str | None = PIXEL_URL, own_hosts: Collection[str] = ()
) -> RewriteResult:
    return rewrite_html(text, tracked_url=marker, pixel_url=pixel_url, own_hosts=own_hosts)


def followed(text: str, own_hosts: Collection[str] = ()) -> list[str]:
    return [link.url for link in rewrite(text, pixel_url=None, own_hosts=own_hosts).links]


def restore(original: str, result: RewriteResult, pixel_url: str | None = PIXEL_URL) -> str:
    """Undo the rewrite with offsets only: drop the pixel, put each raw value back."""
    output = result.html
    if pixel_url is None:
        assert result.pixel_at is None
    else:
        pixel = pixel_markup(pixel_url)
        assert result.pixel_at is not None
        assert output[result.pixel_at : result.pixel_at + len(pixel)] == pixel
        output = output[: result.pixel_at] + output[result.pixel_at + len(pixel) :]
    pieces: list[str] = []
    consumed = written = 0
    for expected_index, link in enumerate(result.links):
        assert link.index == expected_index
        start, end = link.span
        assert consumed <= start <= end
        at = written + (start - consumed)
        written_marker = html_lib.escape(marker(link.index, link.url))
        assert output.startswith(written_marker, at), (link, output[at : at + 80])
        pieces += (output[written:at], original[start:end])
        written, consumed = at + len(written_marker), end
    pieces.append(output[written:])
    return "".join(pieces)


def reference_decode(raw: str) -> str:
    """html.unescape where it agrees with the attribute rules (references ending in ';')."""
    if re.fullmatch(r"(?:[^&]|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);)*", raw):
        return html_lib.unescape(raw)
    return decode_attribute_value(raw)


class HrefCollector(HTMLParser):
    """The standard library's parser, as an independent view of which hrefs a document has.

    It descends into downlevel-hidden conditional comments the way Outlook does.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "href":
                self.found.append((tag, value or ""))
                return

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_comment(self, data: str) -> None:
        inside = re.fullmatch(r"\[if [^\]]*\]>(.*)<!\[endif\]", data, re.DOTALL)
        if inside is not None:
            self.found += hrefs_of(inside[1])


def hrefs_of(text: str) -> list[tuple[str, str]]:
    collector = HrefCollector()
    collector.feed(text)
    collector.close()
    return collector.found


def is_link_element(tag: str) -> bool:
    return tag in ("a", "area") or tag.startswith("v:")


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 50
    assert all(path.is_relative_to(CORPUS_EMAILS) for path in CORPUS)


@pytest.fixture(params=CORPUS, ids=[path.relative_to(CORPUS_EMAILS).as_posix() for path in CORPUS])
def email(request: pytest.FixtureRequest) -> tuple[str, RewriteResult]:
    path: Path = request.param
    original = path.read_text(encoding="utf-8")
    return original, rewrite(original)


def test_corpus_rewrite_preserves_every_other_byte(email: tuple[str, RewriteResult]) -> None:
    original, result = email
    assert restore(original, result) == original


def test_corpus_links_are_decoded_followable_targets(email: tuple[str, RewriteResult]) -> None:
    original, result = email
    for link in result.links:
        raw = original[link.span[0] : link.span[1]]
        assert link.url == reference_decode(raw).strip(_WS)
        assert is_followable(link.url)
        assert host_of(link.url) != OURS


def test_corpus_leaves_exactly_the_other_hrefs_alone(email: tuple[str, RewriteResult]) -> None:
    original, result = email
    before, after = hrefs_of(original), hrefs_of(result.html)
    assert len(before) == len(after)
    ours = [href for tag, href in after if host_of(href) == OURS]
    assert len(ours) == len(result.links)
    assert all(is_link_element(tag) for tag, href in after if host_of(href) == OURS)
    # Whatever we did not wrap is byte for byte what was there, and was not ours to wrap.
    kept_before = Counter(
        (tag, href)
        for tag, href in before
        if not (is_link_element(tag) and is_followable(href.strip(_WS)))
    )
    kept_after = Counter((tag, href) for tag, href in after if host_of(href) != OURS)
    assert kept_after == kept_before


def test_corpus_keeps_conditional_comments(email: tuple[str, RewriteResult]) -> None:
    original, result = email
    for token in ("<!--[if", "<![endif]-->", "<!--", "-->"):
        assert result.html.count(token) == original.count(token)


def test_corpus_pixel_sits_just_before_the_last_body_end(
    email: tuple[str, RewriteResult],
) -> None:
    original, result = email
    assert result.pixel_at is not None
    after_pixel = result.pixel_at + len(pixel_markup(PIXEL_URL))
    if "</body" in original.lower():
        assert result.html.lower().rfind("</body") == after_pixel
    else:
        assert after_pixel == len(result.html)


def test_corpus_rewriting_twice_wraps_nothing_new(email: tuple[str, RewriteResult]) -> None:
    _, result = email
    again = rewrite(result.html, pixel_url=None, own_hosts={OURS})
    assert again.links == ()
    assert again.html == result.html


def test_corpus_has_links_to_follow_and_links_to_leave() -> None:
    """Guards the corpus tests against passing on nothing."""
    texts = [path.read_text(encoding="utf-8") for path in CORPUS]
    assert sum(len(rewrite(text).links) for text in texts) >= 20
    assert any("{{" in text and "href" in text for text in texts)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("https://a.example/?a=1&amp;b=2", "https://a.example/?a=1&b=2"),
        ("?a=1&#38;b=2&#x26;c=3&#X26;d", "?a=1&b=2&c=3&d"),
        ("?a=1&copy=2", "?a=1&copy=2"),
        ("?x&ampy", "?x&ampy"),
        ("?x&amp", "?x&"),
        ("?x&copy-1", "?x©-1"),
        ("?x&lt/", "?x</"),
        ("?x&notit;", "?x&notit;"),
        ("?x&notin;", "?x∉"),
        ("?x&nosuch;", "?x&nosuch;"),
        ("?x&#0;&#x110000;&#x80;&#xD800;", "?x\ufffd\ufffd€\ufffd"),
        ("?x&#x1;&#x81;&#x10FFFF;", "?x\x01\x81\U0010ffff"),
        ("?x&#" + "9" * 5000 + ";", "?x\ufffd"),
        ("?x&#x" + "0" * 5000 + "41;", "?xA"),
        ("&#104;ttps://a.example/", "https://a.example/"),
        ("a & b", "a & b"),
    ],
)
def test_character_references_follow_the_attribute_rules(raw: str, decoded: str) -> None:
    assert decode_attribute_value(raw) == decoded


def test_a_control_character_reference_makes_a_link_unfollowable() -> None:
    assert followed('<a href="https://a.example/&#x1;">') == []


def test_legacy_reference_rule_differs_from_html_unescape() -> None:
    raw = "https://a.example/?a=1&copy=2"
    assert html_lib.unescape(raw) != raw
    assert followed(f'<a href="{raw}">') == [raw]


def test_each_quoting_style_is_kept() -> None:
    text = (
        '<a href="https://a.example/1">1</a>'
        "<a href='https://a.example/2'>2</a>"
        "<a href=https://a.example/3>3</a>"
    )
    result = rewrite(text, pixel_url=None)
    assert result.html == (
        '<a href="https://trk.test/c/0?v=0&amp;m=1">1</a>'
        "<a href='https://trk.test/c/1?v=1&amp;m=1'>2</a>"
        "<a href=https://trk.test/c/2?v=2&amp;m=1>3</a>"
    )
    assert [link.url for link in result.links] == [f"https://a.example/{n}" for n in (1, 2, 3)]


def test_names_are_case_insensitive_and_spaces_surround_equals() -> None:
    text = "<A HREF = 'http://a.example/x' >x</A><AREA\nShape=rect\nHref\n=\nhttps://b.example/>"
    assert followed(text) == ["http://a.example/x", "https://b.example/"]


def test_other_attributes_that_mention_href_are_not_links() -> None:
    text = (
        '<a data-href="https://a.example/" xhref="https://b.example/" '
        'title="href=https://c.example/" hreflang="en">x</a>'
        '<div href="https://d.example/">not a link element</div>'
        '<abbr href="https://e.example/">'
    )
    assert followed(text) == []


def test_attributes_whose_names_start_with_href_are_passed_over() -> None:
    text = '<a hreflang="en" href-x=1 HREFX="https://x.example/" href="https://a.example/">'
    assert followed(text) == ["https://a.example/"]


def test_the_first_of_duplicate_hrefs_wins() -> None:
    assert followed('<a href="https://a.example/" href="https://b.example/">') == [
        "https://a.example/"
    ]
    assert followed('<a href href="https://b.example/">') == []


def test_a_quoted_greater_than_does_not_end_the_tag() -> None:
    text = (
        '<a title="1 > 0" href="https://a.example/">x</a>'
        "<div title=\"<a href='https://inside.example/'>\">y</div>"
        "<img alt='>' src=x><a href=\"https://b.example/\">"
    )
    assert followed(text) == ["https://a.example/", "https://b.example/"]


def test_surrounding_whitespace_is_stripped_from_the_target() -> None:
    result = rewrite('<a href=" \n https://a.example/x \t">', pixel_url=None)
    assert [link.url for link in result.links] == ["https://a.example/x"]
    assert result.links[0].span == (9, 33)


@pytest.mark.parametrize(
    "opener",
    ["<!--[if mso]>", "<!--[if mso | IE]>", "<!--[if gte mso 9]>", "<!--[if (gte mso 9)|(IE)]>"],
)
def test_vml_buttons_in_outlook_conditional_comments_are_followed(opener: str) -> None:
    text = (
        f'{opener}<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" '
        'href="https://vml.example/?a=1&amp;b=2" arcsize="10%"><center>Go</center>'
        '</v:roundrect><v:shape HREF="https://shape.example/"></v:shape><![endif]-->'
        '<!--[if !mso]><!--><a href="https://vml.example/?a=1&amp;b=2">Go</a><!--<![endif]-->'
    )
    result = rewrite(text, pixel_url=None)
    assert [link.url for link in result.links] == [
        "https://vml.example/?a=1&b=2",
        "https://shape.example/",
        "https://vml.example/?a=1&b=2",
    ]
    assert result.html.startswith(f'{opener}<v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" ')
    assert restore(text, result, pixel_url=None) == text


def test_ordinary_comments_are_left_alone() -> None:
    text = (
        '<!-- <a href="https://old.example/"> -->'
        '<!-- [if mso]> <a href="https://spaced.example/"> <![endif] -->'
        '<!--- <a href="https://dashes.example/"> --->'
        '<a href="https://live.example/">'
    )
    assert followed(text) == ["https://live.example/"]


def test_a_comment_ends_at_its_first_end_even_inside_a_conditional() -> None:
    """Browsers end `<!--[if mso]><!-- x -->` at the first "-->": what follows is content."""
    text = '<!--[if mso]><!-- x --><a href="https://seen.example/"><![endif]-->'
    assert followed(text) == ["https://seen.example/"]


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ('<!--[if mso]><table><td style="a-b"><![endif]--><a href="https://a.example/">', ["a"]),
        ('<!--[if mso]><td title="x-->"><a href="https://b.example/">x</a><![endif]-->', ["b"]),
        ('<!--[if mso]><td a=x--><a href="https://c.example/"><![endif]-->', ["c"]),
        ('<!--[if mso]><p>--!><a href="https://d.example/"><![endif]-->', ["d"]),
        ('<!--[if mso]><v:roundrect href="https://e.example/"><![endif]-->', ["e"]),
        ('<!--[if mso]><<a href="https://f.example/"><![endif]-->', ["f"]),
        ("<!--[if mso]><td title=\"<a href='https://g.example/'>\"><![endif]-->", []),
        ('<!--[if mso]><td title="<![endif]-->"><a href="https://h.example/"><![endif]-->', ["h"]),
    ],
)
def test_conditional_comments_passed_over_whole_end_where_comments_end(
    text: str, links: list[str]
) -> None:
    """Most conditional comments hold no link and are skipped in one step: only those that
    cannot hold one, and only up to where the comment really ends."""
    assert followed(text) == [f"https://{name}.example/" for name in links]
    assert followed(f"<p>{text}</p>" * 3) == [f"https://{name}.example/" for name in links] * 3


@pytest.mark.parametrize(
    "element",
    [
        "<script>var s = \"<a href='https://x.example/'>\";</script>",
        '<style>a[href="https://x.example/"] { color: red }</style>',
        '<textarea><a href="https://x.example/"></textarea>',
        '<title><a href="https://x.example/"></title>',
        '<xmp><a href="https://x.example/"></xmp>',
        '<SCRIPT type="text/javascript">document.write("</a><a href=https://x.example/>")</SCRIPT >',
    ],
)
def test_raw_text_elements_are_not_scanned(element: str) -> None:
    assert followed(element + '<a href="https://after.example/">') == ["https://after.example/"]


def test_noscript_is_ordinary_markup() -> None:
    assert followed('<noscript><a href="https://n.example/">n</a></noscript>') == [
        "https://n.example/"
    ]


def test_stylesheets_base_sources_and_css_are_left_alone() -> None:
    text = (
        '<link href="https://fonts.example/css?family=Lato&amp;display=swap" rel="stylesheet">'
        '<base href="https://base.example/">'
        "<style>body { background: url(https://css.example/bg.png) }</style>"
        "<div style=\"background:url('https://inline.example/bg.png')\">"
        '<img src="https://img.example/a.png"><script src="https://js.example/a.js"></script>'
    )
    result = rewrite(text, pixel_url=None)
    assert result.links == ()
    assert result.html == text


@pytest.mark.parametrize(
    "href",
    [
        "mailto:editor@example.com",
        "tel:+441234567890",
        "sms:+441234567890",
        "#top",
        "#",
        "javascript:void(0)",
        "data:text/html;base64,PGE+",
        "cid:logo@example",
        "",
        "   ",
        "/relative/path",
        "relative.html",
        "twitter.com",
        "{{this.c2a_link}}",
        "{{{c2a_link}}}",
        "[Unsubscribe_Preferences]",
        "<%asm_global_unsubscribe_raw_url%>",
        "*|UNSUB|*",
        "%%unsub%%",
        "https://{{domain}}/x",
        "https://[[host]]/x",
        "ftp://files.example/x",
    ],
)
def test_non_links_and_placeholders_are_left_alone(href: str) -> None:
    text = f"<a href=\"{html_lib.escape(href)}\">x</a><area href='{html_lib.escape(href)}'>"
    result = rewrite(text, pixel_url=None)
    assert result.links == ()
    assert result.html == text


def test_protocol_relative_links_are_followed() -> None:
    assert followed('<a href="//cdn.example/x?y=1">') == ["//cdn.example/x?y=1"]


def test_links_to_our_own_hosts_are_not_wrapped_again() -> None:
    text = (
        '<a href="https://TRK.test:8443/c/1">a</a>'
        '<a href="//trk.test/c/2">b</a>'
        '<a href="https://sub.trk.test/c/3">c</a>'
    )
    assert followed(text, own_hosts={"Trk.Test"}) == ["https://sub.trk.test/c/3"]


def test_indexes_follow_document_order_and_each_occurrence_counts() -> None:
    text = '<a href="https://a.example/">1</a>' * 3
    result = rewrite(text, pixel_url=None)
    assert [link.index for link in result.links] == [0, 1, 2]
    assert [link.span for link in result.links] == [
        found.span() for found in re.finditer("https://a.example/", text)
    ]


def test_pixel_goes_before_the_last_real_body_end() -> None:
    text = (
        "<html><BODY><p>x</p><!-- </body> --><script>'</body>'</script>"
        "<!--[if mso]></body><![endif]--></BoDy ><p>late</p></body\n></html>"
    )
    result = rewrite(text)
    assert result.pixel_at == text.rindex("</body\n>")
    assert result.html[result.pixel_at :].startswith(pixel_markup(PIXEL_URL) + "</body\n>")
    assert restore(text, result) == text


def test_a_body_end_only_outlook_sees_does_not_take_the_pixel() -> None:
    text = "<body>x</body><!--[if mso]></body><![endif]--><!-- </body> -->"
    assert rewrite(text).pixel_at == text.index("</body>")


def test_pixel_is_appended_without_a_body_end() -> None:
    text = '<p>Hello <a href="https://a.example/">there</a></p>'
    result = rewrite(text)
    assert result.html.endswith(pixel_markup(PIXEL_URL))
    assert result.pixel_at == len(result.html) - len(pixel_markup(PIXEL_URL))
    assert restore(text, result) == text


@pytest.mark.parametrize(
    "tail",
    [
        '<!-- unclosed <a href="https://c.example/">',
        "<div title=\"unclosed <a href='https://c.example/'>",
        "<style>p { color: red }",
        "<plaintext><a href=https://c.example/>",
        "<a href='https://c.example/'",
    ],
)
def test_pixel_is_not_swallowed_by_a_construct_left_open(tail: str) -> None:
    head = '<p><a href="https://a.example/">a</a></p>'
    result = rewrite(head + tail)
    assert [link.url for link in result.links] == ["https://a.example/"]
    assert result.pixel_at == len(head) + len(result.html) - len(head + tail) - len(
        pixel_markup(PIXEL_URL)
    )
    assert result.html.endswith(pixel_markup(PIXEL_URL) + tail)
    assert restore(head + tail, result) == head + tail


def test_empty_input_gets_just_the_pixel() -> None:
    result = rewrite("")
    assert result == RewriteResult(html=pixel_markup(PIXEL_URL), links=(), pixel_at=0)
    assert rewrite("", pixel_url=None) == RewriteResult(html="", links=(), pixel_at=None)


def test_pixel_markup_is_an_escaped_transparent_one_by_one_image() -> None:
    markup = pixel_markup('https://p.example/o?a=1&b="2"')
    assert markup.startswith('<img src="https://p.example/o?a=1&amp;b=&quot;2&quot;" ')
    for attribute in ('width="1"', 'height="1"', 'alt=""', 'border="0"', "display:block"):
        assert attribute in markup


def test_no_pixel_without_a_pixel_url() -> None:
    text = "<html><body>hi</body></html>"
    assert rewrite(text, pixel_url=None) == RewriteResult(html=text, links=(), pixel_at=None)


def test_unquoted_value_is_quoted_when_the_tracking_url_needs_it() -> None:
    result = rewrite_html(
        "<a href=https://a.example/>x</a>",
        tracked_url=lambda index, url: "https://t.example/a b",
        pixel_url=None,
    )
    assert result.html == '<a href="https://t.example/a b">x</a>'


def test_garbage_never_raises_and_keeps_its_bytes() -> None:
    rng = random.Random(20240601)
    pieces = [
        "<", ">", "</", "<a", "<A ", "<area", "<v:rect", " href=", "HREF =", '"', "'", "=",
        "https://a.example/", "//b.example", "&amp;", "&copy", "&#", "<!--", "-->", "--!>",
        "<!--[if mso]>", "<![endif]-->", "<!-->", "<script>", "</script>", "<style>",
        "</body>", "<body>", "<!DOCTYPE html>", "<?xml?>", "</ 3>", " ", "\n", "é", "\u2028",
        "\x00", "text", "/", "<p", "<textarea>", "</textarea",
    ]  # fmt: skip
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        result = rewrite(text)
        assert restore(text, result) == text
        assert all(is_followable(link.url) for link in result.links)


def test_comments_opening_inside_a_conditional_comment_cost_no_rescans() -> None:
    """Each nested opener once looked ahead to the same far end: quadratic, minutes long."""
    text = '<!--[if mso]><a href="https://a.example/">' * 5000 + "<![endif]-->"
    started = time.perf_counter()
    result = rewrite(text)
    assert time.perf_counter() - started < 2
    assert [link.url for link in result.links] == ["https://a.example/"]
    assert restore(text, result) == text
