"""A seeded generator of labelled tracking traces: the evaluation set.

Each trace is one send (a message to one or more recipients) and the events its recipients'
mailboxes produce. Every event is labelled by the actor that made it, and the generator
decides the actor before it draws anything else, so the label is true by construction and
never read back from what the classifier sees:

- "human": the recipient's own mail client loading the pixel (Outlook on Windows, Mac and
  mobile, Thunderbird, Apple Mail with protection off), or their browser following a link,
  including through a security vendor's browser isolation;
- "proxy_open": an image proxy fetching the pixel because a person opened the message
  (Gmail, Yahoo, HEY);
- "prefetch": a fetch at delivery whether or not anyone reads (Apple's Mail Privacy
  Protection, with Mail's WebKit string or a bare "Mozilla/5.0"; Gmail's prefetch when the
  recipient has Gmail open as the message arrives);
- "scanner": a security gateway, Safe Links, a cloud sandbox (sweeping every link, loading
  the pixel seconds before its sweep, or loading only the pixel), Office's link probe,
  Gmail's content sampling, HTTP libraries, headless browsers, link checkers.

A send also says when a person first read it, whether we could see it or not (Outlook with
images blocked, a Gmail reader whose image was prefetched, an Apple Mail reader behind the
proxy all read without a fetch of their own), and whether it went to each recipient
separately (`individually`): then each event carries its recipient's copy, as that copy's
own tokens tell production; a message sent to everyone at once has one set of tokens, so its
events carry no copy (`EventSignals.copy` is "").

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

Truth = Literal["human", "proxy_open", "prefetch", "scanner"]
TRUTHS: tuple[Truth, ...] = ("human", "proxy_open", "prefetch", "scanner")
READS: frozenset[Truth] = frozenset({"human", "proxy_open"})  # a person is behind the event
SEED = 20240506
SENDS = 500
START = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)
INDIVIDUALLY = 0.25  # share of sends that go to each recipient separately

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
    ("hey", 0.02),
    ("other", 0.09),
)
CORPORATE = ("m365_defender", "m365", "mimecast", "proofpoint", "barracuda")
_ISP_FIRST_OCTETS = (24, 31, 46, 50, 62, 68, 71, 73, 76, 78, 81, 82, 84, 86, 89, 90, 92, 94,
                     98, 99, 108, 109, 151, 176, 178, 188, 212, 213, 217)  # fmt: skip

# Apple's proxy also fetches with nothing but "Mozilla/5.0" (Bird/SparkPost, "4 insights on
# iOS 15 Mail Privacy Protection", August 2021: "Apple's image proxy currently uses a
# Mozilla/5.0 user-agent").
MPP_BARE = "Mozilla/5.0"


@dataclass(frozen=True, slots=True)
class LabelledEvent:
    """An event, who really made it, the generator's name for that actor, and whose mailbox
    it came from (0, 1, ... in the order of the recipients)."""

    signals: EventSignals
    truth: Truth
    actor: str
    recipient: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """One message as sent, every event its recipients' mailboxes produced, and the truth
    about it that no event shows: when a person first read it (None: nobody did)."""

    name: str
    sent_at: datetime
    link_count: int
    events: tuple[LabelledEvent, ...]
    recipients: int = 1
    attachment: bool = False  # one followed attachment
    individually: bool = False  # a copy per recipient, each with its own tokens
    read_at: datetime | None = None


@dataclass
class _Copy:
    """One recipient's copy while its events are drawn."""

    number: int  # 0, 1, ... in the order of the recipients
    environment: str
    office: str  # the /24 the recipient's organisation browses from
    sent_at: datetime
    delivered: datetime
    token_copy: str  # what production can know of the copy: its number if sent individually
    events: list[LabelledEvent] = field(default_factory=list)
    read_at: datetime | None = None
    prefetched: bool = False  # Gmail fetched the images at delivery (and keeps them)

    def read(self, at: datetime) -> None:
        self.read_at = at if self.read_at is None else min(self.read_at, at)


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

    def environment(self) -> str:
        d = self.d
        return d.rng.choices([e for e, _ in ENVIRONMENTS], [w for _, w in ENVIRONMENTS])[0]

    def send(self, number: int) -> Send:
        d = self.d
        sent_at = START + timedelta(days=d.rng.randrange(25), seconds=d.rng.randrange(10 * 3600))
        link_count = d.rng.choices((1, 2, 3, 4, 6), (0.25, 0.3, 0.25, 0.1, 0.1))[0]
        attachment = d.chance(0.2)
        recipients = d.rng.choices((1, d.rng.randint(2, 5), d.rng.randint(6, 25)), (0.7, 0.2, 0.1))[
            0
        ]
        individually = d.chance(INDIVIDUALLY)
        company = self.environment()
        office = d.home()
        at_desks = recipients > 2 and d.chance(0.15)  # a team, reading as it arrives
        copies = []
        for k in range(recipients):
            same_company = recipients > 1 and d.chance(0.6)
            environment = company if same_company or recipients == 1 else self.environment()
            delivered = sent_at + timedelta(seconds=d.lognormal(4, 0.6))
            copy = _Copy(
                k,
                environment,
                office if same_company else d.home(),
                sent_at,
                delivered,
                str(k + 1) if individually else "",
            )
            self.scanners(copy, link_count, attachment)
            self.person(copy, link_count, attachment, at_desks and same_company)
            self.noise(copy, link_count)
            copies.append(copy)
        events = tuple(event for copy in copies for event in copy.events)
        reads = [c.read_at for c in copies if c.read_at is not None]
        return Send(
            f"send{number}",
            sent_at,
            link_count,
            events,
            recipients=recipients,
            attachment=attachment,
            individually=individually,
            read_at=min(reads) if reads else None,
        )

    @staticmethod
    def emit(
        copy: _Copy, truth: Truth, actor: str, kind: EventKind, ua: str, ip: str, at: datetime,
        index: int = 0, method: str = "GET", has_accept: bool = True,
    ) -> None:  # fmt: skip
        signals = EventSignals(
            kind=kind, user_agent=ua, ip=ip, at=at, method=method, has_accept=has_accept,
            sent_at=copy.sent_at, index=index, copy=copy.token_copy,
        )  # fmt: skip
        copy.events.append(LabelledEvent(signals, truth, actor, copy.number))
        if truth == "human":
            copy.read(at)

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
        if env in CORPORATE and d.chance(0.12):
            self.render(copy, links, attachment)
        if env == "gmail" and d.chance(0.2):
            # Gmail open in a browser tab as the message arrives: Gmail fetches the images from
            # its proxy network with a legacy-Edge agent, and keeps them, so the reader's own
            # opening later fetches nothing (agents.GMAIL_PREFETCH).
            at = copy.delivered + timedelta(seconds=d.lognormal(3, 0.8))
            self.emit(copy, "prefetch", "gmail_prefetch", "open", agents.GMAIL_PREFETCH[0],
                      d.vendor_network("google_image_proxy"), at)  # fmt: skip
            copy.prefetched = True
        if env == "apple_mpp":  # the proxy fetches at delivery, or when the device next syncs
            first = d.lognormal(25, 1.0) if d.chance(0.75) else d.lognormal(3 * 3600, 1.2)
            for extra in range(1 + d.chance(0.2)):
                at = copy.delivered + timedelta(seconds=first + extra * d.lognormal(2 * 3600, 1.0))
                ip = d.apple() if d.chance(0.5) else d.relay()
                if d.chance(0.5):
                    self.emit(copy, "prefetch", "apple_mpp", "open", agents.MPP[0], ip, at)
                else:
                    self.emit(copy, "prefetch", "apple_mpp_bare", "open", MPP_BARE, ip, at)

    def render(self, copy: _Copy, links: int, attachment: bool) -> None:
        """A cloud sandbox rendering the message as a browser would, from a network no list
        names (Azure for Microsoft's, AWS for the others), with a current or a years-old
        browser agent: it loads the pixel and stops there (false opens with no click, gophish
        #1611), or follows every link a few seconds later."""
        d = self.d
        ua = d.pick(agents.SAFE_LINKS_STALE if d.chance(0.5) else agents.SCANNER_CURRENT_BROWSER)
        ip = d.azure() if copy.environment.startswith("m365") else d.aws()
        at = self.scan_time(copy, 60)
        if d.chance(0.5):
            self.emit(copy, "scanner", "sandbox_pixel_only", "open", ua, ip, at)
            return
        self.emit(copy, "scanner", "sandbox_pixel_first", "open", ua, ip, at)
        sweep = at + timedelta(seconds=d.rng.uniform(2, 20))
        self.sweep(copy, "sandbox_pixel_first", ua, ip, sweep, links, attachment, pixel=False)

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
        corporate = env in CORPORATE
        client = "outlook"
        if corporate:
            client = d.rng.choices(
                ("outlook", "outlook_mac", "outlook_mobile", "ios_mail"), (0.6, 0.1, 0.2, 0.1)
            )[0]
        elif env == "other":
            client = d.rng.choices(
                ("thunderbird", "ios_mail", "apple_mail_mac", "outlook"), (0.35, 0.25, 0.15, 0.25)
            )[0]
        else:
            client = env
        mobile = client in ("outlook_mobile", "ios_mail") or (
            client in ("gmail", "yahoo", "apple_mpp", "hey") and d.chance(0.4)
        )
        network = copy.office if corporate or client == "outlook" else d.home()
        if client == "apple_mpp" and d.chance(0.3):
            network = d.relay()  # Safari with Private Relay on
        images_blocked = client == "outlook" and d.chance(0.35)
        actor = f"person_{client}" + ("_images_off" if images_blocked else "")
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
            self.emit(copy, "human", actor, "click", ua, source, at, index)
            # the next link: after reading the first page, or at once (several tabs opened)
            gap = d.rng.uniform(0.5, 2) if d.chance(0.1) else d.lognormal(180, 1.2)
            at += timedelta(seconds=gap)
        if attachment and d.chance(0.3):
            self.emit(copy, "human", actor, "attachment", ua, network, at, 0)

    def open(
        self, copy: _Copy, client: str, network: str, at: datetime, images_blocked: bool
    ) -> None:
        """A person opens the message: their mail client or its image proxy fetches the
        pixel, unless images are blocked or were fetched already (a read all the same)."""
        d = self.d
        copy.read(at)
        if client == "gmail" and not copy.prefetched:
            self.emit(copy, "proxy_open", "gmail_proxy", "open", agents.GMAIL_PROXY[0],
                      d.vendor_network("google_image_proxy"), at)  # fmt: skip
        elif client == "yahoo":
            ip = d.unlisted(lambda: f"98.{d.rng.randrange(136, 140)}.{d.rng.randrange(256)}.0")
            self.emit(copy, "proxy_open", "yahoo_proxy", "open", agents.YAHOO_PROXY[0], ip, at)
        elif client == "hey":  # HEY's proxy, from a data centre no shipped list names
            self.emit(copy, "proxy_open", "hey_proxy", "open", agents.HEY_PROXY[0], d.aws(), at)
        elif client in ("gmail", "apple_mpp") or images_blocked:
            return  # Gmail or Apple's proxy fetched the pixel already / Outlook showed no images
        else:
            ua = {
                "outlook": agents.OUTLOOK_DESKTOP,
                "outlook_mac": agents.OUTLOOK_MAC,
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
