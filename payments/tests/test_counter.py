"""Counter payments: a clerk takes cash, a cheque or a card for an account of
their agency, through the same `payment_apply` as the bank API, and prints a
receipt; another agency's clerk can neither find the account nor see the
payment; a supervisor corrects one by reversing it with a reason; all of it in
the audit trail."""

from __future__ import annotations

import datetime as dt
import re
import threading
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import AgencyFactory, SubscriberFactory
from billing.models import Bill, ServiceAccount
from billing.tests.factories import BillFactory, ServiceAccountFactory
from core.audit import audit_context
from core.testing import run_at_once
from core.tests.test_headers import InlineFinder
from payments.counter import CounterPaymentRefused, counter_payment_record, counter_provider_for
from payments.models import CounterPayment, Payment, Provider

from .factories import csrf_token_of, staff_signed_in

pytestmark = pytest.mark.django_db

ADD = "/fr/admin/payments/counterpayment/add/"


@pytest.fixture
def account(subscriber) -> ServiceAccount:
    return ServiceAccountFactory(subscriber=subscriber, number="1000000016")


@pytest.fixture
def bills(account) -> list[Bill]:
    """Two open bills of 59.500: September's and October's."""
    return [BillFactory(account=account, period=dt.date(2026, 9, 1)), BillFactory(account=account, period=dt.date(2026, 10, 1))]  # fmt: skip


@pytest.fixture
def clerk_client(clerk, password, settings) -> Client:
    return staff_signed_in(clerk, password, settings)


def _post(client: Client, account: ServiceAccount, **fields):  # type: ignore[no-untyped-def]
    """Open the account's payment form as the clerk does, then send it."""
    page = client.get(ADD, {"account": account.pk})
    assert page.status_code == 200
    token = re.search(r'name="token" value="([0-9A-F]{16})"', page.content.decode()).group(1)
    data = {"account": account.pk, "token": token, "csrfmiddlewaretoken": csrf_token_of(page), **fields}
    return client.post(ADD, {k: v for k, v in data.items() if v is not None})


# --- Recording ------------------------------------------------------------------


def test_a_clerk_finds_the_account_and_sees_its_open_bills_and_total_due(clerk_client, account, bills) -> None:
    page = clerk_client.get(ADD, {"account": account.pk})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Alice Ben Salah" in html
    assert bills[0].number in html and bills[1].number in html
    total = re.search(r'id="counter-total-due"><bdi>([^<]+)<', html).group(1)
    assert total.replace("\u202f", " ").replace("\xa0", " ") == "119,000 DT"


def test_a_clerk_records_cash_for_a_bill_and_prints_the_receipt(clerk_client, clerk, account, bills) -> None:
    # when: September's bill, paid with 60 in cash
    response = _post(clerk_client, account, bill=bills[0].pk, amount="", method="cash", amount_tendered="60")
    # then: the bill is paid through payment_apply with the agency's counter, change 0.500
    assert response.status_code == 302, response.content.decode()[:3000]
    counter = CounterPayment.objects.select_related("payment__provider").get()
    payment = counter.payment
    assert response["Location"] == reverse("admin:payments_counterpayment_receipt", args=[counter.pk])
    assert (payment.amount, payment.channel, payment.status) == (Decimal("59.500"), "cash", "applied")
    assert payment.provider == counter_provider_for(agency=account.subscriber.agency)
    assert payment.provider.kind == Provider.Kind.COUNTER
    assert (counter.clerk, counter.agency) == (clerk, account.subscriber.agency)
    assert (counter.amount_tendered, counter.change_given) == (Decimal("60.000"), Decimal("0.500"))
    assert Bill.objects.get(pk=bills[0].pk).status == Bill.Status.PAID
    assert Bill.objects.get(pk=bills[1].pk).amount_due == Decimal("59.500")

    receipt = clerk_client.get(response["Location"])
    html = receipt.content.decode()
    assert receipt.status_code == 200 and "no-store" in receipt["Cache-Control"]
    for shown in (payment.receipt_number, "100 000 0016", "Alice Ben Salah", bills[0].number, "Espèces",
                  "clerk@agency.example", account.subscriber.agency.name_fr, "counter_receipt.css"):  # fmt: skip
        assert shown in html, shown
    assert re.search(r'id="receipt-amount">59,500\s?DT<', html.replace("\u202f", " ").replace("\xa0", " "))


def test_an_empty_amount_pays_the_total_due_oldest_bill_first(clerk_client, account, bills) -> None:
    response = _post(clerk_client, account, amount="", method="card", card_last_digits="4242")
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert payment.amount == Decimal("119.000")
    assert list(payment.allocations.order_by("bill__period").values_list("amount", flat=True)) == [
        Decimal("59.500"),
        Decimal("59.500"),
    ]
    assert payment.counter.card_last_digits == "4242"


def test_more_than_is_due_goes_to_the_credit_and_is_on_the_receipt(clerk_client, account, bills) -> None:
    response = _post(clerk_client, account, amount="150,250", method="cash")
    assert response.status_code == 302
    assert ServiceAccount.objects.get(pk=account.pk).credit == Decimal("31.250")
    html = clerk_client.get(response["Location"]).content.decode().replace("\u202f", " ").replace("\xa0", " ")
    assert "31,250 DT" in html


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0", "supérieur à zéro"),
        ("0.000", "supérieur à zéro"),
        ("-5", "négatif"),
        ("12.5001", "3 décimales"),
        ("abc", "Saisissez un montant"),
        ("1e3", "Saisissez un montant"),
        ("12.", "Saisissez un montant"),
        ("NaN", "Saisissez un montant"),
        ("100000000000", "trop élevé"),
        ("x" * 41, "40"),  # longer than the field takes
    ],
)
def test_a_wrong_amount_is_a_form_error_and_records_nothing(clerk_client, account, bills, typed, message) -> None:
    response = _post(clerk_client, account, amount=typed, method="cash")
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get("amount", []))
    assert message in errors, errors
    assert not Payment.objects.exists() and not CounterPayment.objects.exists()


def test_a_currency_without_decimals_refuses_any(clerk_client, account, bills, settings) -> None:
    settings.SELFCARE_CURRENCY = "XOF"
    response = _post(clerk_client, account, amount="12.5", method="cash")
    assert "XOF n’a pas de décimales" in " ".join(response.context["form"].errors["amount"])
    assert not Payment.objects.exists()


def test_arabic_digits_and_spaces_between_thousands_are_read(clerk_client, account, bills) -> None:
    response = _post(clerk_client, account, amount="١ ٠٠٠٫٥", method="cash")
    assert response.status_code == 302
    assert Payment.objects.get().amount == Decimal("1000.500")


def test_a_cheque_needs_its_number_and_bank(clerk_client, account, bills) -> None:
    response = _post(clerk_client, account, amount="10", method="cheque", cheque_number="", cheque_bank="BIAT")
    assert response.status_code == 200
    assert response.context["form"].errors["cheque_number"]
    assert not Payment.objects.exists()

    response = _post(clerk_client, account, amount="10", method="cheque", cheque_number="0012345", cheque_bank="BIAT")
    assert response.status_code == 302
    counter = CounterPayment.objects.get()
    assert (counter.method, counter.cheque_number, counter.cheque_bank) == ("cheque", "0012345", "BIAT")
    assert counter.amount_tendered is None
    html = clerk_client.get(response["Location"]).content.decode()
    assert "0012345" in html and "BIAT" in html


def test_the_database_refuses_a_cheque_without_its_number(clerk, account, bills) -> None:
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("1"), method="card")
    for fields in (
        {"method": "cheque", "cheque_number": "", "cheque_bank": "BIAT"},
        {"method": "cash", "cheque_number": "12", "cheque_bank": "BIAT"},
        {"method": "card", "card_last_digits": "42a4"},
        {"method": "cash", "amount_tendered": Decimal("5"), "change_given": Decimal("6")},
        {"method": "cash", "amount_tendered": None, "change_given": None},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            CounterPayment.objects.filter(pk=counter.pk).update(**fields)


def test_other_methods_details_typed_before_changing_ones_mind_are_dropped(clerk_client, account, bills) -> None:
    response = _post(
        clerk_client, account, amount="10", method="card", cheque_number="999", cheque_bank="BNA", amount_tendered="20",
    )  # fmt: skip
    assert response.status_code == 302
    counter = CounterPayment.objects.get()
    assert (counter.cheque_number, counter.cheque_bank, counter.amount_tendered) == ("", "", None)


def test_cash_handed_over_must_cover_the_amount(clerk_client, account, bills) -> None:
    response = _post(clerk_client, account, amount="50", method="cash", amount_tendered="40")
    assert response.context["form"].errors["amount_tendered"]
    assert not Payment.objects.exists()


def test_a_double_click_records_the_payment_once(clerk_client, account, bills) -> None:
    page = clerk_client.get(ADD, {"account": account.pk})
    token = re.search(r'name="token" value="([0-9A-F]{16})"', page.content.decode()).group(1)
    data = {"account": account.pk, "token": token, "amount": "20", "method": "cash", "csrfmiddlewaretoken": csrf_token_of(page)}  # fmt: skip
    first, second = clerk_client.post(ADD, data), clerk_client.post(ADD, data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Payment.objects.count() == CounterPayment.objects.count() == 1
    # The same form with another amount is not taken for a repeat.
    changed = clerk_client.post(ADD, {**data, "amount": "25"})
    assert changed.status_code == 200 and changed.context["form"].non_field_errors()
    assert Payment.objects.count() == 1


def test_a_closed_account_is_refused_with_a_message(clerk_client, account, bills) -> None:
    page = clerk_client.get(ADD, {"account": account.pk})
    ServiceAccount.objects.filter(pk=account.pk).update(status=ServiceAccount.Status.CLOSED)
    token = re.search(r'name="token" value="([0-9A-F]{16})"', page.content.decode()).group(1)
    response = clerk_client.post(
        ADD, {"account": account.pk, "token": token, "amount": "5", "method": "cash", "csrfmiddlewaretoken": csrf_token_of(page)}
    )  # fmt: skip
    assert response.status_code == 200
    assert "fermé" in " ".join(response.context["form"].non_field_errors())
    assert not Payment.objects.exists()


def test_the_form_refuses_a_post_without_the_csrf_token(clerk_client, account, bills) -> None:
    page = clerk_client.get(ADD, {"account": account.pk})
    token = re.search(r'name="token" value="([0-9A-F]{16})"', page.content.decode()).group(1)
    response = clerk_client.post(ADD, {"account": account.pk, "token": token, "amount": "5", "method": "cash"})
    assert response.status_code == 403
    assert not Payment.objects.exists()


def test_a_password_alone_does_not_open_the_counter(clerk, password, settings, account) -> None:
    settings.SELFCARE_STAFF_OTP_REQUIRED = True
    client = Client()
    client.post("/fr/admin/login/?next=/fr/admin/", {"username": clerk.email, "password": password})
    assert client.get(ADD, {"account": account.pk}).status_code == 302


# --- Scoping --------------------------------------------------------------------------


def test_another_agencys_clerk_cannot_find_pay_or_see_the_account(
    client, other_agency_clerk, clerk, account, bills
) -> None:
    mine = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    client.force_login(other_agency_clerk)
    # The account cannot be picked: not offered by the search, refused when typed.
    found = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "payments", "model_name": "payment", "field_name": "account", "term": account.number},
    )
    assert found.status_code == 200 and found.json()["results"] == []
    page = client.get(ADD, {"account": account.pk})
    assert page.status_code == 200 and page.context["form"] is None
    assert 'name="method"' not in page.content.decode()
    assert "pas un compte de vos agences" in page.content.decode()
    response = client.post(ADD, {"account": account.pk, "token": "0" * 16, "amount": "5", "method": "cash"})
    assert response.status_code == 200
    assert Payment.objects.count() == 1
    # Alice's agency's payment and its receipt are a 404.
    for url in (
        reverse("admin:payments_counterpayment_receipt", args=[mine.pk]),
        reverse("admin:payments_counterpayment_change", args=[mine.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert mine not in client.get(reverse("admin:payments_counterpayment_changelist")).context["cl"].result_list


def test_the_service_refuses_another_agencys_clerk_and_the_auditor(other_agency_clerk, auditor, account, bills) -> None:
    for user in (other_agency_clerk, auditor):
        with pytest.raises(CounterPaymentRefused) as refused:
            counter_payment_record(clerk=user, account=account, amount=Decimal("5"), method="cash")
        assert refused.value.code == "not_allowed"
    assert not Payment.objects.exists()


def test_a_clerk_of_two_agencies_pays_at_the_counter_of_the_accounts_agency(clerk, account, bills) -> None:
    other = SubscriberFactory()
    clerk.agencies.add(other.agency)
    theirs = ServiceAccountFactory(subscriber=other)
    counter = counter_payment_record(clerk=clerk, account=theirs, amount=Decimal("5"), method="cash")
    assert counter.agency == other.agency
    assert counter.payment.provider.agency == other.agency


# --- Read-only, corrected by a reversal -------------------------------------------------


def test_a_counter_payment_cannot_be_edited_or_deleted(client, superuser, clerk, account, bills) -> None:
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    client.force_login(superuser)
    url = reverse("admin:payments_counterpayment_change", args=[counter.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="method"' not in page.content.decode()
    client.post(url, {"method": "card"})
    assert CounterPayment.objects.get().method == "cash"
    assert client.post(reverse("admin:payments_counterpayment_delete", args=[counter.pk])).status_code == 403
    assert client.get(reverse("admin:payments_payment_add")).status_code == 403


def test_a_supervisor_reverses_a_payment_with_a_reason(supervisor, password, settings, clerk, account, bills) -> None:
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("59.500"), method="cash")
    assert Bill.objects.get(pk=bills[0].pk).status == Bill.Status.PAID
    client = staff_signed_in(supervisor, password, settings)
    changelist = reverse("admin:payments_counterpayment_changelist")
    page = client.get(changelist)
    # First the reason is asked…
    confirm = client.post(
        changelist, {"action": "reverse", "_selected_action": [counter.pk], "csrfmiddlewaretoken": csrf_token_of(page)}
    )
    assert confirm.status_code == 200 and counter.payment.receipt_number in confirm.content.decode()
    assert Payment.objects.get().status == "applied"
    # …then the payment is reversed with it.
    done = client.post(
        changelist,
        {"action": "reverse", "_selected_action": [counter.pk], "reason": "Wrong account: customer's neighbour",
         "csrfmiddlewaretoken": csrf_token_of(confirm)},
        REMOTE_ADDR="192.0.2.44",
    )  # fmt: skip
    assert done.status_code == 302
    payment = Payment.objects.get()
    assert (payment.status, payment.reversal_reason) == ("reversed", "Wrong account: customer's neighbour")
    assert Bill.objects.get(pk=bills[0].pk).amount_due == Decimal("59.500")
    entry = LogEntry.objects.get_for_object(payment).filter(action=LogEntry.Action.UPDATE).latest("pk")
    assert (entry.actor, entry.remote_addr) == (supervisor, "192.0.2.44")
    assert entry.changes["status"] == ["applied", "reversed"]
    assert "reverse" in client.get(changelist).content.decode()


def test_a_clerk_cannot_reverse(client, clerk, account, bills) -> None:
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    client.force_login(clerk)
    changelist = reverse("admin:payments_counterpayment_changelist")
    page = client.get(changelist).content.decode()
    assert 'value="reverse"' not in page
    client.post(changelist, {"action": "reverse", "_selected_action": [counter.pk], "reason": "Because"})
    assert Payment.objects.get().status == "applied"


def test_a_reversal_needs_a_reason(supervisor, clerk, account, bills) -> None:
    from payments.counter import counter_payment_reverse

    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    with pytest.raises(CounterPaymentRefused):
        counter_payment_reverse(counter_payment=counter, reason="  ", user=supervisor)
    assert counter_payment_reverse(counter_payment=counter, reason="Typo", user=supervisor) is True
    assert counter_payment_reverse(counter_payment=counter, reason="Typo", user=supervisor) is False


# --- Audit trail --------------------------------------------------------------------


def test_a_counter_payment_is_in_the_audit_trail_with_clerk_address_and_agency(clerk_client, clerk, account, bills):
    page = clerk_client.get(ADD, {"account": account.pk})
    token = re.search(r'name="token" value="([0-9A-F]{16})"', page.content.decode()).group(1)
    clerk_client.post(
        ADD,
        {"account": account.pk, "token": token, "amount": "5", "method": "cash", "csrfmiddlewaretoken": csrf_token_of(page)},
        REMOTE_ADDR="192.0.2.9",
    )  # fmt: skip
    counter = CounterPayment.objects.get()
    scope = {"agency_id": account.subscriber.agency_id, "subscriber_id": account.subscriber_id}
    for obj in (counter, counter.payment):
        entry = LogEntry.objects.get_for_object(obj).get(action=LogEntry.Action.CREATE)
        assert (entry.actor, entry.remote_addr) == (clerk, "192.0.2.9"), obj
        assert entry.additional_data == scope
    assert LogEntry.objects.get_for_object(counter).get().changes["method"] == [None, "cash"]


def test_outside_a_request_the_trail_names_the_clerk_not_the_system(clerk, account, bills) -> None:
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    assert LogEntry.objects.get_for_object(counter).get().actor == clerk
    with audit_context(actor=clerk, remote_addr="10.1.1.1"):
        again = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    assert LogEntry.objects.get_for_object(again).get().remote_addr == "10.1.1.1"


def test_supervisors_of_the_agency_read_the_entries(client, supervisor, other_agency_clerk, clerk, account, bills):
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    entry = LogEntry.objects.get_for_object(counter).get()
    client.force_login(supervisor)
    assert client.get(reverse("admin:auditlog_logentry_change", args=[entry.pk])).status_code == 200


# --- The page itself ----------------------------------------------------------------


def test_the_pages_are_right_to_left_in_arabic_and_nothing_inline(clerk_client, clerk, account, bills) -> None:
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("59.500"), method="cash")
    for url in (
        f"/ar/admin/payments/counterpayment/{counter.pk}/receipt/",
        f"/ar/admin/payments/counterpayment/add/?account={account.pk}",
        "/ar/admin/payments/counterpayment/add/",
    ):
        response = clerk_client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert 'dir="rtl"' in html, url
        finder = InlineFinder()
        finder.feed(html)
        assert not finder.found, (url, finder.found)
    receipt = clerk_client.get(f"/ar/admin/payments/counterpayment/{counter.pk}/receipt/").content.decode()
    assert "إيصال" in receipt and "counter_receipt.js" in receipt
    assert f'<bdi dir="ltr" id="receipt-number">{counter.payment.receipt_number}</bdi>' in receipt


def test_the_counter_has_one_provider_per_agency_and_no_usable_secret(clerk, account, bills) -> None:
    agency = account.subscriber.agency
    provider = counter_provider_for(agency=agency)
    assert counter_provider_for(agency=agency) == provider
    assert provider.key_id == f"counter-{agency.code}" and provider.secret_sealed
    with pytest.raises(IntegrityError), transaction.atomic():
        Provider.objects.create(name="Loose", kind="counter", key_id="loose", secret_sealed="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Provider.objects.create(name="Bank", kind="bank", key_id="bank-x", secret_sealed="x", agency=AgencyFactory())


def test_staff_cannot_make_a_counter_provider_by_hand(client, superuser) -> None:
    client.force_login(superuser)
    response = client.post(
        "/fr/admin/payments/provider/add/", {"name": "Guichet", "kind": "counter", "key_id": "g-1", "is_active": "on"}
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors["kind"]
    assert not Provider.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_first_payments_racing_at_a_new_agency_share_one_counter(clerk) -> None:
    agency = clerk.agencies.get()
    accounts = [ServiceAccountFactory(subscriber=SubscriberFactory(agency=agency)) for _ in range(6)]
    results = run_at_once(
        [
            lambda a=a: counter_payment_record(clerk=clerk, account=a, amount=Decimal("3"), method="cash")
            for a in accounts
        ]
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert Provider.objects.filter(agency=agency).count() == 1
    assert Payment.objects.filter(provider__agency=agency).count() == len(accounts)


@pytest.mark.parametrize("value", ["abc", "99999999999999999999", "-1", "1.5", "", "١"])
def test_an_odd_account_value_is_a_form_error_never_a_500(client, clerk, account, value) -> None:
    client.force_login(clerk)
    page = client.get(ADD, {"account": value})
    assert page.status_code == 200 and page.context["form"] is None
    posted = client.post(ADD, {"account": value, "token": "z", "amount": "1", "method": "cash"})
    assert posted.status_code == 200
    assert not Payment.objects.exists()


def test_an_odd_token_or_method_is_a_form_error(client, clerk, account, bills) -> None:
    client.force_login(clerk)
    for fields in ({"token": "<script>", "method": "cash"}, {"token": "A" * 16, "method": "gold"}):
        response = client.post(ADD, {"account": account.pk, "amount": "1", **fields})
        assert response.status_code == 200 and response.context["form"].errors
    assert not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_form_sent_twice_at_once_records_one_payment(clerk) -> None:
    account = ServiceAccountFactory(subscriber=SubscriberFactory(agency=clerk.agencies.get()))
    BillFactory(account=account)
    barrier, results, errors = threading.Barrier(4), [], []

    def send() -> None:
        try:
            barrier.wait()
            results.append(
                counter_payment_record(
                    clerk=clerk, account=account, amount=Decimal("59.500"), method="cash",
                    reference="CTR-0123456789ABCDEF",
                ).pk
            )  # fmt: skip
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 4
    assert Payment.objects.count() == CounterPayment.objects.count() == 1
    assert Bill.objects.get(account=account).amount_due == 0


def test_the_auditor_reads_counter_payments_and_records_none(client, auditor, clerk, account, bills) -> None:
    counter = counter_payment_record(clerk=clerk, account=account, amount=Decimal("5"), method="cash")
    client.force_login(auditor)
    assert client.get(reverse("admin:payments_counterpayment_receipt", args=[counter.pk])).status_code == 200
    assert client.get(ADD).status_code == 403


def test_the_form_starts_on_oldest_bills_first_and_cash(client, clerk, account, bills) -> None:
    client.force_login(clerk)
    form = client.get(ADD, {"account": account.pk}).context["form"]
    assert form["bill"].value() in (None, "") and form["method"].value() == "cash"
    html = str(form["bill"])
    assert re.search(r'value=""[^>]*checked', html)
