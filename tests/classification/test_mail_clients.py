from __future__ import annotations

import pytest

from shared.classification.mail_clients import mail_client
from tests.classification import agents


@pytest.mark.parametrize(
    ("ua", "family"),
    [
        *[(ua, "outlook") for ua in agents.OUTLOOK_DESKTOP],
        *[(ua, "outlook") for ua in agents.OUTLOOK_MOBILE],
        *[(ua, "thunderbird") for ua in agents.THUNDERBIRD],
        *[(ua, "apple_mail") for ua in agents.IOS_MAIL + agents.APPLE_MAIL_MAC],
        (agents.GMAIL_PROXY[0], "gmail"),
        (agents.YAHOO_PROXY[0], "yahoo_mail"),
        *[(ua, "outlook") for ua in agents.OUTLOOK_MAC],
        (agents.HEY_PROXY[0], "hey"),
        ("Evolution/3.48.4", "evolution"),
        *[(ua, "unknown") for ua in agents.BROWSERS_DESKTOP + agents.BROWSERS_MOBILE],
        # an in-app browser of the Google app is not Apple Mail, though it is WebKit
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) GSA/310.0.620824024 Mobile/15E148 Safari/604.1",
            "unknown",
        ),
        ("python-requests/2.31.0", "unknown"),
        ("", "unknown"),
    ],
)
def test_mail_client(ua: str, family: str) -> None:
    assert mail_client(ua) == family
