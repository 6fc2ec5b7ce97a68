from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import ChannelKind
from billing.messages import BILL_ISSUED
from billing.models import ServiceKind
from core.money import Money
from notifications.events import EventType, event_types
from notifications.services import _localise, gsm7_fold, message_render
from notifications.sms import sms_length


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "gsm7", 0),
        ("a" * 160, "gsm7", 1),
        ("a" * 161, "gsm7", 2),  # split: 153 a part
        ("a" * 306, "gsm7", 2),
        ("a" * 307, "gsm7", 3),
        ("€" * 80, "gsm7", 1),  # extension characters count twice
        ("€" * 81, "gsm7", 2),
        ("ب" * 70, "ucs2", 1),  # Arabic: 70 in one SMS
        ("ب" * 71, "ucs2", 2),  # then 67 a part
        ("ب" * 134, "ucs2", 2),
        ("ب" * 135, "ucs2", 3),
        ("a" * 69 + "ç", "ucs2", 1),  # one character outside GSM-7 switches the whole text
    ],
)
def test_it_counts_segments_as_an_operator_bills_them(text: str, encoding: str, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.segments) == (encoding, segments)


def test_french_accents_gsm7_lacks_are_folded_and_those_it_has_kept() -> None:
    assert gsm7_fold("reçu, échéance, payé à Sfax, fenêtre") == "recu, échéance, payé à Sfax, fenetre"
    assert sms_length(gsm7_fold("reçu")).encoding == "gsm7"


# The longest values a real bill SMS can carry.
WORST_BILL = {
    "account": "1000000016",
    "kind": "Internet",
    "period": "12/2026",
    "amount": Money(Decimal("123456.789"), "TND"),
    "due_date": dt.date(2026, 12, 25),
    "link": "https://selfcare.example/b/1000000016-202612",
}


@pytest.mark.parametrize("kind", ServiceKind.values)
@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_the_bill_sms_fits_two_segments_in_every_language(language: str, kind: str) -> None:
    context = {**WORST_BILL, "kind": ServiceKind(kind).label}
    rendered = message_render(
        event=BILL_ISSUED, language=language, channel_kind=ChannelKind.SMS, context=_localise(context, language)
    )
    assert rendered.segments <= 2, rendered.body
    assert "1000000016" in rendered.body and "25/12/2026" in rendered.body and WORST_BILL["link"] in rendered.body
    assert rendered.encoding == ("ucs2" if language == "ar" else "gsm7")


@pytest.mark.parametrize("event", event_types(), ids=lambda e: e.name)
@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_every_event_has_a_template_and_subject_in_every_language(event: EventType, language: str) -> None:
    context = {
        **WORST_BILL, "receipt": "R-2026-000123", "remaining": Money(Decimal(0), "TND"), "disconnection_date": dt.date(2027, 1, 10),
        "code": "123456",
    }  # fmt: skip
    rendered = message_render(
        event=event, language=language, channel_kind=ChannelKind.EMAIL, context=_localise(context, language)
    )
    assert rendered.body and rendered.subject
    assert "{{" not in rendered.body and "&#x27;" not in rendered.body and "&amp;" not in rendered.body
