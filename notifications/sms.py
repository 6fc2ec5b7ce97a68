"""SMS length: GSM-7 or UCS-2, and the number of segments an operator bills.

A text written only in the GSM 03.38 alphabet travels 7 bits a character (160 in
one SMS, 153 a part when split); one character outside it (any Arabic letter,
an emoji) makes the whole text UCS-2: 70 in one SMS, 67 a part.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table cost two septets (an escape, then the char).
GSM7_EXTENDED = set("^{}\\[~]|€\f")


# Units in one SMS, and in each part of a longer one (the rest carries the joining header).
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "gsm7" or "ucs2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def sms_length(text: str) -> SmsLength:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, part = GSM7_SINGLE, GSM7_PART
        encoding = "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2  # an emoji is two units
        single, part = UCS2_SINGLE, UCS2_PART
        encoding = "ucs2"
    if units <= single:
        segments = 1 if units else 0
    else:
        segments = -(-units // part)
    return SmsLength(encoding=encoding, units=units, segments=segments)
