from __future__ import annotations

import json
import re
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


def csrf_token_of(response) -> str:  # type: ignore[no-untyped-def]
    """The CSRF token of a page's form, as a browser would send it back."""
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())
    assert found, "no CSRF token on the page"
    return found.group(1)


def staff_signed_in(user, password: str, settings) -> Client:  # type: ignore[no-untyped-def]
    """A member of staff signed in the way they are in production: password, then
    their authenticator's TOTP code, in a client that enforces CSRF."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    settings.SELFCARE_STAFF_OTP_REQUIRED = True
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client(enforce_csrf_checks=True)
    login = client.get("/fr/admin/login/?next=/fr/admin/")
    response = client.post(
        "/fr/admin/login/?next=/fr/admin/",
        {"username": user.email, "password": password, "csrfmiddlewaretoken": csrf_token_of(login)},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    otp_page = client.get("/fr/admin/otp/?next=/fr/admin/")
    response = client.post(
        "/fr/admin/otp/", {"code": f"{totp(device.bin_key):06d}", "csrfmiddlewaretoken": csrf_token_of(otp_page)}
    )
    assert response.status_code == 302
    assert client.get("/fr/admin/").status_code == 200
    return client
