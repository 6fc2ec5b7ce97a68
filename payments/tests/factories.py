from __future__ import annotations

import json
import time
from typing import Any

import factory
from django.test import Client

from payments.crypto import secret_seal
from payments.models import Provider
from payments.signing import signature_header

SECRET = "sk_test_secret_for_the_bank"


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    name = factory.Sequence(lambda n: f"Banque {n}")
    kind = Provider.Kind.BANK
    key_id = factory.Sequence(lambda n: f"bank-{n}")
    secret_sealed = factory.LazyAttribute(lambda o: secret_seal(SECRET, key_id=o.key_id))


def signed_headers(
    *, key_id: str, secret: str, method: str, path: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "HTTP_X_PROVIDER_KEY": key_id,
        "HTTP_X_TIMESTAMP": ts,
        "HTTP_X_SIGNATURE": signature_header(secret=secret, timestamp=ts, method=method, path=path, body=body),
    }


def call(
    client: Client,
    method: str,
    path: str,
    body: bytes | dict[str, Any] = b"",
    *,
    provider: Provider,
    secret: str = SECRET,
    timestamp: int | None = None,
    sign_path: str | None = None,
    sign_body: bytes | None = None,
):
    """A signed request as a bank sends it: the exact bytes it signed."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = signed_headers(
        key_id=provider.key_id, secret=secret, method=method, path=sign_path or path,
        body=raw if sign_body is None else sign_body, timestamp=timestamp,
    )  # fmt: skip
    return client.generic(method, path, raw, content_type="application/json", **headers)
