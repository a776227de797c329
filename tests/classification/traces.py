"""A seeded generator of labelled tracking traces: the classifier's evaluation set.

Each trace is one send (a message to one or more recipients, each recipient a "copy") and the
events its recipients' mailboxes produce. Every event is labelled by the actor that made it,
and the generator decides the actor before it draws anything else, so the label is true by
construction and never read back from what the classifier sees:

- "human": the recipient's own mail client loading the pixel (Outlook, Thunderbird, Apple
  Mail with protection off), or their browser following a link, including through a security
  vendor's browser isolation;
- "scanner": a security gateway, Safe Links, a cloud sandbox, Office's link probe, Gmail's
  content sampling, HTTP libraries, headless browsers, link checkers;
- "privacy_proxy": Gmail's and Yahoo's image proxies, Apple's Mail Privacy Protection.

The user agents come from `agents.py` (real strings, sources cited there); vendor networks are
drawn from the shipped data files; everything else (homes, offices, Azure sandboxes, AWS,
Private Relay egress) from address blocks those files do not list, which is what makes some
actors hard on purpose. Timings follow what practitioners report: scanners fire a median of
about 40 s after delivery with a long tail (re-scans up to half an hour and more), Apple's
proxy fetches at delivery (or when the device next syncs), people read minutes to days later
and click after some seconds of reading. Nothing is written to disk.
"""

from __future__ import annotations

import ipaddress
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from shared.classification.classifier import EventSignals
from shared.classification.networks import DATA_DIR, Networks, load_networks, read_source
from shared.core.vocabulary import EventKind
from tests.classification import agents

Truth = Literal["human", "scanner", "privacy_proxy"]
SEED = 20240506
SENDS = 500
START = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)

# Mailbox environments of recipients, with their share of copies.
ENVIRONMENTS = (
    ("m365_defender", 0.28),
    ("m365", 0.10),
    ("mimecast", 0.07),
    ("proofpoint", 0.07),
    ("barracuda", 0.05),
    ("gmail", 0.16),
    ("apple_mpp", 0.12),
    ("yahoo", 0.04),
    ("other", 0.11),
)
_ISP_FIRST_OCTETS = (24, 31, 46, 50, 62, 68, 71, 73, 76, 78, 81, 82, 84, 86, 89, 90, 92, 94,
                     98, 99, 108, 109, 151, 176, 178, 188, 212, 213, 217)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LabelledEvent:
    """An event, who really made it, and the generator's name for that actor."""

    signals: EventSignals
    truth: Truth
    actor: str


@dataclass(frozen=True, slots=True)
class Send:
    """One message as sent, and every event its copies produced."""

    name: str
    sent_at: datetime
    link_count: int
    events: tuple[LabelledEvent, ...]


@dataclass
class _Copy:
    """One recipient's copy while its events are drawn."""

    name: str
    environment: str
    office: str  # the /24 the recipient's organisation browses from
    sent_at: datetime
    delivered: datetime
    events: list[LabelledEvent] = field(default_factory=list)


class _Draw:
    """Random draws the generator needs, from one seeded source."""

    def __init__(self, seed: int, networks: Networks) -> None:
        self.rng = random.Random(seed)
        self.networks = networks
        self.vendor = {
            label: read_source(DATA_DIR / f"{label}.json").ranges
            for label in (
                "microsoft_eop",
                "mimecast",
                "proofpoint",
                "barracuda",
                "google_image_proxy",
            )
        }

    def lognormal(self, median: float, sigma: float) -> float:
        return self.rng.lognormvariate(math.log(median), sigma)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, items: Sequence[str]) -> str:
        return items[self.rng.randrange(len(items))]

    def within(self, cidr: str) -> str:
        """A random stored network (/24 or /48) inside a range."""
        network = ipaddress.ip_network(cidr)
        size = 24 if network.version == 4 else 48
        if network.prefixlen >= size:
            return str(network.supernet(new_prefix=size).network_address)
        step = 1 << (network.max_prefixlen - size)
        count = 1 << (size - network.prefixlen)
        base = int(network.network_address) + self.rng.randrange(count) * step
        return str(ipaddress.ip_address(base))

    def vendor_network(self, label: str) -> str:
        return self.within(self.pick(self.vendor[label]))

    def unlisted(self, make: Callable[[], str]) -> str:
        """An address block the shipped data files do not know."""
        while True:
            candidate = make()
            if self.networks.lookup(candidate) is None:
                return candidate

    def home(self) -> str:
        if self.chance(0.15):  # some people are on IPv6
            return self.unlisted(
                lambda: self.within(f"2a02:{self.rng.randrange(0xC00, 0xFFFF):x}::/32")
            )
        octet = self.pick([str(o) for o in _ISP_FIRST_OCTETS])
        return self.unlisted(
            lambda: f"{octet}.{self.rng.randrange(256)}.{self.rng.randrange(256)}.0"
        )

    def azure(self) -> str:  # Microsoft's 20.x space, where Defender's sandboxes run (unlisted)
        return self.unlisted(
            lambda: f"20.{self.rng.randrange(33, 128)}.{self.rng.randrange(256)}.0"
        )

    def aws(self) -> str:
        return self.unlisted(lambda: f"3.{self.rng.randrange(256)}.{self.rng.randrange(256)}.0")

    def gcp(self) -> str:
        return self.unlisted(
            lambda: f"34.{self.rng.randrange(64, 128)}.{self.rng.randrange(256)}.0"
        )

    def relay(self) -> str:
        # iCloud Private Relay egress, run by Akamai (172.224.0.0/12) and Cloudflare
        # (104.28.0.0/16) per https://github.com/Umkus/ip-index/issues/32; not shipped here.
        if self.chance(0.5):
            return f"172.{self.rng.randrange(224, 240)}.{self.rng.randrange(256)}.0"
        return f"104.28.{self.rng.randrange(256)}.0"

    def apple(self) -> str:
        return f"17.{self.rng.randrange(256)}.{self.rng.randrange(256)}.0"


class _Generator:
    def __init__(self, seed: int, networks: Networks) -> None:
        self.d = _Draw(seed, networks)

    def send(self, number: int) -> Send:
        d = self.d
        sent_at = START + timedelta(days=d.rng.randrange(25), seconds=d.rng.randrange(10 * 3600))
        link_count = d.rng.choices((1, 2, 3, 4, 6), (0.25, 0.3, 0.25, 0.1, 0.1))[0]
        attachment = d.chance(0.2)
        recipients = d.rng.choices((1, d.rng.randint(2, 5), d.rng.randint(6, 25)), (0.7, 0.2, 0.1))[
            0
        ]
        company = d.rng.choices([e for e, _ in ENVIRONMENTS], [w for _, w in ENVIRONMENTS])[0]
        office = d.home()
        at_desks = recipients > 2 and d.chance(0.15)  # a team, reading as it arrives
        copies = []
        for k in range(recipients):
            same_company = recipients > 1 and d.chance(0.6)
            environment = (
                company
                if same_company or recipients == 1
                else (d.rng.choices([e for e, _ in ENVIRONMENTS], [w for _, w in ENVIRONMENTS])[0])
            )
            delivered = sent_at + timedelta(seconds=d.lognormal(4, 0.6))
            copy = _Copy(
                f"s{number}c{k}",
                environment,
                office if same_company else d.home(),
                sent_at,
                delivered,
            )
            self.scanners(copy, link_count, attachment)
            self.person(copy, link_count, attachment, at_desks and same_company)
            self.noise(copy, link_count)
            copies.append(copy)
        events = tuple(event for copy in copies for event in copy.events)
        return Send(f"send{number}", sent_at, link_count, events)

    @staticmethod
    def emit(
        copy: _Copy, truth: Truth, actor: str, kind: EventKind, ua: str, ip: str, at: datetime,
        index: int = 0, method: str = "GET", has_accept: bool = True,
    ) -> None:  # fmt: skip
        signals = EventSignals(
            kind=kind, user_agent=ua, ip=ip, at=at, method=method, has_accept=has_accept,
            sent_at=copy.sent_at, index=index, copy=copy.name,
        )  # fmt: skip
        copy.events.append(LabelledEvent(signals, truth, actor))

    def sweep(
        self, copy: _Copy, actor: str, ua: str, ip: str, start: datetime, links: int,
        attachment: bool, pixel: bool, doubles: float = 0.0,
    ) -> None:  # fmt: skip
        """A scanner fetching the pixel and every link (and the attachment): within ~1.5 s, or
        one after another a few seconds apart for one sweep in four (a slower scanner)."""
        d = self.d
        slow = d.chance(0.25)
        if pixel:
            self.emit(
                copy,
                "scanner",
                actor,
                "open",
                ua,
                ip,
                start + timedelta(seconds=d.rng.uniform(0, 1)),
            )
        targets: list[tuple[EventKind, int]] = [("click", i) for i in range(links)]
        if attachment:
            targets.append(("attachment", 0))
        at = start
        for kind, index in targets:
            at = (
                at + timedelta(seconds=d.rng.uniform(1, 6))
                if slow
                else start + timedelta(seconds=d.rng.uniform(0, 1.5))
            )
            self.emit(copy, "scanner", actor, kind, ua, ip, at, index)
            if d.chance(doubles):  # the same URL fetched twice in a second (gophish #973)
                self.emit(
                    copy,
                    "scanner",
                    actor,
                    kind,
                    ua,
                    ip,
                    at + timedelta(seconds=d.rng.uniform(0, 0.5)),
                    index,
                )

    def scan_time(self, copy: _Copy, median: float = 40) -> datetime:
        d = self.d
        seconds = d.lognormal(median, 1.0) if d.chance(0.9) else d.lognormal(1200, 1.0)  # re-scans
        return copy.delivered + timedelta(seconds=seconds)

    def scanners(self, copy: _Copy, links: int, attachment: bool) -> None:
        d, env = self.d, copy.environment
        if env == "m365_defender":
            if d.chance(0.85):
                ua = d.rng.choices(
                    (d.pick(agents.SAFE_LINKS_STALE), "", d.pick(agents.SCANNER_CURRENT_BROWSER)),
                    (0.45, 0.35, 0.2),
                )[0]
                self.sweep(copy, "safe_links", ua, d.vendor_network("microsoft_eop"),
                           self.scan_time(copy), links, attachment, d.chance(0.6), doubles=0.3)  # fmt: skip
            if d.chance(0.25):  # detonation in an Azure sandbox: browser agent, unlisted network
                ua = d.pick(
                    agents.SAFE_LINKS_STALE if d.chance(0.5) else agents.SCANNER_CURRENT_BROWSER
                )
                self.sweep(copy, "defender_sandbox", ua, d.azure(), self.scan_time(copy, 60),
                           links, attachment, pixel=True)  # fmt: skip
        elif env in ("mimecast", "proofpoint") and d.chance(0.9):
            stale = d.chance(0.4 if env == "mimecast" else 0.5)
            ua = d.pick(agents.SAFE_LINKS_STALE if stale else agents.SCANNER_CURRENT_BROWSER)
            ip = d.aws() if env == "proofpoint" and d.chance(0.2) else d.vendor_network(env)
            self.sweep(
                copy, f"{env}_scan", ua, ip, self.scan_time(copy), links, attachment, d.chance(0.5)
            )
        elif env == "barracuda" and d.chance(0.9):
            if d.chance(0.7):
                ua, ip = agents.BARRACUDA[0], d.vendor_network("barracuda")
            else:
                ua, ip = d.pick(agents.SCANNER_CURRENT_BROWSER), d.aws()
            self.sweep(
                copy,
                "barracuda_scan",
                ua,
                ip,
                self.scan_time(copy, 30),
                links,
                attachment,
                d.chance(0.5),
            )
        elif env == "gmail" and d.chance(0.05):
            at = copy.delivered + timedelta(seconds=d.lognormal(600, 1.0))
            ip = d.unlisted(
                lambda: f"66.249.{d.rng.randrange(64, 80)}.0"
            )  # Googlebot's block, unlisted
            self.emit(
                copy,
                "scanner",
                "gmail_sampling",
                "click",
                agents.GMAIL_SAMPLING[0],
                ip,
                at,
                d.rng.randrange(links),
            )
        if env == "apple_mpp":  # the proxy fetches at delivery, or when the device next syncs
            first = d.lognormal(25, 1.0) if d.chance(0.75) else d.lognormal(3 * 3600, 1.2)
            for extra in range(1 + d.chance(0.2)):
                at = copy.delivered + timedelta(seconds=first + extra * d.lognormal(2 * 3600, 1.0))
                ip = d.apple() if d.chance(0.5) else d.relay()
                self.emit(copy, "privacy_proxy", "apple_mpp", "open", agents.MPP[0], ip, at)

    def noise(self, copy: _Copy, links: int) -> None:
        d = self.d
        later = copy.delivered + timedelta(seconds=d.lognormal(2 * 3600, 1.5))
        if d.chance(0.04):
            self.emit(copy, "scanner", "http_library", "click", d.pick(agents.HTTP_LIBRARIES),
                      d.aws() if d.chance(0.5) else d.gcp(), later, d.rng.randrange(links),
                      has_accept=d.chance(0.5))  # fmt: skip
        if d.chance(0.02):
            self.emit(
                copy,
                "scanner",
                "headless",
                "click",
                agents.HEADLESS[0],
                d.gcp(),
                later,
                d.rng.randrange(links),
            )
        if d.chance(0.03):  # a link checker that only asks whether the link works
            self.emit(copy, "scanner", "head_checker", "click", d.pick(agents.BROWSERS_DESKTOP), d.aws(),
                      later, d.rng.randrange(links), method="HEAD")  # fmt: skip
        if d.chance(0.02):  # a browser-shaped fetcher with no Accept header, from a cloud: hard
            self.emit(copy, "scanner", "quiet_fetcher", "click", d.pick(agents.BROWSERS_DESKTOP), d.gcp(),
                      later, d.rng.randrange(links), has_accept=False)  # fmt: skip

    def person(self, copy: _Copy, links: int, attachment: bool, at_desk: bool = False) -> None:
        d, env = self.d, copy.environment
        corporate = env in ("m365_defender", "m365", "mimecast", "proofpoint", "barracuda")
        client = "outlook"
        if corporate:
            client = d.rng.choices(("outlook", "outlook_mobile", "ios_mail"), (0.7, 0.2, 0.1))[0]
        elif env == "other":
            client = d.rng.choices(
                ("thunderbird", "ios_mail", "apple_mail_mac", "outlook"), (0.35, 0.25, 0.15, 0.25)
            )[0]
        else:
            client = env
        mobile = client in ("outlook_mobile", "ios_mail") or (
            client in ("gmail", "yahoo", "apple_mpp") and d.chance(0.4)
        )
        network = copy.office if corporate or client == "outlook" else d.home()
        if client == "apple_mpp" and d.chance(0.3):
            network = d.relay()  # Safari with Private Relay on
        images_blocked = client == "outlook" and d.chance(0.35)
        opened = None
        if d.chance(0.9 if at_desk else 0.65):
            if at_desk:  # within a minute or so, like the colleagues around them
                seconds = d.lognormal(45, 0.5)
            elif d.chance(0.2):  # at their desk when it arrived
                seconds = d.lognormal(180, 0.8)
            else:  # minutes to days later
                seconds = min(d.lognormal(3 * 3600, 1.5), 10 * 86400)
            opened = copy.delivered + timedelta(seconds=seconds)
            self.open(copy, client, network, opened, images_blocked)
            if d.chance(0.3):  # read again later
                again = opened + timedelta(seconds=d.lognormal(86400, 1.0))
                self.open(copy, client, network, again, images_blocked)
        clicks = d.chance(0.3) if opened else d.chance(0.25 if images_blocked else 0.03)
        if not clicks:
            return
        at = (opened or copy.delivered + timedelta(seconds=d.lognormal(3 * 3600, 1.5))) + timedelta(
            seconds=d.lognormal(40, 1.0)
        )
        chosen = d.rng.sample(range(links), k=min(links, 1 + d.chance(0.25)))
        browser: Sequence[str] = agents.BROWSERS_MOBILE if mobile else agents.BROWSERS_DESKTOP
        if d.chance(0.04):
            browser = agents.BROWSERS_OUTDATED
        ua = d.pick(browser)
        for index in chosen:
            source = network
            if env in ("mimecast", "proofpoint") and d.chance(0.25):  # browser isolation
                source = d.vendor_network(env)
            if client == "outlook" and d.chance(0.4):  # Office probes the link first
                self.emit(copy, "scanner", "office_probe", "click", agents.OFFICE_PROBE[0], network,
                          at - timedelta(seconds=d.rng.uniform(0.1, 0.6)), index,
                          method="HEAD" if d.chance(0.5) else "GET")  # fmt: skip
            self.emit(copy, "human", f"person_{client}", "click", ua, source, at, index)
            # the next link: after reading the first page, or at once (several tabs opened)
            gap = d.rng.uniform(0.5, 2) if d.chance(0.1) else d.lognormal(180, 1.2)
            at += timedelta(seconds=gap)
        if attachment and d.chance(0.3):
            self.emit(copy, "human", f"person_{client}", "attachment", ua, network, at, 0)

    def open(
        self, copy: _Copy, client: str, network: str, at: datetime, images_blocked: bool
    ) -> None:
        d = self.d
        if client == "gmail":
            self.emit(copy, "privacy_proxy", "gmail_proxy", "open", agents.GMAIL_PROXY[0],
                      d.vendor_network("google_image_proxy"), at)  # fmt: skip
        elif client == "yahoo":
            ip = d.unlisted(lambda: f"98.{d.rng.randrange(136, 140)}.{d.rng.randrange(256)}.0")
            self.emit(copy, "privacy_proxy", "yahoo_proxy", "open", agents.YAHOO_PROXY[0], ip, at)
        elif client == "apple_mpp" or images_blocked:
            return  # the proxy already fetched the pixel / Outlook showed no images
        else:
            ua = {
                "outlook": agents.OUTLOOK_DESKTOP,
                "outlook_mobile": agents.OUTLOOK_MOBILE,
                "ios_mail": agents.IOS_MAIL,
                "thunderbird": agents.THUNDERBIRD,
                "apple_mail_mac": agents.APPLE_MAIL_MAC,
            }[client]
            self.emit(copy, "human", f"person_{client}", "open", d.pick(ua), network, at)


def build(seed: int = SEED, sends: int = SENDS, networks: Networks | None = None) -> list[Send]:
    """The evaluation set: `sends` traces drawn from `seed` (the same seed, the same set)."""
    generator = _Generator(seed, networks or load_networks())
    return [generator.send(number) for number in range(sends)]
