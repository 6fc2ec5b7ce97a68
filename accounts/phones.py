"""Phone numbers: parsed with Google's phonenumbers, stored in E.164."""

from __future__ import annotations

import phonenumbers
from babel import Locale
from django.conf import settings
from django.utils import translation


class InvalidPhoneNumber(ValueError):
    pass


def phone_to_e164(raw: str, *, region: str | None = None, mobile_only: bool = False) -> str:
    """Normalise any common spelling to E.164.

    `20 000 001`, `+216 20 000 001`, `00216-20-000-001` and `(216) 20000001`
    all become `+21620000001` with region TN. Arabic-Indic digits are accepted
    too, since phone keyboards in Arabic produce them.
    """
    if not raw or not raw.strip():
        raise InvalidPhoneNumber("empty")
    text = ascii_digits(raw.strip())
    region = region or settings.SELFCARE_PHONE_REGION
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        # "(216) 20000001" parses as a national number in TN; retry as international.
        digits = "".join(ch for ch in text if ch.isdigit())
        try:
            number = phonenumbers.parse("+" + digits, None)
        except phonenumbers.NumberParseException as exc:
            raise InvalidPhoneNumber(str(exc)) from exc
        if not phonenumbers.is_valid_number(number):
            raise InvalidPhoneNumber("not a valid number")
    if mobile_only and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhoneNumber("not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_region(e164: str) -> str:
    """The country (ISO 3166 code) a number belongs to: `+21620000001` → `TN`."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or ""


def country_names(regions: list[str]) -> str:
    """Country names in the page's language, for a message: `Tunisie, Algérie`."""
    locale = Locale.parse(translation.get_language() or settings.LANGUAGE_CODE, sep="-")
    return ", ".join(locale.territories.get(code, code) for code in regions)


def phone_display(e164: str) -> str:
    """International spelling for display: +216 20 000 001."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# Arabic-Indic (٠-٩) and Eastern Arabic-Indic (۰-۹) digits to ASCII.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def ascii_digits(text: str) -> str:
    """Digits as an Arabic phone keyboard types them, made ASCII."""
    return text.translate(_DIGITS)


def phone_display_local(e164: str, *, region: str | None = None) -> str:
    """A number as people of the operator's country write it: national
    (71 123 456) when it is in that country, international otherwise
    (+222 45 25 12 34). The spaces are no-break spaces, so a narrow screen
    never breaks a number in the middle."""
    number = phonenumbers.parse(e164, None)
    own = phonenumbers.region_code_for_number(number) == (region or settings.SELFCARE_PHONE_REGION)
    style = phonenumbers.PhoneNumberFormat.NATIONAL if own else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style).replace(" ", "\u00a0")
