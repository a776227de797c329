"""What a classified open tells a seller: whether it is a person's read beyond doubt (alert at
once) or needs later evidence (a scanner's sweep often follows its pixel fetch by seconds),
and how we know, in words ("opened in Outlook on Windows", "opened via Gmail — time
approximate"). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from shared.classification.mail_clients import mail_client

# Evidence that an open needs more than its user agent: timing near delivery, a network we
# know, an odd request, a stale browser, a flood.
_DOUBT = ("timing:", "net:", "shape:", "ua:stale", "flood:")
_CLIENT_NAMES = {
    "outlook": "Outlook",
    "apple_mail": "Apple Mail",
    "gmail": "Gmail",
    "yahoo_mail": "Yahoo Mail",
    "thunderbird": "Thunderbird",
    "superhuman": "Superhuman",
    "hey": "HEY",
    "front": "Front",
    "evolution": "Evolution",
}
# (token in the lowercased user agent, system), most specific first.
_SYSTEMS = (
    ("iphone", "iPhone"),
    ("ipad", "iPad"),
    ("android", "Android"),
    ("windows", "Windows"),
    ("macintosh", "Mac"),
    ("macoutlook", "Mac"),
    ("mac os x", "Mac"),
    ("cros", "ChromeOS"),
    ("linux", "Linux"),
)
APPROXIMATE = "time approximate"


def clear_read(label: str, reasons: Iterable[str]) -> bool:
    """A person's open beyond doubt: a mail client that names itself, from a network we do
    not know, away from delivery time; or an image proxy that fetches only when a person
    opens (Gmail, Yahoo, HEY) and names itself."""
    found = tuple(reasons)
    if label == "proxy_open":
        return any(r.startswith("ua:proxy:") for r in found) and not any(
            r.startswith("flood:") for r in found
        )
    return (
        label == "human"
        and any(r.startswith("ua:client:") for r in found)
        and not any(r.startswith(_DOUBT) for r in found)
    )


@lru_cache(maxsize=4096)
def how_opened(user_agent: str, label: str) -> str:
    """How the seller is told of an open: the mail client and system where the user agent
    says, and "time approximate" when a proxy fetched for the reader."""
    client = _CLIENT_NAMES.get(mail_client(user_agent))
    if label == "proxy_open":
        return f"opened via {client or 'a mail provider’s image proxy'} — {APPROXIMATE}"
    if label == "prefetch":
        return "fetched when delivered (a privacy-protected mailbox) — not proof of a read"
    if label not in ("human", ""):
        return "opened (no telling who)"
    lowered = user_agent.lower()
    system = next((name for token, name in _SYSTEMS if token in lowered), None)
    where = f"in {client}" if client else "in a browser"
    return f"opened {where} on {system}" if system else f"opened {where}"
