from __future__ import annotations

import pytest

from accounts.phones import InvalidPhoneNumber, phone_display, phone_to_e164


@pytest.mark.parametrize(
    "spelling",
    [
        "20000001",
        "20 000 001",
        "20-000-001",
        "+216 20 000 001",
        "+21620000001",
        "0021620000001",
        "00216 20 000 001",
        "(216) 20000001",
        "216 20 000 001",
        "٢٠٠٠٠٠٠١",  # typed on an Arabic keyboard
    ],
)
def test_every_common_spelling_gives_e164(spelling: str, settings) -> None:
    settings.SELFCARE_PHONE_REGION = "TN"
    assert phone_to_e164(spelling) == "+21620000001"


def test_the_region_comes_from_settings(settings) -> None:
    settings.SELFCARE_PHONE_REGION = "MR"
    assert phone_to_e164("22 12 34 56") == "+22222123456"


@pytest.mark.parametrize("raw", ["", "   ", "hello", "123", "+216 1"])
def test_it_refuses_what_is_not_a_phone_number(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        phone_to_e164(raw, region="TN")


def test_it_can_insist_on_a_mobile_number() -> None:
    # 71 xxx xxx is a Tunis landline: fine to log in with, not for an SMS.
    assert phone_to_e164("71 123 456", region="TN") == "+21671123456"
    with pytest.raises(InvalidPhoneNumber):
        phone_to_e164("71 123 456", region="TN", mobile_only=True)
    assert phone_to_e164("98 123 456", region="TN", mobile_only=True) == "+21698123456"


def test_it_displays_numbers_internationally() -> None:
    assert phone_display("+21620000001") == "+216 20 000 001"
