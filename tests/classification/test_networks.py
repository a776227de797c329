from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.classification.feeds import (
    FEEDS,
    collapse,
    detect_feed,
    main,
    parse_apple_egress,
    parse_aws,
    parse_google_prefixes,
    parse_office365,
    refresh,
)
from shared.classification.networks import (
    DATA_DIR,
    Networks,
    NetworkSource,
    load_networks,
    read_source,
)


def source(label: str, kind: str, *ranges: str, certainty: str = "certain") -> NetworkSource:
    return NetworkSource(label, kind, certainty, tuple(ranges), {})  # type: ignore[arg-type]


# --- the shipped data -------------------------------------------------------------------------


def test_every_shipped_file_loads_and_says_where_it_comes_from() -> None:
    paths = sorted(DATA_DIR.glob("*.json"))
    assert len(paths) >= 9
    for path in paths:
        loaded = read_source(path)
        assert loaded.label == path.stem
        assert loaded.meta["source"].startswith("https://")
        assert loaded.meta["note"]
        if loaded.ranges:
            assert loaded.meta["retrieved"], path.name
        else:
            assert loaded.meta["method"] == "not shipped", path.name


@pytest.mark.parametrize(
    ("ip", "label"),
    [
        ("40.107.218.0", "microsoft_eop"),  # Safe Links, gophish #973
        ("104.47.30.0", "microsoft_eop"),
        ("2a01:111:f403::", "microsoft_eop"),
        ("66.249.84.0", "google_image_proxy"),
        ("66.102.6.0", "google_image_proxy"),
        ("17.58.1.0", "apple"),
        ("205.139.110.0", "mimecast"),
        ("148.163.139.0", "proofpoint"),
        ("209.222.82.0", "barracuda"),
        ("203.0.113.0", None),
        ("66.249.66.0", None),  # Googlebot is not the image proxy
        ("2a01:111:f400::", None),  # listed for Outlook itself too: real readers
    ],
)
def test_shipped_networks(ip: str, label: str | None) -> None:
    found = load_networks().lookup(ip)
    assert (found.label if found else None) == label


# --- the lookup -------------------------------------------------------------------------------


def test_lookup_answers_for_truncated_and_full_addresses() -> None:
    networks = Networks([source("eop", "scanner", "40.107.0.0/16", "2a01:111:f403::/48")])
    assert networks.lookup("40.107.3.0") is not None
    assert networks.lookup("40.107.3.77") is not None  # a full address finds its /24
    assert networks.lookup("2a01:111:f403::") is not None
    assert networks.lookup("2a01:111:f403:12::1") is not None
    assert networks.lookup("40.108.0.0") is None
    assert networks.lookup("") is None
    assert networks.lookup("not an address") is None


def test_a_range_narrower_than_the_stored_network_marks_its_whole_24_as_partial() -> None:
    networks = Networks([source("vendor", "scanner", "3.24.133.128/25")])
    found = networks.lookup("3.24.133.0")
    assert found is not None and found.partial
    assert networks.lookup("3.24.134.0") is None


def test_the_most_specific_range_wins_across_dictionary_and_intervals() -> None:
    networks = Networks(
        [
            source("cloud", "cloud", "3.0.0.0/8"),
            source("wide_vendor", "scanner", "3.5.0.0/16"),
            source("narrow_vendor", "scanner", "3.5.140.0/22"),
        ]
    )
    assert networks.lookup("3.9.9.0").label == "cloud"  # type: ignore[union-attr]
    assert networks.lookup("3.5.1.0").label == "wide_vendor"  # type: ignore[union-attr]
    assert networks.lookup("3.5.141.0").label == "narrow_vendor"  # type: ignore[union-attr]
    assert networks.lookup("4.0.0.0") is None


def test_overlapping_wide_ranges_are_all_searched() -> None:
    networks = Networks(
        [
            source("a", "cloud", "10.0.0.0/9"),
            source("b", "cloud", "10.64.0.0/10"),
            source("c", "cloud", "10.128.0.0/9"),
        ]
    )
    assert networks.lookup("10.65.0.0").label == "b"  # type: ignore[union-attr]
    assert networks.lookup("10.1.0.0").label == "a"  # type: ignore[union-attr]
    assert networks.lookup("10.200.0.0").label == "c"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"label": "x", "kind": "robot", "certainty": "certain", "ranges": []}, "kind"),
        ({"label": "x", "kind": "cloud", "certainty": "maybe", "ranges": []}, "certainty"),
        (
            {"label": "x", "kind": "cloud", "certainty": "certain", "ranges": ["1.2.3/99"]},
            "bad range",
        ),
        ({"label": "x", "kind": "cloud", "certainty": "certain"}, "list"),
    ],
)
def test_read_source_refuses_a_broken_file(
    tmp_path: Path, data: dict[str, object], error: str
) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=error):
        read_source(path)


# --- the published formats --------------------------------------------------------------------

OFFICE365 = [
    {
        "id": 1,
        "serviceArea": "Exchange",
        "urls": ["outlook.office.com", "outlook.office365.com"],
        "ips": ["40.96.0.0/13", "2a01:111:f400::/48"],
    },
    {
        "id": 9,
        "serviceArea": "Exchange",
        "urls": ["*.mail.protection.outlook.com", "*.mx.microsoft"],
        "ips": ["40.92.0.0/15", "40.107.0.0/16", "2a01:111:f400::/48"],
        "tcpPorts": "25",
    },
    {
        "id": 10,
        "serviceArea": "Exchange",
        "urls": ["*.protection.outlook.com"],
        "ips": ["52.100.0.0/14", "104.47.0.0/17", "2a01:111:f403::/48"],
    },
    {
        "id": 46,
        "serviceArea": "Common",
        "urls": ["login.microsoftonline.com"],
        "ips": ["20.190.128.0/18"],
    },
]
GOOGLE = {
    "creationTime": "2026-11-20T00:00:00",
    "prefixes": [
        {"ipv4Prefix": "66.249.80.0/20"},
        {"ipv4Prefix": "66.102.0.0/20"},
        {"ipv6Prefix": "2001:4860:4801::/48"},
    ],
}
GCP = {
    "syncToken": "1",
    "prefixes": [{"ipv4Prefix": "34.80.0.0/15", "service": "Google Cloud", "scope": "asia-east1"}],
}
AWS = {
    "syncToken": "1790000000",
    "createDate": "2026-11-20-00-00-00",
    "prefixes": [
        {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "EC2"},
        {"ip_prefix": "3.5.144.0/22", "region": "ap-northeast-2", "service": "EC2"},
    ],
    "ipv6_prefixes": [{"ipv6_prefix": "2600:1f00::/40", "region": "us-east-1", "service": "EC2"}],
}
APPLE_CSV = "172.224.224.0/27,GB,GB-EN,London,\n172.224.224.32/27,GB,GB-EN,Leeds,\n2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n"


def test_office365_keeps_the_protection_sets_minus_what_outlook_itself_uses() -> None:
    ranges, _ = parse_office365(OFFICE365)
    assert ranges == sorted(
        ["40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17", "2a01:111:f403::/48"]
    )


def test_google_aws_and_apple_formats() -> None:
    assert parse_google_prefixes(GOOGLE) == (
        ["66.249.80.0/20", "66.102.0.0/20", "2001:4860:4801::/48"],
        "2026-11-20T00:00:00",
    )
    assert parse_aws(AWS)[0] == ["3.5.140.0/22", "3.5.144.0/22", "2600:1f00::/40"]
    assert parse_apple_egress(APPLE_CSV)[0] == [
        "172.224.224.0/27",
        "172.224.224.32/27",
        "2a02:26f7:b3c0:4000::/64",
    ]


def test_collapse_merges_neighbours_and_drops_what_is_not_public() -> None:
    assert collapse(
        ["172.224.224.0/27", "172.224.224.32/27", "10.0.0.0/8", "junk", "2600:1f00::/40"]
    ) == [
        "172.224.224.0/26",
        "2600:1f00::/40",
    ]


@pytest.mark.parametrize(
    ("document", "label"),
    [
        (json.dumps(OFFICE365).encode(), "microsoft_eop"),
        (json.dumps(GOOGLE).encode(), "google_image_proxy"),
        (json.dumps(GCP).encode(), "cloud_gcp"),
        (json.dumps(AWS).encode(), "cloud_aws"),
        (APPLE_CSV.encode(), "apple_private_relay"),
    ],
)
def test_detect_feed_recognises_each_published_format(document: bytes, label: str) -> None:
    assert detect_feed(document) == label


# --- refresh, against a local server serving the published formats ----------------------------


@pytest.fixture
def published(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "published"
    root.mkdir()
    (root / "endpoints.json").write_text(json.dumps(OFFICE365))
    (root / "user-triggered-fetchers-google.json").write_text(json.dumps(GOOGLE))
    (root / "egress-ip-ranges.csv").write_text(APPLE_CSV)
    (root / "ip-ranges.json").write_text(json.dumps(AWS))
    (root / "cloud.json").write_text(json.dumps(GCP))
    (root / "truncated.json").write_text(
        json.dumps({"prefixes": [{"ipv4Prefix": "66.249.80.0/20"}]})
    )
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "networks"
    shutil.copytree(DATA_DIR, copy)
    return copy


def test_refresh_rewrites_each_list_from_its_published_format(
    published: str, data_dir: Path
) -> None:
    results = refresh(
        [
            ("microsoft_eop", f"{published}/endpoints.json"),
            ("google_image_proxy", f"{published}/user-triggered-fetchers-google.json"),
            ("apple_private_relay", f"{published}/egress-ip-ranges.csv"),
            ("cloud_aws", f"{published}/ip-ranges.json"),
            ("cloud_gcp", f"{published}/cloud.json"),
        ],
        data_dir,
        today="2026-11-23",
    )
    assert [(r.label, r.written) for r in results] == [
        ("microsoft_eop", True),
        ("google_image_proxy", True),
        ("apple_private_relay", True),
        ("cloud_aws", True),
        ("cloud_gcp", True),
    ]
    relay = json.loads((data_dir / "apple_private_relay.json").read_text())
    assert relay["ranges"] == ["172.224.224.0/26", "2a02:26f7:b3c0:4000::/64"]
    assert relay["retrieved"] == "2026-11-23" and relay["method"] == "refreshed"
    assert relay["source"] == "https://mask-api.icloud.com/egress-ip-ranges.csv"  # kept
    networks = load_networks(data_dir)
    assert networks.lookup("172.224.224.0").label == "apple_private_relay"  # type: ignore[union-attr]
    assert networks.lookup("3.5.145.0").label == "cloud_aws"  # type: ignore[union-attr]
    assert networks.lookup("34.81.0.0").label == "cloud_gcp"  # type: ignore[union-attr]
    assert networks.lookup("2a01:111:f400::") is None
    # curated lists are not touched
    assert (data_dir / "mimecast.json").read_text() == (DATA_DIR / "mimecast.json").read_text()


def test_refresh_refuses_a_list_that_shrank_unless_forced(published: str, data_dir: Path) -> None:
    before = (data_dir / "google_image_proxy.json").read_text()
    (result,) = refresh([("google_image_proxy", f"{published}/truncated.json")], data_dir)
    assert not result.written and result.reason == "shrank" and result.after == 1
    assert (data_dir / "google_image_proxy.json").read_text() == before
    (result,) = refresh(
        [("google_image_proxy", f"{published}/truncated.json")], data_dir, force=True
    )
    assert result.written
    assert read_source(data_dir / "google_image_proxy.json").ranges == ("66.249.80.0/20",)


def test_refresh_command_guesses_the_list_from_a_bare_url_and_reports_failures(
    published: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "refresh",
            "--dir",
            str(data_dir),
            "--from",
            f"{published}/ip-ranges.json",
            "--from",
            f"cloud_gcp={published}/cloud.json",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "cloud_aws: 0 -> 3 ranges, wrote" in out and "cloud_gcp: 0 -> 1 ranges, wrote" in out
    code = main(
        ["refresh", "--dir", str(data_dir), "--from", f"cloud_aws={published}/missing.json"]
    )
    assert code == 1
    assert "not written" in capsys.readouterr().out


def test_refresh_command_rejects_an_unknown_list(data_dir: Path) -> None:
    with pytest.raises(SystemExit):
        main(["refresh", "--dir", str(data_dir), "--from", "cisco=https://example.invalid/x.json"])


def test_every_feed_has_a_data_file() -> None:
    for label, feed in FEEDS.items():
        assert (DATA_DIR / f"{label}.json").exists()
        assert feed.url.startswith("https://")
