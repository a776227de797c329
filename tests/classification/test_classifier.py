from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.classification.classifier import (
    EventSignals,
    Verdict,
    classify_event,
)
from shared.classification.message_rules import MessageContext, classify_message
from shared.classification.networks import Networks, NetworkSource, load_networks
from shared.core.vocabulary import EventKind
from tests.classification import agents

SENT = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)
HOME = "81.2.69.0"  # not in any shipped list
CHROME = agents.BROWSERS_DESKTOP[0]
NETWORKS = load_networks()


def signals(
    kind: EventKind = "click",
    ua: str = CHROME,
    ip: str = HOME,
    seconds: float = 3 * 3600,
    method: str = "GET",
    has_accept: bool = True,
    index: int = 0,
    copy: str = "",
) -> EventSignals:
    return EventSignals(
        kind=kind,
        user_agent=ua,
        ip=ip,
        at=SENT + timedelta(seconds=seconds),
        method=method,
        has_accept=has_accept,
        sent_at=SENT,
        index=index,
        copy=copy,
    )


def judge(**kwargs: object) -> Verdict:
    return classify_event(signals(**kwargs), NETWORKS)  # type: ignore[arg-type]


# --- per-event stage: user agents ------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        ("python-requests/2.31.0", "ua:http_library:python_requests"),
        ("curl/8.4.0", "ua:http_library:curl"),
        ("Go-http-client/1.1", "ua:http_library:go_http_client"),
        ("okhttp/4.12.0", "ua:http_library:okhttp"),
        (agents.HEADLESS[0], "ua:headless"),
        (agents.BARRACUDA[0], "ua:scanner:barracuda"),
        (agents.OFFICE_PROBE[0], "ua:scanner:ms_office_discovery"),
        (agents.GMAIL_SAMPLING[0], "ua:scanner:legacy_edge"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "ua:bot"),
    ],
)
def test_automated_agents_are_scanners_at_any_time(ua: str, reason: str) -> None:
    verdict = judge(ua=ua, seconds=5 * 86400)
    assert verdict.label == "scanner"
    assert reason in verdict.reasons


@pytest.mark.parametrize(
    "ua", agents.OUTLOOK_DESKTOP + agents.OUTLOOK_MOBILE + agents.THUNDERBIRD + agents.IOS_MAIL
)
def test_a_mail_client_loading_the_pixel_is_a_person(ua: str) -> None:
    verdict = judge(kind="open", ua=ua, seconds=2 * 3600)
    assert verdict.label == "human"
    assert any(r.startswith("ua:client:") for r in verdict.reasons)


def test_a_phone_with_cubot_in_its_name_is_not_a_bot() -> None:
    ua = "Mozilla/5.0 (Linux; Android 9; CUBOT KING KONG 3) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36"
    assert judge(ua=ua).label == "human"


def test_an_empty_user_agent_is_not_a_person() -> None:
    assert judge(ua="").label == "unknown"
    assert judge(ua="", ip="104.47.30.0").label == "scanner"  # Safe Links' blank fetches


def test_a_browser_many_releases_behind_the_event_date_is_suspect() -> None:
    chrome_57 = agents.SAFE_LINKS_STALE[0]
    assert "ua:stale_browser" in judge(ua=chrome_57).reasons
    assert judge(ua=chrome_57).label == "unknown"
    assert "ua:stale_browser" not in judge(ua=CHROME).reasons
    # the same Chrome 124 is stale two years later
    late = EventSignals(
        kind="click", user_agent=CHROME, ip=HOME, at=datetime(2026, 6, 1, tzinfo=UTC)
    )
    assert "ua:stale_browser" in classify_event(late, NETWORKS).reasons


# --- per-event stage: privacy proxies ---------------------------------------------------------


def test_gmail_and_yahoo_proxies_are_opens_through_a_proxy_whenever_they_come() -> None:
    for seconds in (1, 3 * 3600):
        gmail = judge(kind="open", ua=agents.GMAIL_PROXY[0], ip="66.249.84.0", seconds=seconds)
        assert gmail.label == "proxy_open"
        assert {"ua:proxy:gmail", "net:google_image_proxy"} <= set(gmail.reasons)
    assert judge(kind="open", ua=agents.YAHOO_PROXY[0]).label == "proxy_open"


def test_heys_proxy_is_an_open_through_a_proxy_and_never_a_click() -> None:
    opened = judge(kind="open", ua=agents.HEY_PROXY[0], seconds=3 * 3600)
    assert opened.label == "proxy_open"
    assert "ua:proxy:hey" in opened.reasons
    assert judge(kind="click", ua=agents.HEY_PROXY[0]).label == "scanner"


def test_gmail_prefetch_from_googles_proxy_network_is_a_prefetch_not_an_open() -> None:
    for seconds in (1, 40, 3 * 3600):
        prefetch = judge(
            kind="open", ua=agents.GMAIL_PREFETCH[0], ip="66.249.84.0", seconds=seconds
        )
        assert prefetch.label == "prefetch", prefetch
        assert {"ua:prefetch:gmail", "net:google_image_proxy"} <= set(prefetch.reasons)
    # the same agent anywhere else, or clicking, is still Gmail's content sampling: a scanner
    assert judge(kind="open", ua=agents.GMAIL_PREFETCH[0], ip=HOME).label == "scanner"
    assert judge(kind="click", ua=agents.GMAIL_PREFETCH[0], ip="66.249.84.0").label == "scanner"


def test_outlook_for_mac_is_a_persons_mail_client() -> None:
    for ua in agents.OUTLOOK_MAC:
        opened = judge(kind="open", ua=ua, seconds=3 * 3600)
        assert opened.label == "human", opened
        assert "ua:client:outlook" in opened.reasons


def test_apple_mpp_fires_early_and_is_a_prefetch() -> None:
    from_apple = judge(kind="open", ua=agents.MPP[0], ip="17.58.1.0", seconds=1)
    assert from_apple.label == "prefetch"
    assert "net:apple" in from_apple.reasons and "timing:instant" in from_apple.reasons
    # without the Private Relay list, the user agent alone decides (most Apple Mail users have
    # protection on)
    assert judge(kind="open", ua=agents.MPP[0], ip="172.224.226.0", seconds=20).label == "prefetch"


def test_a_bare_mozilla_string_is_a_prefetch_from_apples_network_and_unknown_elsewhere() -> None:
    assert judge(kind="open", ua="Mozilla/5.0", ip="17.58.1.0", seconds=20).label == "prefetch"
    assert judge(kind="open", ua="Mozilla/5.0", ip=HOME, seconds=3 * 3600).label == "unknown"


def test_apple_network_with_a_browser_is_an_apple_employee_not_a_proxy() -> None:
    assert judge(kind="open", ua=CHROME, ip="17.58.1.0").label == "human"


def test_any_open_from_google_proxy_network_is_a_proxy_but_a_click_from_it_is_not_a_person() -> (
    None
):
    assert judge(kind="open", ua=CHROME, ip="66.249.84.0").label == "proxy_open"
    click = judge(kind="click", ua=CHROME, ip="66.249.84.0")
    assert click.label == "unknown" and "net:google_image_proxy" in click.reasons


def test_an_image_proxy_does_not_click() -> None:
    verdict = judge(kind="click", ua=agents.GMAIL_PROXY[0])
    assert verdict.label == "scanner" and "ua:proxy_on_click" in verdict.reasons
    assert judge(kind="click", ua=agents.MPP[0]).label == "unknown"


# --- per-event stage: networks, request shape, timing ----------------------------------------


def test_a_certain_scanner_network_decides_even_with_a_current_browser() -> None:
    verdict = judge(ua=CHROME, ip="40.107.218.0", seconds=5 * 86400)
    assert verdict.label == "scanner" and "net:microsoft_eop" in verdict.reasons
    # nor does a mail client's user agent clear it
    assert judge(kind="open", ua=agents.OUTLOOK_DESKTOP[3], ip="40.107.218.0").label == "scanner"


def test_a_probable_scanner_network_counts_only_in_the_first_minutes() -> None:
    early = judge(ua=CHROME, ip="205.139.110.0", seconds=40)
    assert early.label == "scanner"
    late = judge(ua=CHROME, ip="205.139.110.0", seconds=3 * 3600)  # browser isolation: a person
    assert late.label == "human" and "net:mimecast" in late.reasons


def test_cloud_networks_are_weak_evidence() -> None:
    cloud = Networks([NetworkSource("cloud_aws", "cloud", "probable", ("3.0.0.0/8",), {})])
    person_on_a_virtual_desktop = classify_event(signals(ip="3.5.140.0"), cloud)
    assert person_on_a_virtual_desktop.label == "human"
    fresh_from_a_cloud = classify_event(
        signals(ip="3.5.140.0", seconds=40, has_accept=False), cloud
    )
    assert fresh_from_a_cloud.label == "scanner"
    assert {"net:cloud_aws", "shape:no_accept", "timing:delivery_window"} <= set(
        fresh_from_a_cloud.reasons
    )


def test_request_shape() -> None:
    head = judge(method="HEAD")
    assert head.label == "scanner" and "shape:head" in head.reasons
    assert "shape:method" in judge(method="OPTIONS").reasons
    # every browser sends Accept with a navigation: a "browser" clicking without one is not
    no_accept = judge(has_accept=False)
    assert no_accept.label == "scanner" and "shape:no_accept" in no_accept.reasons
    image = judge(kind="open", ua=agents.OUTLOOK_DESKTOP[0], has_accept=False)
    assert image.label == "human" and "shape:no_accept" in image.reasons  # only odd
    assert judge(kind="open", has_accept=False).label == "unknown"


def test_timing_after_sending() -> None:
    assert "timing:instant" in judge(seconds=1).reasons
    assert judge(seconds=1).label == "unknown"  # a click one second after sending
    assert "timing:delivery_window" in judge(seconds=40).reasons
    assert judge(seconds=40).label == "human"  # not on its own: people read at their desks
    assert judge(kind="open", ua=agents.OUTLOOK_DESKTOP[0], seconds=1).label == "human"
    before = judge(seconds=-60)
    assert before.label == "unknown" and "timing:before_send" in before.reasons
    no_context = EventSignals(kind="click", user_agent=CHROME, ip=HOME, at=SENT)
    assert classify_event(no_context, NETWORKS).label == "human"


# --- fold stage -------------------------------------------------------------------------------


def fold(events: list[EventSignals], link_count: int = 3) -> list[Verdict]:
    judged = [(e, classify_event(e, NETWORKS)) for e in events]
    return classify_message(judged, MessageContext(link_count=link_count))


def test_every_link_within_two_seconds_is_a_scanner_even_with_a_current_browser() -> None:
    azure = "20.72.100.0"  # Defender's sandbox, not in any list
    burst = [signals(ip=azure, seconds=41 + i * 0.4, index=i, copy="c") for i in range(3)]
    assert [v.label for v in (classify_event(e, NETWORKS) for e in burst)] == ["human"] * 3
    folded = fold(burst)
    assert [v.label for v in folded] == ["scanner"] * 3
    assert all("timing:link_burst" in v.reasons for v in folded)


def test_a_slower_sweep_of_every_link_is_caught_too() -> None:
    sweep = [signals(ip="20.72.100.0", seconds=41 + i * 5, index=i, copy="c") for i in range(3)]
    sweep.insert(0, signals(kind="open", ip="20.72.100.0", seconds=40.5, copy="c"))
    folded = fold(sweep)
    assert all(v.label == "scanner" for v in folded), folded


def test_two_clicks_on_the_same_link_are_not_a_link_burst() -> None:
    twice = [signals(seconds=3600 + i, index=0, copy="c") for i in range(3)]
    assert all("timing:link_burst" not in v.reasons for v in fold(twice))


def test_a_single_link_message_has_no_link_burst() -> None:
    one = [signals(ip="20.72.100.0", seconds=41, index=0, copy="c")]
    assert "timing:link_burst" not in fold(one, link_count=1)[0].reasons


def test_a_click_with_no_open_before_it_is_noted_but_may_be_a_person() -> None:
    click = signals(copy="c")
    (verdict,) = fold([click])
    assert "timing:click_without_open" in verdict.reasons
    assert verdict.label == "human"  # Outlook blocks images by default
    opened = signals(kind="open", ua=agents.OUTLOOK_DESKTOP[0], seconds=3 * 3600 - 30, copy="c")
    assert "timing:click_without_open" not in fold([opened, click])[1].reasons


def test_a_proxys_open_counts_as_an_open() -> None:
    proxy = signals(
        kind="open", ua=agents.GMAIL_PROXY[0], ip="66.249.84.0", seconds=3 * 3600 - 30, copy="c"
    )
    folded = fold([proxy, signals(copy="c")])
    assert folded[0].label == "proxy_open"
    assert "timing:click_without_open" not in folded[1].reasons


def test_one_client_opening_and_clicking_within_two_seconds_is_a_renderer() -> None:
    ip = "20.72.100.0"
    events = [
        signals(kind="open", ip=ip, seconds=60, copy="c"),
        signals(kind="click", ip=ip, seconds=60.8, copy="c", index=0),
    ]
    folded = fold(events, link_count=1)
    assert [v.label for v in folded] == ["scanner", "scanner"]
    assert "timing:open_and_click" in folded[0].reasons


def test_a_person_reading_in_outlook_then_clicking_is_not_a_renderer() -> None:
    events = [
        signals(kind="open", ua=agents.OUTLOOK_DESKTOP[0], seconds=60, copy="c"),
        signals(kind="click", seconds=66, copy="c"),  # their browser: another agent
    ]
    assert [v.label for v in fold(events, link_count=1)] == ["human", "human"]


def test_the_office_probe_does_not_condemn_the_click_that_follows_it() -> None:
    events = [
        signals(kind="open", ua=agents.OUTLOOK_DESKTOP[0], seconds=3000, copy="c"),
        signals(ua=agents.OFFICE_PROBE[0], seconds=3030, method="HEAD", copy="c"),
        signals(seconds=3030.4, copy="c"),
    ]
    assert [v.label for v in fold(events)] == ["human", "scanner", "human"]


def test_one_network_hitting_many_copies_in_the_first_minutes_is_a_scanner() -> None:
    ip = "20.72.100.0"
    events = [signals(ip=ip, seconds=40 + k, copy=f"c{k}", index=0) for k in range(4)]
    folded = fold(events, link_count=1)
    assert all("timing:network_burst" in v.reasons for v in folded)
    assert all(v.label == "scanner" for v in folded)
    later = [signals(ip=ip, seconds=7200 + k, copy=f"c{k}", index=0) for k in range(4)]
    assert all("timing:network_burst" not in v.reasons for v in fold(later, link_count=1))


def test_colleagues_opening_an_announcement_together_stay_people() -> None:
    office = "81.2.69.0"
    events = [
        signals(
            kind="open", ua=agents.OUTLOOK_DESKTOP[0], ip=office, seconds=40 + 2 * k, copy=f"c{k}"
        )
        for k in range(4)
    ]
    folded = fold(events)
    assert all("timing:network_burst" in v.reasons for v in folded)
    assert all(v.label == "human" for v in folded)


def test_the_fold_never_touches_a_prefetch_nor_clears_a_scanner() -> None:
    ip = "20.72.100.0"
    mpp = signals(kind="open", ua=agents.MPP[0], ip="17.58.1.0", seconds=40, copy="c")
    scanner = signals(ua="curl/8.4.0", ip=ip, seconds=7200, copy="c")
    burst = [signals(ip=ip, seconds=40.2 + i * 0.1, index=i, copy="c") for i in range(3)]
    judged = [(e, classify_event(e, NETWORKS)) for e in [mpp, scanner, *burst]]
    folded = classify_message(judged, MessageContext(link_count=3))
    assert folded[0] == judged[0][1]
    assert folded[1].label == "scanner"
    rank = {"human": 0, "unknown": 1, "scanner": 2}
    for (_, before), after in zip(judged[1:], folded[1:], strict=True):
        assert rank[after.label] >= rank[before.label]


def test_events_before_sending_are_left_out_of_the_fold() -> None:
    preview = [signals(seconds=-100 + i * 0.2, index=i, copy="c") for i in range(3)]
    assert all(v.reasons == ("ua:browser", "timing:before_send") for v in fold(preview))


def test_the_fold_keeps_the_order_of_its_input_and_scales() -> None:
    events = [
        signals(
            seconds=float((k * 7919) % 86400),
            index=k % 3,
            copy=f"c{k % 50}",
            ip=f"81.2.{k % 200}.0",
        )
        for k in range(20_000)
    ]
    started = time.perf_counter()
    folded = fold(events)
    assert time.perf_counter() - started < 10
    assert len(folded) == len(events)
    single = fold([events[123]])[0]
    assert (
        folded[123].reasons[: len(single.reasons) - 1] == single.reasons[: len(single.reasons) - 1]
    )
