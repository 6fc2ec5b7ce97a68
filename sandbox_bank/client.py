"""What a bank's back end does: a signed `POST /api/v1/payments` over HTTP.

Only the published contract (README, /api/docs/): no import from Selfcare's apps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10


def sign(*, secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = f"{timestamp}\n{method}\n{path}\n".encode() + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def payment_post(*, base_url: str, key_id: str, secret: str, payment: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Send one payment; returns (HTTP status, JSON answer). A network failure raises OSError."""
    url = base_url.rstrip("/") + "/api/v1/payments"
    body = json.dumps(payment, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    path = urlsplit(url).path
    request = urllib.request.Request(  # noqa: S310 - the URL is a setting or our own host, http(s) only
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Provider-Key": key_id,
            "X-Timestamp": timestamp,
            "X-Signature": sign(secret=secret, timestamp=timestamp, method="POST", path=path, body=body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            answer = json.loads(error.read() or b"{}")
        except ValueError:
            answer = {}
        return error.code, answer
