"""The signature: every way a request can fail to be the bank's own, refused
with 401/403 before anything is written."""

from __future__ import annotations

import json
import time

import pytest

from billing.tests.factories import BillFactory
from payments.crypto import secret_seal
from payments.models import ApiInbox, Payment
from payments.signing import signature_compute, signature_header

from .factories import SECRET, call, signed_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def bill(subscriber):
    return BillFactory(account__subscriber=subscriber)


def _body(bill, **overrides) -> bytes:
    data = {
        "reference": "TRX-1",
        "account_number": bill.account.number,
        "amount": "10.000",
        "currency": "TND",
        "paid_at": "2026-12-02T10:00:00+01:00",
    }
    return json.dumps({**data, **overrides}).encode()


def _assert_refused(response, code: str, status: int = 401) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert Payment.objects.count() == 0
    assert ApiInbox.objects.count() == 0  # nothing written before the signature passed


def test_a_correctly_signed_payment_is_applied(client, bank, bill):
    response = call(client, "POST", "/api/v1/payments", _body(bill), provider=bank)
    assert response.status_code == 201, response.content
    assert Payment.objects.get().reference == "TRX-1"


def test_it_rejects_a_wrong_secret(client, bank, bill):
    _assert_refused(
        call(client, "POST", "/api/v1/payments", _body(bill), provider=bank, secret="guess"), "bad_signature"
    )


def test_it_rejects_a_changed_body(client, bank, bill):
    response = call(
        client, "POST", "/api/v1/payments", _body(bill, amount="99.000"), provider=bank, sign_body=_body(bill)
    )
    _assert_refused(response, "bad_signature")


def test_it_rejects_a_changed_path(client, bank, bill):
    response = call(client, "GET", f"/api/v1/accounts/{bill.account.number}/due", provider=bank,
                    sign_path="/api/v1/accounts/1000000016/due")  # fmt: skip
    _assert_refused(response, "bad_signature")


def test_it_rejects_a_changed_query_string(client, bank, bill):
    path = f"/api/v1/accounts/{bill.account.number}/due"
    response = call(client, "GET", path + "?page=2", provider=bank, sign_path=path + "?page=1")
    _assert_refused(response, "bad_signature")
    assert call(client, "GET", path + "?page=2", provider=bank).status_code == 200


def test_it_checks_the_raw_bytes_not_a_re_serialised_body(client, bank, bill):
    # stripe-node #1254: the bank signs its own bytes (spacing, key order);
    # re-serialising the parsed JSON would give other bytes and another HMAC.
    raw = (
        b'{ "currency": "TND",  "reference": "TRX-1", "amount": "10.000",\n "account_number": "%s", '
        % (bill.account.number.encode())
        + b'"paid_at": "2026-12-02T10:00:00+01:00" }'
    )
    assert json.dumps(json.loads(raw)).encode() != raw
    assert call(client, "POST", "/api/v1/payments", raw, provider=bank).status_code == 201
    # The same JSON value re-serialised but signed as the original: refused.
    reserialised = json.dumps(json.loads(raw)).encode()
    response = call(client, "POST", "/api/v1/payments", reserialised, provider=bank, sign_body=raw)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"
    assert (Payment.objects.count(), ApiInbox.objects.count()) == (1, 1)


@pytest.mark.parametrize("skew", [-301, 301])
def test_it_rejects_a_timestamp_more_than_300_seconds_away(client, bank, bill, skew):
    response = call(client, "POST", "/api/v1/payments", _body(bill), provider=bank, timestamp=int(time.time()) + skew)
    _assert_refused(response, "stale_timestamp")


def test_a_timestamp_within_300_seconds_is_accepted(client, bank, bill):
    response = call(client, "POST", "/api/v1/payments", _body(bill), provider=bank, timestamp=int(time.time()) - 290)
    assert response.status_code == 201


def test_it_rejects_an_unknown_key(client, bank, bill):
    headers = signed_headers(key_id="nobody", secret=SECRET, method="POST", path="/api/v1/payments", body=_body(bill))
    response = client.post("/api/v1/payments", _body(bill), content_type="application/json", **headers)
    _assert_refused(response, "unknown_provider")


def test_it_rejects_missing_and_malformed_headers(client, bank, bill):
    body = _body(bill)
    for headers, code in [
        ({}, "unknown_provider"),
        ({"HTTP_X_PROVIDER_KEY": bank.key_id}, "stale_timestamp"),
        ({"HTTP_X_PROVIDER_KEY": bank.key_id, "HTTP_X_TIMESTAMP": "soon"}, "stale_timestamp"),
        ({"HTTP_X_PROVIDER_KEY": bank.key_id, "HTTP_X_TIMESTAMP": str(int(time.time()))}, "bad_signature"),
        ({"HTTP_X_PROVIDER_KEY": "bad key\x00", "HTTP_X_TIMESTAMP": "1"}, "unknown_provider"),
    ]:
        response = client.post("/api/v1/payments", body, content_type="application/json", **headers)
        _assert_refused(response, code)


def test_it_rejects_a_signature_in_another_scheme_or_not_hex(client, bank, bill):
    body, ts = _body(bill), str(int(time.time()))
    good = signature_compute(secret=SECRET, timestamp=ts, method="POST", path="/api/v1/payments", body=body)
    for value in (good, f"v0={good}", f"v1={good}é", "v1=", f"v2={good}"):
        response = client.post(
            "/api/v1/payments", body, content_type="application/json",
            HTTP_X_PROVIDER_KEY=bank.key_id, HTTP_X_TIMESTAMP=ts, HTTP_X_SIGNATURE=value,
        )  # fmt: skip
        _assert_refused(response, "bad_signature")


def test_an_inactive_provider_is_forbidden(client, bank, bill):
    bank.is_active = False
    bank.save()
    _assert_refused(call(client, "POST", "/api/v1/payments", _body(bill), provider=bank), "provider_inactive", 403)


def test_several_v1_values_one_valid_is_enough(client, bank, bill):
    body, ts = _body(bill), str(int(time.time()))
    good = signature_header(secret=SECRET, timestamp=ts, method="POST", path="/api/v1/payments", body=body)
    response = client.post(
        "/api/v1/payments", body, content_type="application/json",
        HTTP_X_PROVIDER_KEY=bank.key_id, HTTP_X_TIMESTAMP=ts, HTTP_X_SIGNATURE=f"v1={'0' * 64}, {good}",
    )  # fmt: skip
    assert response.status_code == 201


def test_during_a_rotation_both_secrets_sign_and_after_it_only_the_new(client, bank, bill):
    from payments.services import provider_rotation_end, provider_secret_rotate

    new = provider_secret_rotate(provider=bank)
    assert call(client, "POST", "/api/v1/payments", _body(bill, reference="OLD"), provider=bank).status_code == 201
    assert (
        call(client, "POST", "/api/v1/payments", _body(bill, reference="NEW"), provider=bank, secret=new).status_code
        == 201
    )
    provider_rotation_end(provider=bank)
    response = call(client, "POST", "/api/v1/payments", _body(bill, reference="LATE"), provider=bank)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_signature"


def test_a_database_dump_alone_cannot_sign(bank, settings):
    # What the database holds is a ciphertext, bound to this key id and to a key
    # from the environment: with another server key it does not open.
    from payments.crypto import SecretUnreadable, secret_open

    bank.refresh_from_db()
    assert SECRET not in bank.secret_sealed
    assert secret_open(bank.secret_sealed, key_id=bank.key_id) == SECRET
    with pytest.raises(SecretUnreadable):
        secret_open(bank.secret_sealed, key_id="another-bank")
    settings.PAYMENTS_SECRET_KEY = "a-different-server-key"
    with pytest.raises(SecretUnreadable):
        secret_open(bank.secret_sealed, key_id=bank.key_id)
    assert secret_open(secret_seal(SECRET, key_id="k"), key_id="k") == SECRET
