"""Copies of a message sent individually, numbered and recorded: pure parts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shared.core.rows import MessageRow
from shared.messages import copies
from shared.messages.delivery import Outgoing, Receipt


def row(**columns: object) -> MessageRow:
    base = {"to": '["a@x.example", "B@x.example"]', "cc": '["c@x.example", "b@X.example"]'}
    return {"bcc": '["d@x.example", "A@x.example"]', **base, **columns}  # type: ignore[return-value]


def test_copies_are_numbered_to_then_cc_then_bcc_each_address_once() -> None:
    assert copies.recipients(["a@x", "B@x"], ["c@x", "b@X"], ["d@x", "A@x"]) == [
        "a@x",
        "B@x",
        "c@x",
        "d@x",
    ]
    assert copies.planned(row()) == [
        (1, "a@x.example"),
        (2, "B@x.example"),
        (3, "c@x.example"),
        (4, "d@x.example"),
    ]


def test_each_copys_recipient_as_sent_else_as_planned_and_none_for_a_group_send() -> None:
    assert copies.addresses(row()) == {}
    assert copies.addresses(row(send_individually=True))[4] == "d@x.example"
    receipt = Receipt(datetime(2026, 1, 1, tzinfo=UTC), "<1@x>", "conv", "graph-id")
    sent = copies.column([copies.entry(1, "a@x.example", receipt)])
    assert json.loads(sent) == [
        {
            "copy": 1,
            "address": "a@x.example",
            "internet_message_id": "<1@x>",
            "conversation_id": "conv",
            "provider_id": "graph-id",
        }
    ]
    assert copies.addresses(row(send_individually=True, copies=sent)) == {1: "a@x.example"}


def test_never_twice_is_keyed_per_copy() -> None:
    def outgoing(copy: int) -> Outgoing:
        return Outgoing("m1", "s@x", ["a@x"], [], [], "Hi", "<p>Hi</p>", copy=copy)

    assert [outgoing(n).delivery_key for n in (0, 1, 2)] == ["m1", "m1.1", "m1.2"]
