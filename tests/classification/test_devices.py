from __future__ import annotations

import pytest

from shared.classification.devices import client_ip, device_type, truncate_ip


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "mobile"),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "tablet"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "tablet"),
        ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)", "desktop"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)", "desktop"),
        ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", "unknown"),
        ("python-requests/2.31.0", "unknown"),
        ("", "unknown"),
    ],
)  # fmt: skip
def test_device_type(ua: str, expected: str) -> None:
    assert device_type(ua) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.77:52100", "203.0.113.0"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
        ("[2001:db8:abcd:12::1]:443", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("not an address", ""),
        (None, ""),
    ],
)
def test_truncate_ip_keeps_no_host_part(raw: str | None, expected: str) -> None:
    assert truncate_ip(raw) == expected


def test_client_ip_prefers_the_first_forwarded_address() -> None:
    assert client_ip("198.51.100.23:4000, 10.0.0.4", "127.0.0.1") == "198.51.100.0"
    assert client_ip(None, "192.0.2.200") == "192.0.2.0"
