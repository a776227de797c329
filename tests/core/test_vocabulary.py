from __future__ import annotations

import pytest

from shared.core.settings import Settings
from shared.core.vocabulary import COUNTED_BY_DEFAULT, current_class


@pytest.mark.parametrize(
    ("label", "reasons", "now"),
    [
        ("privacy_proxy", ("ua:apple_mail_webkit", "net:apple"), "prefetch"),
        ("privacy_proxy", ("ua:prefetch:gmail", "net:google_image_proxy"), "prefetch"),
        ("privacy_proxy", ("ua:unrecognised", "net:apple_private_relay"), "prefetch"),
        ("privacy_proxy", ("ua:proxy:gmail", "net:google_image_proxy"), "proxy_open"),
        ("privacy_proxy", ("ua:proxy:yahoo",), "proxy_open"),
        ("human", (), "human"),
        ("scanner", ("ua:headless",), "scanner"),
        ("bogus", (), "unknown"),
    ],
)
def test_a_stored_class_is_read_as_a_class_of_today(
    label: str, reasons: tuple[str, ...], now: str
) -> None:
    assert current_class(label, reasons) == now


def test_prefetches_are_not_counted_by_default() -> None:
    assert COUNTED_BY_DEFAULT == ("human", "proxy_open")


def test_a_counted_classes_setting_naming_the_old_proxy_class_still_counts_both_proxies() -> None:
    settings = Settings.model_validate({"counted_classes": ["human", "privacy_proxy"]})
    assert settings.counted_classes == ["human", "proxy_open", "prefetch"]
    with pytest.raises(ValueError, match="counted_classes"):
        Settings.model_validate({"counted_classes": ["human", "people"]})
