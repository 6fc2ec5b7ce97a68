"""The signature of the bank API, in one place: what is signed and how it is checked.

    X-Signature: v1=<hex>[,v1=<hex>…]
    hex = HMAC-SHA256(secret, f"{timestamp}\\n{METHOD}\\n{path with query string}\\n".encode() + raw_body)

The body is the exact bytes received, never a re-serialisation of the parsed
JSON (stripe-node #1254: key order, spacing and escapes change the bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

SCHEME = "v1"
# One request carries a few values at most (one per secret during a rotation).
MAX_SIGNATURES = 4
_HEX = re.compile(r"[0-9a-f]{64}")


def string_to_sign(*, timestamp: str, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method.upper()}\n{path}\n".encode() + body


def signature_compute(*, secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = string_to_sign(timestamp=timestamp, method=method, path=path, body=body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    return f"{SCHEME}=" + signature_compute(secret=secret, timestamp=timestamp, method=method, path=path, body=body)


def signatures_parse(header: str) -> list[str]:
    """The v1 hex values of an X-Signature header; other schemes are ignored."""
    values = []
    for part in header.split(",")[:MAX_SIGNATURES]:
        scheme, sep, value = part.strip().partition("=")
        value = value.strip().lower()
        if sep and scheme == SCHEME and _HEX.fullmatch(value):
            values.append(value)
    return values


def signature_matches(
    *, secrets: Iterable[str], header: str, timestamp: str, method: str, path: str, body: bytes
) -> bool:
    """True if one v1 value is the HMAC under one of the secrets (constant-time compares)."""
    given = signatures_parse(header)
    if not given:
        return False
    ok = False
    for secret in secrets:
        expected = signature_compute(secret=secret, timestamp=timestamp, method=method, path=path, body=body)
        for value in given:
            ok |= hmac.compare_digest(expected, value)
    return ok
