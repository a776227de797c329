"""Pure helpers deciding which link targets we follow and what Location we answer with.

The rewriter (which links to wrap) and the redirect handler (where to send a reader) both use
these, so the two always agree on what a followable URL is.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote

import idna

# Scheme (optional) and "//", then the authority up to the first "/", "?" or "#": user info
# up to its last "@", the host (a bracketed IPv6 literal or a name), an optional port.
_URL = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):)?//"
    r"(?P<userinfo>[^/?#]*@)?"
    r"(?P<host>\[[^\]/?#]*\]|[^:/?#]*)"
    r"(?P<port>:[^/?#]*)?"
    r"(?P<rest>(?:[/?#].*)?)\Z",
    re.DOTALL,
)
# ASCII controls, space and DEL: a browser would strip or encode them, a Location header must
# never carry them (header injection), so a target holding them raw is not followed at all.
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
# Lenient on purpose (underscores, edge hyphens): mail links to odd but real hosts still work.
_HOST_NAME = r"[A-Za-z0-9_\-]{1,63}(?:\.[A-Za-z0-9_\-]{1,63})*\.?"
_HOSTNAME = re.compile(_HOST_NAME)
_PORT = re.compile(r":[0-9]{0,5}")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_MAX_HOST = 253
# The common case: lower-case http(s) or "//", then a host of letters, digits, dots, "-" and
# "_", then the path. With the checks in followable_host it accepts only what _parse accepts.
_PLAIN = re.compile(r"(?:https?:)?//([A-Za-z0-9_.\-]+)(?=[/?#]|\Z)")
_PLAIN_HOST_MAX = 63
_MAX_PORT = 65535


def _wire_host(host: str) -> str | None:
    """The host as it goes on the wire (ASCII as written, IDN in punycode), None if invalid."""
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        return host
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return None
    if len(host.removesuffix(".")) > _MAX_HOST or not _HOSTNAME.fullmatch(host):
        return None
    return host


def _parse(url: str) -> re.Match[str] | None:
    """The parts of a followable URL, None for anything else."""
    if _FORBIDDEN.search(url):
        return None
    if not url.isascii():
        try:
            url.encode("utf-8")
        except UnicodeEncodeError:
            return None
    parts = _URL.match(url)
    if parts is None:
        return None
    scheme, userinfo, port = parts["scheme"], parts["userinfo"], parts["port"]
    if scheme is not None and scheme.lower() not in ("http", "https"):
        return None
    if userinfo is not None and "\\" in userinfo:
        return None
    if port is not None and (
        not _PORT.fullmatch(port) or (len(port) > 1 and int(port[1:]) > _MAX_PORT)
    ):
        return None
    if _wire_host(parts["host"]) is None:
        return None
    return parts


def is_followable(raw_decoded_url: str) -> bool:
    """True for an absolute http(s) or protocol-relative URL whose host is a real host name.

    Template placeholders such as ``https://{{domain}}/x`` fail here, so they are left alone
    until the sender's platform fills them in.
    """
    return _parse(raw_decoded_url) is not None


def followable_host(url: str) -> str | None:
    """The lower-cased host of a followable URL, None if it is not followable.

    One parse for the rewriter, which needs both answers for every link.
    """
    plain = _PLAIN.match(url)
    if plain is not None and url.isprintable() and " " not in url:
        host = plain[1]
        if len(host) <= _PLAIN_HOST_MAX and host[0] != "." and ".." not in host:
            return host.lower()
    parts = _parse(url)
    return None if parts is None else parts["host"].lower()


def host_of(url: str) -> str | None:
    """Lower-cased host without port or user info (IDN hosts as written), None if none."""
    parts = _URL.match(url)
    if parts is None or not parts["host"]:
        return None
    return parts["host"].lower()


def _encode_non_ascii(text: str) -> str:
    return _NON_ASCII.sub(lambda m: quote(m.group(), safe=""), text)


def redirect_location(url: str) -> str:
    """The ASCII-only Location header value for a stored target.

    Only what is not ASCII is changed (punycode host, UTF-8 percent-encoding elsewhere): the
    sender's own escapes and query order may be significant to their server, so they are kept.
    """
    parts = _parse(url)
    host = None if parts is None else _wire_host(parts["host"])
    if parts is None or host is None:
        raise ValueError("not a followable http(s) URL")
    scheme = parts["scheme"] or "https"
    userinfo = _encode_non_ascii(parts["userinfo"] or "")
    rest = _encode_non_ascii(parts["rest"])
    return f"{scheme}://{userinfo}{host}{parts['port'] or ''}{rest}"
