from __future__ import annotations

import random

import pytest

from shared.tracking.urls import followable_host, host_of, is_followable, redirect_location


@pytest.mark.parametrize(
    ("target", "location"),
    [
        (
            "https://bücher.example/straße?q=ä",
            "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4",
        ),
        ("https://a.example/x%2Fy?q=%e2%82%ac", "https://a.example/x%2Fy?q=%e2%82%ac"),
        ("HTTPS://Example.COM/A?b=2&a=1&b=1#Frag", "HTTPS://Example.COM/A?b=2&a=1&b=1#Frag"),
        ("//cdn.example/x?y=1", "https://cdn.example/x?y=1"),
        ("http://a.example:8080/p;q=1", "http://a.example:8080/p;q=1"),
        ("https://a.example/%0d%0a", "https://a.example/%0d%0a"),
        ("https://a.example/€ x", None),
        ("https://user:pw@a.example/", "https://user:pw@a.example/"),
        ("https://[2001:db8::1]:443/x", "https://[2001:db8::1]:443/x"),
        ("https://a.example/ü#ö", "https://a.example/%C3%BC#%C3%B6"),
        ("https://a.example", "https://a.example"),
        (
            "https://a.example/a|b[c]'d!*(e)~f@g,h+$i{j}^`k\"",
            "https://a.example/a|b[c]'d!*(e)~f@g,h+$i{j}^`k\"",
        ),
        ("https://a.example:65535/", "https://a.example:65535/"),
    ],
)
def test_redirect_location_changes_only_what_is_not_ascii(
    target: str, location: str | None
) -> None:
    if location is None:
        with pytest.raises(ValueError, match="followable"):
            redirect_location(target)
    else:
        assert redirect_location(target) == location


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "http:///x",
        "https://exa mple.com/",
        "https://a.example/\r\nSet-Cookie: x=1",
        "https://a.example/\n",
        "https://a.example/\tx",
        "mailto:someone@example.com",
        "tel:+441234",
        "ftp://files.example/x",
        "data:text/html,hi",
        "https://{{domain}}/x",
        "https://[Unsubscribe]/x",
        "https://%%host%%/x",
        "https://a.example:99999/",
        "https://a.example:65536/",
        "https://a.example:80x/",
        "https://[::1",
        "https://[not-ipv6]/",
        "https:\\\\evil.example",
        "https://good.example\\@evil.example/",
        "https://a..example/",
        "https://.example/",
        "/relative/path",
        "relative.example/x",
        "#top",
        "",
        "https://a.example/\ud800",
        "https://bü_cher.example/",
    ],
)
def test_not_followable_targets_are_refused(target: str) -> None:
    assert not is_followable(target)
    assert followable_host(target) is None
    with pytest.raises(ValueError, match="followable"):
        redirect_location(target)


@pytest.mark.parametrize(
    "target",
    [
        "http://a.example",
        "https://a.example/",
        "HTTP://A.EXAMPLE/X",
        "//cdn.example/lib.js",
        "https://a.example:443/x",
        "https://a.example:/x",
        "https://u@a.example/",
        "https://a.example./",
        "https://my_host.example/",
        "https://localhost/",
        "https://192.0.2.1/x",
        "https://[::1]/",
        "https://bücher.example/",
        "https://a.example/?q=%20&x=\u00e9",
    ],
)
def test_followable_targets_are_accepted(target: str) -> None:
    assert is_followable(target)
    location = redirect_location(target)
    assert location.isascii()
    assert not any(c.isspace() for c in location)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://Sub.Example.COM:8443/x", "sub.example.com"),
        ("//CDN.example/x", "cdn.example"),
        ("https://user:pw@Host.example/", "host.example"),
        ("https://Bücher.Example/x", "bücher.example"),
        ("https://[2001:DB8::1]:8080/", "[2001:db8::1]"),
        ("https://a.example?q=1", "a.example"),
        ("mailto:a@b.example", None),
        ("/relative", None),
        ("http:///x", None),
    ],
)
def test_host_of_is_lower_case_without_port_or_user(url: str, host: str | None) -> None:
    assert host_of(url) == host


def test_followable_host_agrees_with_the_slow_path() -> None:
    """followable_host has a fast path; it must give the same answer as the full parse."""
    rng = random.Random(7)
    pieces = [
        "http://", "https://", "HTTPS://", "//", "ftp://", "a", "B", "0", "-", "_", ".",
        "..", "/", "?", "#", ":", ":80", "@", " ", "\t", "é", "%", "{", "[", "]", "&", "x.example",
    ]  # fmt: skip
    for _ in range(20000):
        url = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        expected = host_of(url) if is_followable(url) else None
        assert followable_host(url) == expected, url
