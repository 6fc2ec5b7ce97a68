from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.numbers import (
    InvalidAccountNumber,
    account_number_clean,
    account_number_from_serial,
    format_account_number,
)

serials = st.integers(min_value=0, max_value=899_999_999)


@given(serial=serials)
def test_every_issued_number_is_ten_digits_and_valid(serial: int) -> None:
    number = account_number_from_serial(serial)
    assert len(number) == 10 and number.isdigit()
    assert account_number_clean(number) == number


@given(serial=serials, position=st.integers(min_value=0, max_value=9), delta=st.integers(min_value=1, max_value=9))
def test_any_single_mistyped_digit_is_caught(serial: int, position: int, delta: int) -> None:
    number = account_number_from_serial(serial)
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    with pytest.raises(InvalidAccountNumber):
        account_number_clean(typo)


def test_a_swap_of_neighbouring_digits_is_caught() -> None:
    number = account_number_from_serial(12345)  # 1000123452 or similar
    swapped = next(
        number[:i] + number[i + 1] + number[i] + number[i + 2 :] for i in range(9) if number[i] != number[i + 1]
    )
    with pytest.raises(InvalidAccountNumber):
        account_number_clean(swapped)


def test_it_accepts_the_number_as_read_over_the_phone() -> None:
    number = account_number_from_serial(42)
    spoken = format_account_number(number)
    assert spoken.count(" ") == 2
    assert account_number_clean(spoken) == number
    assert account_number_clean(spoken.replace(" ", "-")) == number


@pytest.mark.parametrize("raw", ["", "12345", "abcdefghij", "12345678901"])
def test_it_refuses_what_is_not_an_account_number(raw: str) -> None:
    with pytest.raises(InvalidAccountNumber):
        account_number_clean(raw)


def test_the_number_space_ends_loudly() -> None:
    with pytest.raises(OverflowError):
        account_number_from_serial(900_000_000)
