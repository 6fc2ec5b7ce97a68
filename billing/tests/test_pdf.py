"""Bill PDFs: what they say in each language, who may download them, the e-mail
that carries one, and the clerk's batch of paper copies.

Drawing a PDF costs a few hundred milliseconds: each test draws only what it
checks, and the text is read back with pypdf (what a reader's copy-paste gets).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from PIL import Image
from pypdf import PdfReader

from accounts.models import Agency, AgencyHours, ChannelKind, ContactChannel, Subscriber
from accounts.tests.factories import SubscriberFactory
from billing import pdf, printing
from billing.messages import bill_announce
from billing.models import Bill, Consumption, PlanLevy, PrintRequest, Unit
from billing.runs import usage_for_billing
from billing.services import bill_issue
from core.dates import month_add
from core.money import format_money
from notifications import relay
from notifications.models import Message

from .factories import BillFactory, ConsumptionFactory, PlanFactory, ServiceAccountFactory

pytestmark = pytest.mark.django_db

PERIOD = dt.date(2026, 9, 1)
# Labels each language's bill must show (the catalogue's translations of "Account number").
ACCOUNT_LABEL = {"ar": "رقم الحساب", "fr": "Numéro de compte", "en": "Account number"}


def _plain(text: str) -> str:
    """Text as compared: no bidi marks, every kind of space one plain space."""
    text = re.sub("[\u200e\u200f\u061c\u2066-\u2069]", "", text)
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def pdf_pages(content: bytes) -> list[str]:
    assert content.startswith(b"%PDF-")
    return [_plain(page.extract_text()) for page in PdfReader(io.BytesIO(content)).pages]


def pdf_fonts(content: bytes) -> set[str]:
    """The fonts embedded in the PDF, without their subset prefix (ABCDEF+)."""
    names = set()
    for page in PdfReader(io.BytesIO(content)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]).split("+")[-1])
    return names


def _issued_bill(subscriber: Subscriber, *, months: int = 12) -> Bill:
    """An electricity bill issued by the billing service from a year of readings."""
    agency = subscriber.agency
    for weekday in range(1, 6):
        AgencyHours.objects.create(agency=agency, weekday=weekday, opens=dt.time(8), closes=dt.time(12))
        AgencyHours.objects.create(agency=agency, weekday=weekday, opens=dt.time(14), closes=dt.time(17))
    AgencyHours.objects.create(agency=agency, weekday=6, opens=dt.time(8), closes=dt.time(12))
    account = ServiceAccountFactory(subscriber=subscriber, service_address="12 avenue Habib Bourguiba\n1000 Tunis")
    for i in range(months):
        period = dt.date(PERIOD.year - (1 if PERIOD.month - i <= 0 else 0), (PERIOD.month - i - 1) % 12 + 1, 1)
        Consumption.objects.create(
            account=account, period=period, unit=Unit.KWH, quantity=Decimal(150 + 10 * i), meter_index=5000 - 10 * i
        )
    return bill_issue(account=account, period=PERIOD, issue_date=dt.date(2026, 10, 2))


@pytest.fixture
def alice_bill(subscriber: Subscriber) -> Bill:
    return _issued_bill(subscriber)


# --- What the PDF says ------------------------------------------------------------


def test_the_pdf_names_each_line_and_says_why_a_bill_is_estimated_or_corrects_estimates(subscriber) -> None:
    # The bill page's notes and line names, on paper too: a levy by its own name,
    # a tranche with its tier, the estimate and the correction explained.
    plan = PlanFactory()  # tranches 0-50, 50-100, above 100 kWh
    PlanLevy.objects.create(
        plan=plan, position=1, name_ar="إتاوة بلدية", name_fr="Redevance municipale", name_en="Municipal levy",
        amount=Decimal("0.500"),
    )  # fmt: skip
    account = ServiceAccountFactory(subscriber=subscriber, plan=plan, opened_on=dt.date(2020, 1, 1))
    issue = timezone.localdate()
    period = month_add(issue, -1)
    for months_ago, quantity, index in ((3, "100", "9900"), (2, "110", "10010")):
        ConsumptionFactory(
            account=account, period=month_add(period, -months_ago), quantity=Decimal(quantity), meter_index=Decimal(index)
        )  # fmt: skip

    def issue_for(month: dt.date) -> Bill:
        usage, estimated = usage_for_billing(account=account, period=month)
        return bill_issue(account=account, period=month, issue_date=issue, usage=usage, estimated=estimated)

    estimated = issue_for(month_add(period, -1))  # not read: estimated
    ConsumptionFactory(account=account, period=period, quantity=Decimal("130"), meter_index=Decimal("10400"))
    corrected = issue_for(period)  # read again: corrects the estimate
    assert estimated.is_estimated and corrected.lines.filter(kind="estimate_fix").exists()

    with translation.override("fr"):
        [estimated_page] = pdf_pages(pdf.bill_pdf(bill=estimated, language="fr"))
        [corrected_page] = pdf_pages(pdf.bill_pdf(bill=corrected, language="fr"))
    assert "Facture estimée" in estimated_page
    assert "Votre compteur a été relevé à nouveau" not in estimated_page
    assert "Votre compteur a été relevé à nouveau" in corrected_page
    for page in (estimated_page, corrected_page):
        assert "Redevance municipale" in page
        assert "Consommation — tranche 1" in page
    [english_page] = pdf_pages(pdf.bill_pdf(bill=corrected, language="en"))
    assert "Municipal levy" in english_page and "Consumption — tier 2" in english_page


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
def test_the_bill_pdf_shows_the_account_number_and_the_total_in_each_language(alice_bill: Bill, language) -> None:
    content = pdf.bill_pdf(bill=alice_bill, language=language)

    [page] = pdf_pages(content)  # one page
    account = alice_bill.account
    assert account.display_number in page  # 3-3-4, left to right in Arabic too
    assert ACCOUNT_LABEL[language] in page
    total = _plain(format_money(alice_bill.amount_total, alice_bill.currency, language))
    if language == "ar":
        # Extraction reorders an Arabic amount's figure and symbol; each is there, in the Arabic format.
        figure, symbol = total.split(" ")
        assert figure == "20,825" and figure in page and symbol.strip(".") in page
    else:
        assert total in page  # "89,233 DT" in French, "DT 89.233" in English
    assert alice_bill.number in page
    assert "Alice Ben Salah" in page
    # Only the shipped fonts (named by our @font-face rules), whatever the machine
    # has; the Arabic face for the Arabic bill.
    fonts = pdf_fonts(content)
    assert fonts <= {"Selfcare-Sans", "Selfcare-Sans-Bold", "Selfcare-Arabic", "Selfcare-Arabic-Bold"}
    assert ("Selfcare-Arabic" in fonts) == (language == "ar")


def test_the_arabic_bill_names_the_customer_in_arabic_script_when_we_have_it(alice_bill: Bill) -> None:
    subscriber = alice_bill.account.subscriber
    subscriber.full_name_ar = "أليس بن صالح"
    subscriber.save()
    bill = Bill.objects.select_related("account__plan", "account__subscriber").get(pk=alice_bill.pk)
    [arabic, french] = pdf.bill_documents(bills=[(bill, "ar"), (bill, "fr")])
    assert arabic.customer_name == "أليس بن صالح"
    assert french.customer_name == "Alice Ben Salah"
    # And drawn: the Arabic face carries the name (extraction reorders Arabic letters).
    assert "Alice Ben Salah" not in pdf_pages(pdf.bill_pdf(bill=bill, language="ar"))[0]


def _x_of(content: bytes, needle: str) -> float:
    """Where (x, in PDF points from the left edge) the first text run holding `needle` starts."""
    found: list[float] = []

    def visit(text: str, cm, tm, font_dict, font_size) -> None:  # type: ignore[no-untyped-def]
        if needle in _plain(text) and not found:
            found.append(tm[4] * cm[0] + cm[4])

    PdfReader(io.BytesIO(content)).pages[0].extract_text(visitor_text=visit)
    assert found, needle
    return found[0]


def test_the_arabic_bill_reads_right_to_left_and_the_french_one_left_to_right(alice_bill: Bill) -> None:
    number = alice_bill.account.display_number
    arabic, french = (pdf.bill_pdf(bill=alice_bill, language=language) for language in ("ar", "fr"))
    # The label stands before its value in reading order: on its right in Arabic.
    assert _x_of(arabic, ACCOUNT_LABEL["ar"]) > _x_of(arabic, number)
    assert _x_of(french, ACCOUNT_LABEL["fr"]) < _x_of(french, number)


def test_a_paid_bill_says_so_and_its_qr_code_carries_the_payment_reference(alice_bill: Bill, settings) -> None:
    settings.SITE_URL = "https://selfcare.example/"
    Bill.objects.filter(pk=alice_bill.pk).update(
        amount_paid=alice_bill.amount_total, amount_due=0, status=Bill.Status.PAID
    )
    alice_bill.refresh_from_db()
    assert (
        pdf.payment_payload(bill=alice_bill)
        == f"https://selfcare.example/b/{alice_bill.number}?amount=0.000&currency=TND"
    )

    [page] = pdf_pages(pdf.bill_pdf(bill=alice_bill, language="fr"))

    assert "Rien à payer : cette facture est réglée." in page


def test_the_operators_logo_replaces_its_name(alice_bill: Bill, settings, tmp_path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 40), "#0b5cab").save(logo)
    settings.SELFCARE_OPERATOR_NAME = "STEG"
    settings.SELFCARE_OPERATOR_LOGO = str(logo)
    pdf._logo_uri.cache_clear()
    try:
        content = pdf.bill_pdf(bill=alice_bill, language="fr")
    finally:
        pdf._logo_uri.cache_clear()

    [page] = PdfReader(io.BytesIO(content)).pages
    assert len(page.images) == 1
    assert "STEG" not in page.extract_text()


def test_a_language_we_do_not_speak_is_refused(alice_bill: Bill) -> None:
    with pytest.raises(pdf.PdfLanguageError):
        pdf.bill_pdf(bill=alice_bill, language="de")


# --- The subscriber's download -------------------------------------------------------


def _pdf_url(bill: Bill, language: str = "fr") -> str:
    with translation.override(language):
        return reverse("billing:bill_pdf", args=[bill.number])


def test_alice_downloads_her_bill_in_the_pages_language(client: Client, alice_bill: Bill) -> None:
    client.force_login(alice_bill.account.subscriber.user)

    response = client.get(_pdf_url(alice_bill, "ar"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="bill-{alice_bill.number}.pdf"'
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    [page] = pdf_pages(response.content)
    assert ACCOUNT_LABEL["ar"] in page and alice_bill.account.display_number in page


def test_the_bill_page_links_its_pdf(client: Client, alice_bill: Bill) -> None:
    client.force_login(alice_bill.account.subscriber.user)
    with translation.override("fr"):
        page = client.get(reverse("billing:bill_detail", args=[alice_bill.number])).content.decode()
    assert f'href="{_pdf_url(alice_bill)}"' in page


def test_nobody_else_downloads_alices_bill(client: Client, other_subscriber, clerk) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=clerk.agencies.get().subscribers.get()))
    url = _pdf_url(bill)
    # Anonymous: to the login page.
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))
    # Bob: as if there were no such bill.
    client.force_login(other_subscriber.user)
    assert client.get(url).status_code == 404
    # Staff (no subscriber profile): back to the back office (issue 10), no PDF.
    client.force_login(clerk)
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].endswith("/admin/")
    client.force_login(other_subscriber.user)
    assert client.get(url.replace(bill.number, bill.number[:-1] + "0")).status_code == 404


def test_downloads_are_limited_per_hour(client: Client, settings, subscriber) -> None:
    settings.SELFCARE_BILL_PDFS_PER_HOUR = 2
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    client.force_login(subscriber.user)

    statuses = [client.get(_pdf_url(bill)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    page = client.get(_pdf_url(bill))
    assert page["Content-Type"].startswith("text/html")
    assert "Vous avez téléchargé beaucoup de PDF" in page.content.decode()


def test_a_changed_bill_is_never_served_from_the_pdf_cache(client: Client, monkeypatch, subscriber) -> None:
    bill = BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    drawn = []
    draw = pdf.documents_pdf
    monkeypatch.setattr(pdf, "documents_pdf", lambda documents: drawn.append(1) or draw(documents))
    client.force_login(subscriber.user)

    first = pdf_pages(client.get(_pdf_url(bill)).content)[0]
    again = pdf_pages(client.get(_pdf_url(bill)).content)[0]
    # A payment written with a queryset update (no signal, no save): the next download shows it.
    Bill.objects.filter(pk=bill.pk).update(amount_paid=Decimal("9.500"), amount_due=Decimal("50.000"))
    after_payment = pdf_pages(client.get(_pdf_url(bill)).content)[0]
    # The agency renamed: every bill of its subscribers shows the new name.
    Agency.objects.filter(pk=subscriber.agency_id).update(name_fr="Agence Lac 2")
    after_rename = pdf_pages(client.get(_pdf_url(bill)).content)[0]

    assert len(drawn) == 3  # the second download was the first's PDF
    assert first == again
    assert "Montant dû 59,500 DT" in first
    assert "Déjà payé 9,500 DT" in after_payment and "Montant dû 50,000 DT" in after_payment
    assert "Agence Lac 2" in after_rename


# --- The e-mail channel --------------------------------------------------------------


def test_the_bill_email_carries_the_pdf_in_the_channels_language(subscriber: Subscriber) -> None:
    ContactChannel.objects.create(
        subscriber=subscriber, kind=ChannelKind.EMAIL, address="alice@example.com", language="ar",
        verified_at=timezone.now(),
    )  # fmt: skip
    bill = _issued_bill(subscriber, months=2)  # issuing announces it
    message = Message.objects.get(subscriber=subscriber, channel_kind=ChannelKind.EMAIL)

    assert relay.messages_send(relay.outbox_claim(limit=10))["sent"] == 1

    [email] = mail.outbox
    [(filename, content, mimetype)] = email.attachments
    assert (filename, mimetype) == (f"bill-{bill.number}.pdf", "application/pdf")
    [page] = pdf_pages(content)
    assert ACCOUNT_LABEL["ar"] in page and bill.account.display_number in page
    # The outbox row keeps its text, not the file.
    message.refresh_from_db()
    assert message.status == Message.Status.SENT and "%PDF" not in message.body and len(message.body) < 1000


def test_an_email_whose_pdf_cannot_be_drawn_is_retried_later(monkeypatch, subscriber: Subscriber) -> None:
    ContactChannel.objects.create(
        subscriber=subscriber, kind=ChannelKind.EMAIL, address="alice@example.com", language="fr",
        verified_at=timezone.now(),
    )  # fmt: skip
    BillFactory(account=ServiceAccountFactory(subscriber=subscriber))
    bill_announce(bill=Bill.objects.get())

    def broken(documents):  # type: ignore[no-untyped-def]
        raise RuntimeError("no fonts")

    monkeypatch.setattr(pdf, "documents_pdf", broken)
    counts = relay.messages_send(relay.outbox_claim(limit=10))

    assert counts["retry"] == 1 and counts["sent"] == 0
    assert not mail.outbox
    message = Message.objects.get()
    assert message.status == Message.Status.PENDING and "no fonts" in message.last_error


def test_a_relay_busy_drawing_pdfs_hands_the_rest_of_its_batch_back(settings, subscriber: Subscriber) -> None:
    # Half the stale window is the drawing budget: 0 here, so one PDF per batch.
    settings.SELFCARE_OUTBOX_STALE_SECONDS = 0
    ContactChannel.objects.create(
        subscriber=subscriber, kind=ChannelKind.EMAIL, address="alice@example.com", language="fr",
        verified_at=timezone.now(),
    )  # fmt: skip
    account = ServiceAccountFactory(subscriber=subscriber)
    for period in (dt.date(2026, 8, 1), PERIOD):
        bill_announce(bill=BillFactory(account=account, period=period))

    first = relay.messages_send(relay.outbox_claim(limit=10))

    assert (first["sent"], first["skipped"]) == (1, 1)
    waiting = Message.objects.get(status=Message.Status.PENDING)
    assert waiting.attempts == 0 and waiting.claimed_at is None  # as it was: not an attempt
    assert relay.messages_send(relay.outbox_claim(limit=10))["sent"] == 1
    assert len(mail.outbox) == 2 and all(len(email.attachments) == 1 for email in mail.outbox)


# --- The clerk's batch of paper copies -----------------------------------------------


@pytest.fixture
def paper_requests(subscriber: Subscriber, other_subscriber: Subscriber) -> dict[str, PrintRequest]:
    """Alice (Arabic) and Carla (French) of the clerk's agency asked for September's
    paper copy, Alice also for August's; Bob, of another agency, for September's."""
    Subscriber.objects.filter(pk=subscriber.pk).update(preferred_language="ar")
    carla = SubscriberFactory(agency=subscriber.agency, full_name="Carla Haddad", preferred_language="fr")
    requests = {}
    for name, owner, period in [
        ("alice", subscriber, PERIOD),
        ("carla", carla, PERIOD),
        ("alice_august", subscriber, dt.date(2026, 8, 1)),
        ("bob", other_subscriber, PERIOD),
    ]:
        bill = BillFactory(account=ServiceAccountFactory(subscriber=owner), period=period)
        requests[name] = PrintRequest.objects.create(bill=bill, agency=owner.agency, requested_by=owner.user)
    return requests


def test_a_clerk_prints_the_copies_of_her_agency_for_a_period_as_one_pdf(client: Client, clerk, paper_requests) -> None:
    client.force_login(clerk)
    page = client.get(reverse("admin:billing_printrequest_print"))
    assert page.status_code == 200
    batches = {(b.agency.pk, b.period, b.count) for b in page.context["batches"]}
    agency = paper_requests["alice"].agency
    assert batches == {(agency.pk, PERIOD, 2), (agency.pk, dt.date(2026, 8, 1), 1)}  # nothing of Bob's agency

    response = client.post(reverse("admin:billing_printrequest_print"), {"agency": agency.pk, "period": "2026-09"})

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="paper-copies-{agency.code}-2026-09.pdf"'
    pages = pdf_pages(response.content)
    assert len(pages) == 2  # one bill a page, by customer name
    alice, carla = (paper_requests[name].bill.account.display_number for name in ("alice", "carla"))
    assert alice in pages[0] and ACCOUNT_LABEL["ar"] in pages[0]
    assert carla in pages[1] and ACCOUNT_LABEL["fr"] in pages[1]
    for other in ("alice_august", "bob"):
        assert not any(paper_requests[other].bill.account.display_number in p for p in pages)
    # Marked printed through the service, and audited.
    printed = PrintRequest.objects.filter(status=PrintRequest.Status.PRINTED)
    assert set(printed.values_list("pk", flat=True)) == {paper_requests["alice"].pk, paper_requests["carla"].pk}
    assert set(printed.values_list("printed_by", flat=True)) == {clerk.pk}
    entries = LogEntry.objects.filter(additional_data__admin_action="print_batch", actor=clerk)
    assert set(entries.values_list("object_id", flat=True)) == {paper_requests["alice"].pk, paper_requests["carla"].pk}

    # Printing the same batch again: nothing left, said so.
    again = client.post(reverse("admin:billing_printrequest_print"), {"agency": agency.pk, "period": "2026-09"})
    assert again.status_code == 302
    assert "Aucune copie papier" in client.get(again["Location"]).content.decode()


def test_the_copies_list_links_the_print_page_for_those_who_may_print(client: Client, clerk, auditor) -> None:
    link = f'href="{reverse("admin:billing_printrequest_print")}"'
    client.force_login(clerk)
    assert link in client.get(reverse("admin:billing_printrequest_changelist")).content.decode()
    # The auditor reads the list, and may neither open the print page nor print.
    client.force_login(auditor)
    assert link not in client.get(reverse("admin:billing_printrequest_changelist")).content.decode()
    assert client.get(reverse("admin:billing_printrequest_print")).status_code == 403


def test_a_clerk_cannot_print_another_agencys_copies(client: Client, other_agency_clerk, paper_requests) -> None:
    client.force_login(other_agency_clerk)
    agency = paper_requests["alice"].agency

    response = client.post(reverse("admin:billing_printrequest_print"), {"agency": agency.pk, "period": "2026-09"})

    assert response.status_code == 302
    assert not PrintRequest.objects.filter(status=PrintRequest.Status.PRINTED).exists()
    assert client.get(reverse("admin:billing_printrequest_print")).context["batches"] == []


def test_a_batch_is_cut_at_the_batch_size_and_the_rest_waits(clerk, paper_requests) -> None:
    agency = paper_requests["alice"].agency

    batch = printing.paper_copies_print(agency=agency, period=PERIOD, printed_by=clerk, limit=1)

    assert (batch.count, batch.remaining) == (1, 1)
    assert len(pdf_pages(batch.pdf)) == 1
    assert batch.request_ids == (paper_requests["alice"].pk,)  # the oldest request first
