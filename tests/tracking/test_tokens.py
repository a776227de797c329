from __future__ import annotations

import pytest

from shared.core.ids import message_partition, new_message_id, partition_of
from shared.tracking.tokens import TokenSigner, TrackingRef

KEYS = {"k1": b"a" * 32, "k2": b"b" * 32}


def signer(active: str = "k1", keys: dict[str, bytes] = KEYS) -> TokenSigner:
    return TokenSigner(keys, active)


@pytest.mark.parametrize("kind", ["open", "click", "attachment"])
def test_token_round_trips(kind: str) -> None:
    ref = TrackingRef(kind, new_message_id("ana@contoso.example"), 17)  # type: ignore[arg-type]
    assert signer().verify(signer().sign(ref)) == ref


def test_token_is_short_and_url_safe() -> None:
    token = signer().sign(TrackingRef("click", new_message_id("a@b.example"), 65535))
    assert len(token) <= 50
    assert all(c.isalnum() or c in "-_." for c in token)


def test_every_single_character_change_is_rejected() -> None:
    token = signer().sign(TrackingRef("click", new_message_id("a@b.example"), 3))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(token)):
        if token[position] == ".":
            continue
        for replacement in alphabet[:: 7 if position > 3 else 1]:
            if replacement != token[position]:
                forged = token[:position] + replacement + token[position + 1 :]
                assert signer().verify(forged) is None, forged


def test_rotation_old_key_verifies_until_removed() -> None:
    ref = TrackingRef("open", new_message_id("a@b.example"), 0)
    old = signer("k1").sign(ref)
    rotated = signer("k2")
    assert rotated.verify(old) == ref
    assert rotated.sign(ref).startswith("k2.")
    assert TokenSigner({"k2": KEYS["k2"]}, "k2").verify(old) is None


def test_token_for_one_key_id_does_not_verify_under_another() -> None:
    token = signer("k1").sign(TrackingRef("open", new_message_id("a@b.example"), 0))
    assert signer().verify("k2" + token[2:]) is None


@pytest.mark.parametrize(
    "junk", ["", ".", "k1.", "k1.abc", "zz." + "A" * 44, "k1." + "A" * 44, "k1." + "=" * 44]
)
def test_malformed_tokens_are_rejected(junk: str) -> None:
    assert signer().verify(junk) is None


def test_tokens_of_two_messages_differ_and_ids_are_unguessable() -> None:
    ids = {new_message_id("a@b.example") for _ in range(1000)}
    assert len(ids) == 1000
    assert {partition_of(i) for i in ids} == {message_partition("A@B.example")}


@pytest.mark.parametrize("key", [b"k" * 32, b"long" * 40, b"\x00\xff" * 20])
def test_fast_signing_is_standard_hmac(key: bytes) -> None:
    """The per-message signer computes HMAC itself; verification uses the hmac module."""
    import base64
    import hmac

    message_id = new_message_id("a@b.example")
    token = TokenSigner({"k9": key}, "k9").signer_for("click", message_id)(513)
    raw = base64.urlsafe_b64decode(token.split(".", 1)[1])
    expected = hmac.new(key, b"k9\x00" + raw[:19], "sha256").digest()[:14]
    assert raw[19:] == expected
    assert TokenSigner({"k9": key}, "k9").verify(token) == TrackingRef("click", message_id, 513)


@pytest.mark.parametrize("kind", ["open", "click", "attachment"])
@pytest.mark.parametrize("copy", [1, 2, 300, 0xFFFFFF])
def test_a_recipients_copy_has_its_own_token(kind: str, copy: int) -> None:
    message_id = new_message_id("ana@contoso.example")
    ref = TrackingRef(kind, message_id, 7, copy)  # type: ignore[arg-type]
    token = signer().sign(ref)
    assert signer().verify(token) == ref
    assert len(token.split(".", 1)[1]) == 48
    group = signer().sign(TrackingRef(kind, message_id, 7))  # type: ignore[arg-type]
    assert group != token and signer().verify(group) == TrackingRef(kind, message_id, 7)  # type: ignore[arg-type]


def test_a_copy_token_cannot_be_turned_into_another_copys() -> None:
    import base64

    token = signer().sign(TrackingRef("open", new_message_id("a@b.example"), 0, 2))
    kid, body = token.split(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[21] ^= 1  # the copy number's last byte: copy 3
    forged = f"{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    assert signer().verify(forged) is None


@pytest.mark.parametrize("copy", [-1, 0x1000000])
def test_a_copy_number_out_of_range_is_refused(copy: int) -> None:
    with pytest.raises(ValueError, match="copy out of range"):
        signer().sign(TrackingRef("open", new_message_id("a@b.example"), 0, copy))
