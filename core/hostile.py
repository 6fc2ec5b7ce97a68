"""Hostile bytes, refused in one place before they reach a query.

PostgreSQL stores no NUL in text or jsonb, and a lone surrogate (legal in JSON's
`\\ud800`, or smuggled through a latin-1 header) cannot be encoded as UTF-8:
either one used to reach the database and come back as a 500. A value that
passes `text_is_storable` can be stored as it is; `json_body_parse` turns a
request body into plain JSON data that PostgreSQL's jsonb accepts, or refuses it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# A provider's webhook body nests four or five levels; 32 leaves room and stops
# a body of 100,000 brackets long before Python's recursion limit.
JSON_MAX_DEPTH = 32


class HostileInput(ValueError):
    """The input cannot be stored or read as it is; answer 400."""


def text_is_storable(value: str) -> bool:
    """No NUL byte and no lone surrogate: PostgreSQL can store it as text."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 reads as inf, which jsonb refuses
        raise HostileInput(f"number out of range: {text[:20]}")
    return number


def _refuse_constant(name: str) -> Any:
    raise HostileInput(f"{name} is not JSON")


def json_body_parse(body: bytes, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """The body as JSON data, every string storable and every number finite.

    Raises HostileInput for anything else: bytes that are not UTF-8, malformed
    JSON, NaN/Infinity, a float beyond double range, an integer of thousands of
    digits, nesting deeper than `max_depth`, or a string (key or value) holding
    NUL or a lone surrogate.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HostileInput("body is not UTF-8") from None
    # Nesting is measured before parsing: json's C scanner recurses per level.
    _check_depth(text, max_depth)
    try:
        data = json.loads(text, parse_float=_finite_float, parse_constant=_refuse_constant)
    except HostileInput:
        raise
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError and huge ints
        raise HostileInput(f"malformed JSON: {exc}") from None
    _check_strings(data)
    return data


# A JSON string (skipped whole, brackets inside it do not count) or one bracket.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def _check_depth(text: str, max_depth: int) -> None:
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        piece = match.group()
        if piece in ("[", "{"):
            depth += 1
            if depth > max_depth:
                raise HostileInput(f"JSON nested deeper than {max_depth} levels")
        elif piece in ("]", "}"):
            depth -= 1


def _check_strings(data: Any) -> None:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not text_is_storable(item):
                raise HostileInput("a string holds NUL or a lone surrogate")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
