"""The bank API's contract: answers, replays, conflicts, errors, amounts, the inbox."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from billing.models import Bill, ServiceAccount
from billing.tests.factories import BillFactory, ServiceAccountFactory
from notifications.models import Message
from payments.models import Allocation, ApiInbox, Payment

from .factories import call

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(subscriber):
    account = ServiceAccountFactory(subscriber=subscriber)
    subscriber.channels.create(kind="sms", address="+21620111222", language="fr", verified_at=dt.datetime.now(dt.UTC))
    return account


@pytest.fixture
def bills(account):
    old = BillFactory(account=account, period=dt.date(2026, 8, 1))
    new = BillFactory(account=account, period=dt.date(2026, 9, 1))
    return old, new


def _payment(account, **overrides) -> dict:
    return {
        "reference": "TRX-20261202-0001",
        "account_number": account.number,
        "amount": "59.500",
        "currency": "TND",
        "paid_at": "2026-12-02T14:00:00+01:00",
        "channel": "mobile_app",
        **overrides,
    }


def _post(client, bank, body):
    return call(client, "POST", "/api/v1/payments", body, provider=bank)


def test_account_due_lists_open_bills_with_a_masked_name(client, bank, account, bills):
    response = call(client, "GET", f"/api/v1/accounts/{account.number}/due", provider=bank)
    assert response.status_code == 200
    assert response.json() == {
        "account_number": account.number,
        "customer_name": "A*** B*** S***",
        "currency": "TND",
        "total_due": "119.000",
        "bills": [
            {"bill_number": bills[0].number, "period": "2026-08", "due_date": str(bills[0].due_date), "amount_due": "59.500"},
            {"bill_number": bills[1].number, "period": "2026-09", "due_date": str(bills[1].due_date), "amount_due": "59.500"},
        ],
    }  # fmt: skip
    assert "Alice" not in response.content.decode()


def test_account_due_of_an_unknown_account_is_a_json_404(client, bank):
    for number in ("1000000016", "not-a-number", "1" * 200):
        response = call(client, "GET", f"/api/v1/accounts/{number}/due", provider=bank)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "account_not_found"


def test_a_payment_goes_to_the_oldest_bill_first_and_is_answered_201(client, bank, account, bills):
    response = _post(client, bank, _payment(account, amount="70.000"))
    assert response.status_code == 201, response.content
    data = response.json()
    payment = Payment.objects.get()
    assert data == {
        "reference": "TRX-20261202-0001",
        "status": "applied",
        "receipt_number": payment.receipt_number,
        "account_number": account.number,
        "amount": "70.000",
        "currency": "TND",
        "allocations": [
            {"bill_number": bills[0].number, "amount": "59.500"},
            {"bill_number": bills[1].number, "amount": "10.500"},
        ],
        "credit": "0.000",
    }
    old, new = Bill.objects.get(pk=bills[0].pk), Bill.objects.get(pk=bills[1].pk)
    assert (old.status, old.amount_due) == (Bill.Status.PAID, 0)
    assert (new.status, new.amount_due, new.amount_paid) == (
        Bill.Status.PARTIALLY_PAID,
        Decimal("49.000"),
        Decimal("10.500"),
    )
    # Kill Bill #1847: the provider's own transaction id is kept, for reconciliation.
    assert (payment.provider, payment.reference, payment.channel) == (bank, "TRX-20261202-0001", "mobile_app")


def test_a_named_bill_is_paid_first(client, bank, account, bills):
    response = _post(client, bank, _payment(account, bill_number=bills[1].number))
    assert response.json()["allocations"] == [{"bill_number": bills[1].number, "amount": "59.500"}]
    assert Bill.objects.get(pk=bills[0].pk).status == Bill.Status.ISSUED


def test_a_bill_of_another_account_is_a_mismatch(client, bank, account, bills, other_subscriber):
    foreign = BillFactory(account__subscriber=other_subscriber)
    response = _post(client, bank, _payment(account, bill_number=foreign.number))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "bill_mismatch"
    assert Payment.objects.count() == 0
    assert Bill.objects.get(pk=foreign.pk).amount_paid == 0


def test_money_beyond_the_bills_becomes_credit_never_refused(client, bank, account, bills):
    response = _post(client, bank, _payment(account, amount="200.000"))
    assert response.status_code == 201
    assert response.json()["credit"] == "81.000"
    assert ServiceAccount.objects.get(pk=account.pk).credit == Decimal("81.000")


def test_a_payment_to_an_account_with_no_bill_is_all_credit(client, bank, account):
    response = _post(client, bank, _payment(account, amount="12.000"))
    assert response.status_code == 201
    assert response.json()["allocations"] == []
    assert response.json()["credit"] == "12.000"


def test_the_same_request_again_gets_the_identical_answer(client, bank, account, bills):
    first = _post(client, bank, _payment(account))
    again = _post(client, bank, _payment(account))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content
    assert Payment.objects.count() == 1
    assert Bill.objects.get(pk=bills[0].pk).amount_paid == Decimal("59.500")


@pytest.mark.parametrize(
    "field, value",
    [
        ("account_number", None),
        ("bill_number", None),
        ("amount", "59.501"),
        ("paid_at", "2026-12-02T14:00:01+01:00"),
        ("channel", "atm"),
    ],
)
def test_the_same_reference_with_any_other_field_is_a_conflict_and_changes_nothing(
    client, bank, account, bills, other_subscriber, field, value
):
    first = _post(client, bank, _payment(account))
    if field == "account_number":
        value = ServiceAccountFactory(subscriber=other_subscriber).number
    if field == "bill_number":
        value = bills[1].number
    before = list(Bill.objects.order_by("pk").values_list("amount_paid", "status"))
    response = _post(client, bank, _payment(account, **{field: value}))
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "reference_conflict"
    assert Payment.objects.count() == 1
    assert list(Bill.objects.order_by("pk").values_list("amount_paid", "status")) == before
    assert json.loads(Payment.objects.get().response) == first.json()


@pytest.mark.parametrize("field, value", [("currency", "XOF"), ("amount", "59.5001"), ("amount", "0")])
def test_a_used_reference_sent_again_with_an_unusable_field_is_a_conflict_too(
    client, bank, account, bills, field, value
):
    first = _post(client, bank, _payment(account))
    response = _post(client, bank, _payment(account, **{field: value}))
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "reference_conflict"
    assert json.loads(Payment.objects.get().response) == first.json()
    # A new reference with the same fields is still refused for what is wrong with them.
    fresh = _post(client, bank, _payment(account, reference="TRX-20261202-0002", **{field: value}))
    assert fresh.json()["error"]["code"] == ("currency_mismatch" if field == "currency" else "invalid_amount")


def test_the_api_answers_in_english_whatever_the_servers_language(client, bank, account, settings):
    settings.LANGUAGE_CODE = "fr"
    body = _payment(account)
    del body["paid_at"]
    response = _post(client, bank, body)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"paid_at": ["This field is required."]}
    refused = call(client, "PUT", "/api/v1/payments", _payment(account), provider=bank)
    assert refused.status_code == 405
    assert refused.json()["error"]["message"] == 'Method "PUT" not allowed.'


def test_the_same_instant_written_with_another_offset_is_the_same_request(client, bank, account, bills):
    _post(client, bank, _payment(account))
    again = _post(client, bank, _payment(account, paid_at="2026-12-02T13:00:00Z"))
    assert again.status_code == 200


def test_a_payment_writes_a_payment_received_message_in_its_transaction(client, bank, account, bills):
    _post(client, bank, _payment(account))
    message = Message.objects.get(event="payment_received")
    receipt = Payment.objects.get().receipt_number
    assert receipt in message.body
    assert "59,500" in message.body  # what is still due, in French
    _post(client, bank, _payment(account))  # a replay sends nothing more
    assert Message.objects.filter(event="payment_received").count() == 1


def test_the_status_of_a_payment_and_of_another_providers_reference(client, bank, other_bank, account, bills):
    created = _post(client, bank, _payment(account)).json()
    mine = call(client, "GET", "/api/v1/payments/TRX-20261202-0001", provider=bank)
    assert mine.status_code == 200
    assert mine.json() == created
    theirs = call(client, "GET", "/api/v1/payments/TRX-20261202-0001", provider=other_bank)
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "payment_not_found"
    reversal = call(client, "POST", "/api/v1/payments/TRX-20261202-0001/reversal", {"reason": "x"}, provider=other_bank)
    assert reversal.status_code == 404
    assert Payment.objects.get().status == Payment.Status.APPLIED


def test_a_reversal_reopens_the_bills_and_takes_back_the_credit_and_twice_is_harmless(client, bank, account, bills):
    _post(client, bank, _payment(account, amount="150.000"))
    assert ServiceAccount.objects.get(pk=account.pk).credit == Decimal("31.000")
    path = "/api/v1/payments/TRX-20261202-0001/reversal"
    first = call(client, "POST", path, {"reason": "Customer disputed"}, provider=bank)
    second = call(client, "POST", path, {"reason": "Customer disputed"}, provider=bank)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == "reversed"
    assert second.json() == first.json()
    for bill in Bill.objects.filter(pk__in=[b.pk for b in bills]):
        assert (bill.status, bill.amount_paid, bill.amount_due) == (Bill.Status.ISSUED, 0, Decimal("59.500"))
    assert ServiceAccount.objects.get(pk=account.pk).credit == 0
    assert call(client, "GET", "/api/v1/payments/TRX-20261202-0001", provider=bank).json()["status"] == "reversed"
    # A reversed reference is not reusable: the same body is the stored answer, another is a conflict.
    assert _post(client, bank, _payment(account, amount="150.000")).status_code == 200
    assert _post(client, bank, _payment(account, amount="1.000")).status_code == 409


def test_reversing_an_unknown_reference_is_404(client, bank):
    response = call(client, "POST", "/api/v1/payments/NOPE/reversal", {"reason": "x"}, provider=bank)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "payment_not_found"


def test_a_closed_account_refuses_payments(client, bank, account):
    ServiceAccount.objects.filter(pk=account.pk).update(status=ServiceAccount.Status.CLOSED)
    response = _post(client, bank, _payment(account))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "account_closed"


def test_an_unknown_account_is_404(client, bank):
    response = _post(client, bank, {**_payment(ServiceAccount(number="1000000016"))})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "account_not_found"


def test_another_currency_is_a_mismatch(client, bank, account):
    for currency in ("XOF", "EUR", "ZZZ"):
        response = _post(client, bank, _payment(account, currency=currency, amount="10"))
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "currency_mismatch"
    assert Payment.objects.count() == 0


BAD_AMOUNTS = [
    "10.0001",  # four decimals: TND has three
    "0",
    "0.000",
    "-5.000",
    "1e3",
    "1E3",
    "NaN",
    "Infinity",
    "-Infinity",
    "99999999999999999999",
    "1" * 40,
    "",
    " 10",
    "10.",
    ".5",
    "1,5",
    "١٠",  # Arabic-Indic digits
    "0x10",
    12.5,
    10,
    None,
    True,
    ["10"],
    {"value": "10"},
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_bad_amounts_in_tnd_are_invalid_amount(client, bank, account, amount):
    response = _post(client, bank, _payment(account, amount=amount))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_amount"
    assert Payment.objects.count() == 0


@pytest.mark.parametrize("amount, ok", [("10.5", True), ("10", True), ("10.500", True), ("99999999999.999", True),
                                        ("100000000000", False)])  # fmt: skip
def test_amount_limits_in_tnd(client, bank, account, amount, ok):
    response = _post(client, bank, _payment(account, amount=amount))
    assert (response.status_code == 201) is ok, response.content


@pytest.mark.parametrize("amount, ok", [("5000", True), ("5000.0", False), ("5000.5", False), ("0", False),
                                        ("-1", False), ("5e3", False)])  # fmt: skip
def test_amounts_in_xof_have_no_decimals(client, bank, account, settings, amount, ok):
    settings.SELFCARE_CURRENCY = "XOF"
    response = _post(client, bank, _payment(account, amount=amount, currency="XOF"))
    if ok:
        assert response.status_code == 201, response.content
        assert response.json()["amount"] == "5000"
    else:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_amount"


@pytest.mark.parametrize(
    "change",
    [
        {"reference": ""},
        {"reference": "a" * 65},
        {"reference": "TRX 1"},
        {"reference": "TRX/1"},
        {"reference": "TRX-1 "},  # kept as sent: never trimmed into "TRX-1"
        {"reference": " TRX-1"},
        {"reference": "TRX-1\n"},
        {"paid_at": "2026-12-02T14:00:00"},  # no offset
        {"paid_at": "2026-12-02"},
        {"paid_at": "yesterday"},
        {"paid_at": 1764680400},
        {"currency": "TN"},
        {"account_number": None},
        {"channel": "x" * 33},
    ],
)
def test_shape_errors_are_validation_errors(client, bank, account, change):
    response = _post(client, bank, _payment(account, **change))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert set(body["error"]["details"]) <= set(_payment(account))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b"\xff\xfe{}",
        b'{"reference": "A\\u0000B"}',
        b'{"reference": "\\ud800"}',
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"amount": 1' + b"0" * 5000 + b"}",
        b"[" * 100000 + b"]" * 100000,
        b'{"a": ' * 50 + b"1" + b"}" * 50,
    ],
)
def test_hostile_bodies_are_validation_errors_never_500(client, bank, raw):
    response = call(client, "POST", "/api/v1/payments", raw, provider=bank)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert ApiInbox.objects.get().status == ApiInbox.Status.FAILED


def test_nul_and_surrogates_inside_fields_are_validation_errors(client, bank, account):
    for value in ("TRX\x00", "\ud800"):
        raw = json.dumps(_payment(account, channel=value)).encode()
        response = call(client, "POST", "/api/v1/payments", raw, provider=bank)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"


def test_other_methods_and_paths_are_json_errors(client, bank):
    response = call(client, "DELETE", "/api/v1/payments", provider=bank)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    response = call(client, "GET", "/api/v1/nothing-here", provider=bank)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_a_method_of_any_length_is_a_405_not_a_server_fault(client, bank):
    # HTTP allows any token as a method; the inbox keeps what fits its column.
    response = call(client, "MKCALENDAR", "/api/v1/payments", provider=bank)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert ApiInbox.objects.get().response_status == 405


def test_the_api_needs_no_csrf_token_and_ignores_sessions(bank, account, subscriber):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(subscriber.user)
    response = _post(browser, bank, _payment(account))
    assert response.status_code == 201
    # A logged-in session without a signature is nobody.
    assert browser.get(f"/api/v1/accounts/{account.number}/due").status_code == 401


def test_every_authenticated_request_is_in_the_inbox_with_its_answer(client, bank, account, bills):
    _post(client, bank, _payment(account))
    _post(client, bank, _payment(account, amount="1.000"))
    ok, conflict = ApiInbox.objects.order_by("pk")
    assert (ok.status, ok.response_status, ok.provider) == (ApiInbox.Status.SUCCEEDED, 201, bank)
    assert json.loads(bytes(ok.body))["reference"] == "TRX-20261202-0001"
    assert ok.headers["X-Provider-Key"] == bank.key_id
    assert ok.response_body["status"] == "applied"
    assert (conflict.status, conflict.response_status) == (ApiInbox.Status.FAILED, 409)
    assert conflict.error.startswith("reference_conflict")


def test_a_server_fault_is_a_json_500_and_the_inbox_keeps_the_error(client, bank, account, monkeypatch):
    from payments import apis

    def boom(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(apis, "payment_apply", boom)
    client.raise_request_exception = False
    response = _post(client, bank, _payment(account))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    row = ApiInbox.objects.get()
    assert row.status == ApiInbox.Status.FAILED
    assert "database on fire" in row.error


def test_a_new_payment_takes_a_bounded_number_of_statements(
    client, bank, account, bills, django_assert_max_num_queries
):
    # The API's hot path (benchmarks/payments.py): a provider, the inbox row and
    # its answer, the account and its bills locked, the payment, allocations, bills,
    # credit, receipt number, audit entries, message, and whether a disconnection
    # order awaits this payment (billing.dunning). It once took forty.
    ContentType.objects.get_for_models(Payment, Allocation, Bill, ServiceAccount)  # cached once per process
    with django_assert_max_num_queries(19) as captured:
        response = _post(client, bank, _payment(account, amount="125.000"))  # both bills, 6.000 of credit
    assert response.status_code == 201
    assert not [q["sql"] for q in captured.captured_queries if "core_sequence" in q["sql"]]


# --- The middleware a signed request goes through -------------------------------


def test_a_signed_answer_keeps_its_security_headers_and_sets_no_cookie(client, bank, account, bills, subscriber):
    # given a browser's session cookie sent along (the API ignores it)
    client.force_login(subscriber.user)
    # when
    response = _post(client, bank, _payment(account))
    # then the headers that protect any response are there
    assert response.status_code == 201
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response
    assert "no-store" in response["Cache-Control"]
    # and nothing of a person's session: no cookie set, no language chosen, no CSRF check
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "") and "Accept-Language" not in response.get("Vary", "")
    assert Payment.objects.get().account == account


def test_the_unstorable_input_guard_still_runs_for_the_signed_api(client, bank):
    for path in ("/api/v1/payments/TRX%00", "/api/v1/accounts/1000000016/due?q=%00"):
        response = call(client, "GET", path, provider=bank)
        # refused before any view, in the API's one error shape, not an HTML page
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == {
            "code": "validation_error",
            "message": "The request holds a character that cannot be stored.",
            "details": {},
        }
    assert not ApiInbox.objects.exists()


def test_the_api_docs_are_a_page_with_the_whole_chain(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert "Vary" in response and "Content-Security-Policy" in response
