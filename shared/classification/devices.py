"""What a request tells about the reader's device: a device type from the user agent, and a
truncated client address. Pure functions; the user-agent parsing runs when events are folded,
not on the pixel path."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Literal

DeviceType = Literal["desktop", "mobile", "tablet", "unknown"]

_TABLET_DEVICES = ("ipad", "kindle", "galaxy tab", "nexus 7", "nexus 9", "nexus 10", "sm-t", "tab")
_MOBILE_OS = ("ios", "android", "windows phone", "blackberry os", "kaios", "harmonyos")
_DESKTOP_OS = ("windows", "mac os x", "macos", "linux", "ubuntu", "fedora", "chrome os", "debian")
_DESKTOP_MAIL = ("microsoft outlook", "microsoft office", "thunderbird", "windows-live-mail")


@lru_cache(maxsize=4096)
def device_type(user_agent: str) -> DeviceType:
    """Desktop, mobile, tablet or unknown, from a user-agent string (ua-parser underneath)."""
    import ua_parser  # imported here: its first use compiles its rules, kept off the pixel path

    ua = user_agent.strip()
    if not ua:
        return "unknown"
    lowered = ua.lower()
    result = ua_parser.parse(ua)
    device = (result.device.family if result.device else "").lower()
    os_family = (result.os.family if result.os else "").lower()
    if device == "spider" or "bot" in device or "googleimageproxy" in lowered:
        return "unknown"
    if any(t in device for t in _TABLET_DEVICES) or "tablet" in lowered:
        return "tablet"
    if os_family == "android" and "mobile" not in lowered:
        return "tablet"
    if os_family in _MOBILE_OS or device in ("iphone", "ipod", "generic smartphone"):
        return "mobile"
    if "mobile" in lowered and os_family not in _DESKTOP_OS:
        return "mobile"
    if os_family in _DESKTOP_OS or os_family.startswith("windows"):
        return "desktop"
    if any(t in lowered for t in _DESKTOP_MAIL):
        return "desktop"
    return "unknown"


def truncate_ip(raw: str | None) -> str:
    """The client address with the host part dropped (/24 for IPv4, /48 for IPv6): enough to
    tell networks apart, not enough to identify a person. Empty when the input is not an IP."""
    if not raw:
        return ""
    value = raw.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def client_ip(forwarded_for: str | None, peer: str | None) -> str:
    """The truncated address of the original client: the first X-Forwarded-For entry (the
    Functions front end and proxies append to it), else the socket peer."""
    first = (forwarded_for or "").split(",", 1)[0].strip()
    return truncate_ip(first or peer)
