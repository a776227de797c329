from __future__ import annotations

import pytest

from shared.outlook.item_rules import Rejected, choose_method, classify, more_specific
from shared.outlook.replies import is_automatic, referenced_ids


def test_referenced_ids_nearest_first_without_duplicates() -> None:
    assert referenced_ids("<c@x>", "<a@x> <b@x>\r\n <c@x>") == ["<c@x>", "<b@x>", "<a@x>"]
    assert referenced_ids(None, None) == []
    assert referenced_ids("garbage", "no ids here") == []


@pytest.mark.parametrize(
    ("headers", "subject", "automatic"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: your quote", True),
        ({"Auto-Submitted": "no"}, "Re: your quote", False),
        ({"X-Autoreply": "yes"}, "Re: quote", True),
        ({"Precedence": "auto_reply"}, "Re: quote", True),
        ({}, "Automatic reply: Your quote", True),
        ({}, "Out of Office: back Monday", True),
        ({}, "Réponse automatique : devis", True),
        ({}, "Re: Automatic reply settings question", False),
        ({}, "Re: your quote", False),
    ],
)
def test_automatic_replies_are_recognised(
    headers: dict[str, str], subject: str, automatic: bool
) -> None:
    assert is_automatic(headers, subject) is automatic


def test_most_specific_method_wins() -> None:
    assert choose_method(token=True, conversation=True, folder=True, category=True) == "token"
    assert choose_method(token=False, conversation=False, folder=True, category=True) == "folder"
    assert choose_method(token=False, conversation=False, folder=False, category=True) == "category"
    assert choose_method(token=False, conversation=False, folder=False, category=False) is None
    assert more_specific("category", "conversation") == "conversation"
    assert more_specific("token", "folder") == "token"


class _GraphError(Exception):
    def __init__(self, status: int) -> None:
        self.response_status_code = status


@pytest.mark.parametrize(
    ("error", "klass"),
    [
        (_GraphError(429), "throttled"),
        (_GraphError(503), "throttled"),
        (TimeoutError(), "timeout"),
        (_GraphError(400), "rejected"),
        (Rejected("no id"), "rejected"),
        (_GraphError(500), "unknown"),
        (RuntimeError("boom"), "unknown"),
    ],
)
def test_failures_are_classified(error: BaseException, klass: str) -> None:
    assert classify(error) == klass
