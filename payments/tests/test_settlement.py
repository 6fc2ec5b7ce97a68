"""Settlement files: a provider's day compared with our payments (matched, amount
mismatches, missing on either side), bad lines reported by number with nothing
imported, the same file refused twice, the limits, who may import which
provider's files, and the audit trail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import SubscriberFactory
from billing.tests.factories import BillFactory, ServiceAccountFactory
from payments.counter import counter_payment_record
from payments.models import Payment, SettlementImport, SettlementLine
from payments.services import payment_apply, payment_reverse
from payments.settlement import SettlementRefused, settlement_import

from .factories import csrf_token_of, staff_signed_in

pytestmark = pytest.mark.django_db

ADD = "/fr/admin/payments/settlementimport/add/"
DAY = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)  # 11:00 in Tunis


def _pay(provider, reference: str, amount: str, *, paid_at: dt.datetime = DAY) -> Payment:
    bill = BillFactory()
    return payment_apply(
        provider=provider, reference=reference, account_number=bill.account.number, amount=Decimal(amount),
        currency="TND", paid_at=paid_at,
    ).payment  # fmt: skip


def _file(text: str, name: str = "zitouna-2026-12-02.csv", *, bom: bool = False) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, (b"\xef\xbb\xbf" if bom else b"") + text.encode(), content_type="text/csv")


@pytest.fixture
def day(bank) -> dict[str, Payment]:
    """Our side of the day at the bank: four payments, one of them reversed since."""
    payments = {
        "matched": _pay(bank, "TRX-1", "59.500"),
        "mismatch": _pay(bank, "TRX-2", "20.000"),
        "theirs": _pay(bank, "TRX-3", "7.250"),
        "reversed": _pay(bank, "TRX-4", "15.000"),
        # The day before and after: outside the file's day, never "missing on their side".
        "before": _pay(bank, "TRX-0", "1.000", paid_at=dt.datetime(2026, 12, 1, 22, 59, tzinfo=dt.UTC)),
        "after": _pay(bank, "TRX-9", "1.000", paid_at=dt.datetime(2026, 12, 2, 23, 0, tzinfo=dt.UTC)),
    }
    payment_reverse(provider=bank, reference="TRX-4", reason="Chargeback")
    return payments


BANK_FILE = (
    "reference,amount,currency,paid_at\n"
    "TRX-1,59.500,TND,2026-12-02T11:00:00+01:00\n"
    "TRX-2,20.500,TND,2026-12-02T11:05:00+01:00\n"
    "TRX-4,15.000,TND,2026-12-02T11:10:00+01:00\n"
    "THEIRS-77,12.000,TND,2026-12-02T16:30:00+01:00\n"
)


@pytest.fixture
def root_client(superuser, password, settings) -> Client:
    return staff_signed_in(superuser, password, settings)


def _upload(client: Client, provider, upload: SimpleUploadedFile, **fields):  # type: ignore[no-untyped-def]
    page = client.get(ADD)
    assert page.status_code == 200
    data = {"provider": provider.pk, "file": upload, "csrfmiddlewaretoken": csrf_token_of(page), **fields}
    return client.post(ADD, data)


# --- Comparing ----------------------------------------------------------------------


def test_a_bank_file_is_compared_with_our_payments_and_the_result_kept(root_client, bank, day, superuser) -> None:
    response = _upload(root_client, bank, _file(BANK_FILE))
    assert response.status_code == 302, response.content.decode()[:3000]
    imported = SettlementImport.objects.get()
    assert response["Location"] == reverse("admin:payments_settlementimport_change", args=[imported.pk])
    outcomes = {line.reference: (line.outcome, line.line_number) for line in imported.lines.all()}
    assert outcomes == {
        "TRX-1": ("matched", 2),
        "TRX-2": ("amount_mismatch", 3),
        "TRX-4": ("amount_mismatch", 4),  # reversed on our side, settled on theirs
        "THEIRS-77": ("missing_ours", 5),
        "TRX-3": ("missing_theirs", None),
    }
    assert (imported.period_start, imported.period_end) == (dt.date(2026, 12, 2), dt.date(2026, 12, 2))
    assert (imported.lines_count, imported.uploaded_by, imported.file_name) == (4, superuser, "zitouna-2026-12-02.csv")
    assert (imported.matched_count, imported.matched_total) == (1, Decimal("59.500"))
    assert (imported.mismatch_count, imported.mismatch_total) == (2, Decimal("35.500"))
    assert (imported.missing_ours_count, imported.missing_ours_total) == (1, Decimal("12.000"))
    assert (imported.missing_theirs_count, imported.missing_theirs_total) == (1, Decimal("7.250"))
    assert imported.lines.get(reference="TRX-2").payment == day["mismatch"]
    # Nothing of ours changed: a mismatch is for a person to look into.
    assert Payment.objects.get(reference="TRX-2").amount == Decimal("20.000")

    page = root_client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and 'id="settlement-outcomes"' in html
    assert 'name="provider"' not in html  # the result is read-only
    for reference in ("TRX-1", "TRX-2", "TRX-3", "TRX-4", "THEIRS-77"):
        assert reference in html


def test_the_result_page_and_the_line_list_filter_by_outcome(root_client, bank, day) -> None:
    _upload(root_client, bank, _file(BANK_FILE))
    imported = SettlementImport.objects.get()
    url = reverse("admin:payments_settlementimport_change", args=[imported.pk])
    html = root_client.get(url, {"outcome": "missing_ours"}).content.decode()
    assert "THEIRS-77" in html and "TRX-1" not in html
    lines = root_client.get(
        reverse("admin:payments_settlementline_changelist"),
        {"settlement_import__id__exact": imported.pk, "outcome__exact": "amount_mismatch"},
    )
    assert {line.reference for line in lines.context["cl"].result_list} == {"TRX-2", "TRX-4"}


def test_semicolons_a_byte_order_mark_and_columns_in_another_order_are_read(bank, day, superuser) -> None:
    text = (
        "paid_at;Reference;currency;amount\r\n"
        "2026-12-02T11:00:00+01:00;TRX-1;TND;59.500\r\n"
        "\r\n"
        "2026-12-02T12:00:00Z;TRX-3;TND;7.250\r\n"
    )
    imported = settlement_import(provider=bank, file=_file(text, bom=True), user=superuser)
    assert imported.matched_count == 2 and imported.lines_count == 2
    assert imported.lines.get(reference="TRX-3").line_number == 4
    assert imported.missing_theirs_count == 1  # TRX-2


def test_a_file_without_a_header_is_read_in_the_published_order(bank, day, superuser) -> None:
    imported = settlement_import(
        provider=bank, file=_file("TRX-1,59.500,TND,2026-12-02T11:00:00+01:00\n"), user=superuser
    )
    assert imported.matched_count == 1


def test_an_empty_day_with_its_period_given_lists_all_ours_as_missing_on_their_side(bank, day, superuser) -> None:
    imported = settlement_import(
        provider=bank, file=_file("reference,amount,currency,paid_at\n"), user=superuser,
        period_start=dt.date(2026, 12, 2), period_end=dt.date(2026, 12, 2),
    )  # fmt: skip
    assert imported.lines_count == 0
    assert set(imported.lines.values_list("reference", flat=True)) == {"TRX-1", "TRX-2", "TRX-3"}
    with pytest.raises(SettlementRefused) as refused:
        settlement_import(provider=bank, file=_file("reference,amount,currency,paid_at\r\n"), user=superuser)
    assert "period" in str(refused.value.errors[0]) or "jours" in str(refused.value.errors[0])


# --- Refusing ------------------------------------------------------------------------


def test_every_bad_line_is_reported_by_number_and_nothing_is_imported(root_client, bank, day) -> None:
    text = (
        "reference,amount,currency,paid_at\n"
        "TRX-1,59.500,TND,2026-12-02T11:00:00+01:00\n"
        "TRX 2,20.000,TND,2026-12-02T11:00:00+01:00\n"  # 3: a space in the reference
        "TRX-3,7.2505,TND,2026-12-02T11:00:00+01:00\n"  # 4: four decimals
        "TRX-5,-1,EUR,2026-12-02 11:00\n"  # 5: negative, another currency, no offset
        "TRX-1,59.500,TND,2026-12-02T11:00:00+01:00\n"  # 6: TRX-1 again
        "TRX-6,1.000,TND\n"  # 7: a field short
        "TRX-7,1e3,TND,2026-12-02T11:00:00+01:00\n"  # 8: exponent
    )
    response = _upload(root_client, bank, _file(text))
    assert response.status_code == 200
    shown = [str(e) for e in response.context["errors_shown"]]
    html = response.content.decode()
    for line in (3, 4, 5, 6, 7, 8):
        assert any(e.startswith(f"Ligne {line} :") for e in shown), (line, shown)
        assert f"Ligne {line} :" in html
    assert sum(e.startswith("Ligne 5 :") for e in shown) == 3  # amount, currency and date, all of them
    assert not any(e.startswith("Ligne 2 :") for e in shown)
    assert any("déjà à la ligne 2" in e for e in shown)
    assert SettlementImport.objects.count() == 0 and SettlementLine.objects.count() == 0


def test_the_same_file_twice_is_refused_clearly(root_client, bank, day) -> None:
    assert _upload(root_client, bank, _file(BANK_FILE)).status_code == 302
    again = _upload(root_client, bank, _file(BANK_FILE, name="renamed.csv"))
    assert again.status_code == 200
    assert "déjà été importé" in str(again.context["errors_shown"][0])
    assert SettlementImport.objects.count() == 1


def test_the_database_keeps_one_import_per_file_and_provider(bank, day, superuser) -> None:
    imported = settlement_import(provider=bank, file=_file(BANK_FILE), user=superuser)
    fields = {f.name: getattr(imported, f.name) for f in SettlementImport._meta.concrete_fields if f.name != "id"}
    with pytest.raises(IntegrityError), transaction.atomic():
        SettlementImport.objects.create(**fields)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "vide"),
        (b"reference,amount\xff,currency,paid_at\nTRX-1", "Ligne 1 : ce n’est pas du texte UTF-8"),
        (b'reference,amount,currency,paid_at\nTRX-1,"59.500,TND,2026-12-02T11:00:00+01:00\n', "Ligne 2 :"),
        (b"ref,amount,currency,when\nTRX-1,59.500,TND,2026-12-02T11:00:00+01:00\n", "Ligne 1 :"),
        (b"TRX-1,59.500,TND,2026-12-02T11:00:00+01:00\nTRX-2\x00,1,TND,x\n", "Ligne 2 :"),
    ],
)
def test_a_file_that_is_not_a_settlement_is_refused_with_its_line(bank, superuser, content, message) -> None:
    with pytest.raises(SettlementRefused) as refused:
        settlement_import(provider=bank, file=SimpleUploadedFile("x.csv", content), user=superuser)
    assert any(message in str(e) for e in refused.value.errors), [str(e) for e in refused.value.errors]
    assert not SettlementImport.objects.exists()


def test_a_file_over_the_line_limit_is_refused_in_one_sentence(root_client, bank, settings) -> None:
    settings.SELFCARE_SETTLEMENT_MAX_LINES = 3
    rows = "".join(f"TRX-{n},1.000,TND,2026-12-02T11:00:00+01:00\n" for n in range(4))
    response = _upload(root_client, bank, _file("reference,amount,currency,paid_at\n" + rows))
    assert response.status_code == 200
    assert [str(e) for e in response.context["errors_shown"]] == [
        "Le fichier a plus de 3 lignes : découpez-le par jour."
    ]
    assert not SettlementImport.objects.exists()
    # Three lines and the header are fine.
    settlement_import(
        provider=bank, file=_file("reference,amount,currency,paid_at\n" + rows[: rows.rindex("TRX-3")]),
        user=response.wsgi_request.user,
    )  # fmt: skip


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(bank, superuser, settings) -> None:
    settings.SELFCARE_SETTLEMENT_MAX_BYTES = 1024
    rows = "".join(f"TRX-{n},1.000,TND,2026-12-02T11:00:00+01:00\n" for n in range(100))
    with pytest.raises(SettlementRefused) as refused:
        settlement_import(provider=bank, file=_file(rows), user=superuser)
    assert refused.value.code == "file_too_large"
    assert "1 ko" in str(refused.value.errors[0])


def test_a_period_of_more_than_a_month_is_refused(bank, superuser) -> None:
    text = "TRX-1,1.000,TND,2026-10-01T11:00:00+01:00\nTRX-2,1.000,TND,2026-12-02T11:00:00+01:00\n"
    with pytest.raises(SettlementRefused) as refused:
        settlement_import(provider=bank, file=_file(text), user=superuser)
    assert "31" in str(refused.value.errors[0])


def test_a_line_outside_the_period_given_is_refused(bank, superuser) -> None:
    text = "TRX-1,1.000,TND,2026-12-03T11:00:00+01:00\n"
    with pytest.raises(SettlementRefused) as refused:
        settlement_import(
            provider=bank, file=_file(text), user=superuser,
            period_start=dt.date(2026, 12, 2), period_end=dt.date(2026, 12, 2),
        )  # fmt: skip
    assert refused.value.errors[0].line == 1


# --- Who imports what ----------------------------------------------------------------


@pytest.fixture
def counter_day(clerk, subscriber) -> Payment:
    """A cash payment at Alice's agency counter."""
    account = ServiceAccountFactory(subscriber=subscriber)
    BillFactory(account=account)
    return counter_payment_record(clerk=clerk, account=account, amount=Decimal("59.500"), method="cash").payment


def _counter_file(payment: Payment) -> SimpleUploadedFile:
    return _file(f"{payment.reference},59.500,TND,{payment.paid_at.isoformat()}\n", name="caisse.csv")


def test_a_supervisor_imports_their_counters_file_only(supervisor, password, settings, counter_day, bank) -> None:
    other = counter_payment_record(
        clerk=_superuser_like(), account=ServiceAccountFactory(subscriber=SubscriberFactory()), amount=Decimal("1"),
        method="cash",
    ).payment  # fmt: skip
    client = staff_signed_in(supervisor, password, settings)
    page = client.get(ADD)
    offered = set(page.context["form"].fields["provider"].queryset)
    assert offered == {counter_day.provider}  # not the bank's, not another agency's counter
    # Another agency's counter or a bank sent by hand: refused, nothing imported.
    for provider in (other.provider, bank):
        response = _upload(client, provider, _counter_file(counter_day))
        assert response.status_code == 200 and response.context["form"].errors["provider"]
    response = _upload(client, counter_day.provider, _counter_file(counter_day))
    assert response.status_code == 302
    imported = SettlementImport.objects.get()
    assert imported.matched_count == 1
    # In the audit trail, in the agency's scope, naming the supervisor.
    entry = LogEntry.objects.get_for_object(imported).get(action=LogEntry.Action.CREATE)
    assert entry.actor == supervisor
    assert entry.additional_data == {"agency_id": supervisor.agencies.get().pk}
    assert client.get(reverse("admin:auditlog_logentry_change", args=[entry.pk])).status_code == 200


def _superuser_like():
    from accounts.tests.factories import UserFactory

    return UserFactory(email="head@example.com", is_staff=True, is_superuser=True)


def test_another_agency_sees_nothing_of_the_import(client, supervisor, other_agency_clerk, counter_day) -> None:
    imported = settlement_import(provider=counter_day.provider, file=_counter_file(counter_day), user=supervisor)
    other_agency_clerk.user_permissions.set(Permission.objects.filter(content_type__app_label="payments"))
    client.force_login(other_agency_clerk)
    assert imported not in client.get(reverse("admin:payments_settlementimport_changelist")).context["cl"].result_list
    assert client.get(reverse("admin:payments_settlementimport_change", args=[imported.pk])).status_code == 404
    line = imported.lines.get()
    assert client.get(reverse("admin:payments_settlementline_change", args=[line.pk])).status_code == 404
    # Even holding the bank permission, agency staff import no bank's file (it names every agency's payments).
    with pytest.raises(SettlementRefused) as refused:
        settlement_import(provider=counter_day.provider, file=_file(BANK_FILE), user=other_agency_clerk)
    assert refused.value.code == "not_allowed"


def test_bank_files_need_the_permission_and_every_agency(bank, day, auditor, supervisor) -> None:
    for user in (auditor, supervisor):
        with pytest.raises(SettlementRefused):
            settlement_import(provider=bank, file=_file(BANK_FILE), user=user)
    # A superuser grants an auditor of the finance team the bank files.
    auditor.user_permissions.add(Permission.objects.get(codename="import_provider_settlement"))
    auditor = type(auditor).objects.get(pk=auditor.pk)  # permissions are cached per user object
    assert settlement_import(provider=bank, file=_file(BANK_FILE), user=auditor).matched_count == 1


def test_supervisors_see_no_bank_imports_and_the_auditor_sees_all_but_imports_nothing(
    client, bank, day, superuser, supervisor, auditor, counter_day
) -> None:
    bank_import = settlement_import(provider=bank, file=_file(BANK_FILE), user=superuser)
    counter_import = settlement_import(provider=counter_day.provider, file=_counter_file(counter_day), user=supervisor)
    changelist = reverse("admin:payments_settlementimport_changelist")
    client.force_login(supervisor)
    assert set(client.get(changelist).context["cl"].result_list) == {counter_import}
    assert client.get(reverse("admin:payments_settlementimport_change", args=[bank_import.pk])).status_code == 404
    client.force_login(auditor)
    assert set(client.get(changelist).context["cl"].result_list) == {bank_import, counter_import}
    assert client.get(reverse("admin:payments_settlementimport_change", args=[bank_import.pk])).status_code == 200
    assert client.get(ADD).status_code == 403


def test_a_clerk_sees_no_settlement_page(client, clerk) -> None:
    client.force_login(clerk)
    assert client.get(reverse("admin:payments_settlementimport_changelist")).status_code == 403
    assert client.get(ADD).status_code == 403


def test_an_import_cannot_be_edited_or_deleted(client, superuser, bank, day) -> None:
    imported = settlement_import(provider=bank, file=_file(BANK_FILE), user=superuser)
    client.force_login(superuser)
    assert client.post(reverse("admin:payments_settlementimport_delete", args=[imported.pk])).status_code == 403
    line = imported.lines.first()
    assert client.post(reverse("admin:payments_settlementline_delete", args=[line.pk])).status_code == 403
    assert client.get(reverse("admin:payments_settlementline_add")).status_code == 403


def test_a_long_file_shows_its_first_lines_and_links_to_all(client, superuser, bank, day, monkeypatch) -> None:
    from payments import admin as payments_admin

    monkeypatch.setattr(payments_admin, "INLINE_LINES_SHOWN", 2)
    imported = settlement_import(provider=bank, file=_file(BANK_FILE), user=superuser)
    client.force_login(superuser)
    page = client.get(reverse("admin:payments_settlementimport_change", args=[imported.pk]))
    inline = page.context["inline_admin_formsets"][0]
    assert len(list(inline)) == 2
    assert "les 2 premières lignes seulement" in page.content.decode()
