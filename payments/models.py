"""Payments: the providers that send money, the payments they send, where each
payment went, and the inbox of every signed request they made."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from billing.models import MONEY, Bill, ServiceAccount
from core.models import AuditScoped

KEY_ID_REGEX = r"^[A-Za-z0-9_.-]{1,64}$"
REFERENCE_REGEX = r"^[A-Za-z0-9_-]{1,64}$"


class Provider(models.Model):
    """A bank, a mobile-money operator or an agency counter that reports payments."""

    class Kind(models.TextChoices):
        BANK = "bank", _("Bank")
        MOBILE_MONEY = "mobile_money", _("Mobile money")
        COUNTER = "counter", _("Agency counter")

    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    key_id = models.CharField(_("key id"), max_length=64, unique=True, help_text=_("Sent as X-Provider-Key."))
    # AES-GCM ciphertexts (payments.crypto), never the secrets themselves. During a
    # rotation the previous secret keeps signing until staff end the rotation.
    secret_sealed = models.TextField(_("signing secret (encrypted)"), editable=False)
    previous_secret_sealed = models.TextField(_("previous signing secret (encrypted)"), blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    # An agency counter takes money for one agency, whose supervisors reconcile
    # it; banks and wallets serve every agency. One counter provider per agency,
    # created with its first counter payment (payments.counter).
    agency = models.ForeignKey(
        "accounts.Agency",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="counter_providers",
        verbose_name=_("agency"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment provider")
        verbose_name_plural = _("payment providers")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(key_id__regex=KEY_ID_REGEX), name="provider_key_id_format"),
            models.CheckConstraint(
                condition=Q(kind="counter", agency__isnull=False) | (~Q(kind="counter") & Q(agency__isnull=True)),
                name="provider_counter_has_an_agency",
            ),
            models.UniqueConstraint(fields=["agency"], name="provider_one_counter_per_agency"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_rotating(self) -> bool:
        return bool(self.previous_secret_sealed)


class Payment(AuditScoped, models.Model):
    """Money a provider reports as paid to an account: applied once per (provider, reference)."""

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    class Status(models.TextChoices):
        APPLIED = "applied", _("Applied")
        REVERSED = "reversed", _("Reversed")

    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="payments", verbose_name=_("provider")
    )
    # The provider's own transaction id: what its settlement file and support quote.
    reference = models.CharField(_("provider reference"), max_length=64)
    account = models.ForeignKey(
        ServiceAccount, on_delete=models.PROTECT, related_name="payments", verbose_name=_("account")
    )
    bill = models.ForeignKey(
        Bill,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("bill named by the provider"),
    )
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    # The part no open bill needed, added to the account's credit.
    credit = models.DecimalField(_("to credit"), default=0, **MONEY)
    paid_at = models.DateTimeField(_("paid at"))
    channel = models.CharField(_("channel"), max_length=32, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.APPLIED)
    receipt_number = models.CharField(_("receipt number"), max_length=20, unique=True)
    # SHA-256 of the request's canonical fields: the same reference with another
    # body is a conflict, not a replay.
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    # What the first request was answered, returned as is to a replay: kept as
    # text, since jsonb would reorder its keys.
    response = models.TextField(_("response"))
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    reversal_reason = models.CharField(_("reversal reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "reference"], name="payment_reference_unique_per_provider"),
            models.CheckConstraint(condition=Q(reference__regex=REFERENCE_REGEX), name="payment_reference_format"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(credit__gte=0, credit__lte=F("amount")), name="payment_credit_within_amount"
            ),
            models.CheckConstraint(
                condition=Q(status="applied", reversed_at__isnull=True)
                | Q(status="reversed", reversed_at__isnull=False),
                name="payment_reversed_has_a_date",
            ),
        ]
        indexes = [models.Index(fields=["account", "-created_at"], name="payment_account_idx")]

    def __str__(self) -> str:
        return f"{self.receipt_number} ({self.reference})"


class Allocation(AuditScoped, models.Model):
    """The part of a payment that went to one bill. Kept after a reversal, as history."""

    audit_scope = {"agency_id": "bill__account__subscriber__agency_id", "subscriber_id": "bill__account__subscriber_id"}

    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("payment")
    )
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="allocations", verbose_name=_("bill"))
    amount = models.DecimalField(_("amount"), **MONEY)

    class Meta:
        verbose_name = _("allocation")
        verbose_name_plural = _("allocations")
        ordering = ["payment", "id"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "bill"], name="allocation_one_per_payment_bill"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.payment.receipt_number} → {self.bill.number}"


class ApiInbox(models.Model):
    """One signed request of a provider, written before it is processed (its own
    transaction) and kept whatever happens, with its answer or its error."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="inbox", verbose_name=_("provider"))
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=2000)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.BinaryField(_("raw body"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RECEIVED)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.JSONField(_("response body"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("API request")
        verbose_name_plural = _("API requests (inbox)")
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["provider", "-received_at"], name="apiinbox_provider_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class PaymentOrder(AuditScoped, models.Model):
    """A subscriber's intent to pay, handed to a checkout provider (the sandbox bank,
    a wallet). Nothing is applied until the provider confirms: then `order_complete`
    applies a Payment under the order's reference, once, whoever asks first."""

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "subscriber_id"}

    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        PENDING = "pending", _("Waiting for the provider")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = (Status.CREATED, Status.PENDING)
    # Ended with nothing applied: a wallet may still complete one late, and then it is paid.
    ENDED_UNPAID_STATUSES = (Status.FAILED, Status.EXPIRED, Status.CANCELLED)

    subscriber = models.ForeignKey(
        "accounts.Subscriber", on_delete=models.PROTECT, related_name="payment_orders", verbose_name=_("subscriber")
    )
    account = models.ForeignKey(
        ServiceAccount, on_delete=models.PROTECT, related_name="payment_orders", verbose_name=_("account")
    )
    # The bills the subscriber chose (their numbers); empty when they typed an amount.
    bill_numbers = models.JSONField(_("bills"), default=list, blank=True)
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="orders", verbose_name=_("provider"))
    # Ours, sent to the provider as its order id and used as the Payment's reference.
    reference = models.CharField(_("reference"), max_length=64, unique=True)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.CREATED)
    # The provider's own id for the checkout (Konnect's paymentRef): what its
    # status API and settlement file quote.
    provider_ref = models.CharField(_("provider's reference"), max_length=128, null=True, blank=True)
    pay_url = models.URLField(_("checkout address"), max_length=1000, blank=True)
    expires_at = models.DateTimeField(_("expires at"))
    payment = models.OneToOneField(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order",
        verbose_name=_("payment"),
    )
    error = models.CharField(_("error"), max_length=200, blank=True)
    # When the provider was last asked about the order (a page view, a webhook, the
    # poller): the poller asks the least recently asked first and paces itself.
    checked_at = models.DateTimeField(_("last asked the provider"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment order")
        verbose_name_plural = _("payment orders")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(reference__regex=REFERENCE_REGEX), name="order_reference_format"),
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=Q(provider_ref__isnull=False),
                name="order_provider_ref_unique",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="order_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(payment__isnull=False), name="order_paid_has_a_payment"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "expires_at"], name="order_status_expiry_idx"),
            models.Index(fields=["account", "-created_at"], name="order_account_idx"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


# --- Agency counters ---------------------------------------------------------


class CounterPayment(AuditScoped, models.Model):
    """How a payment taken at an agency counter was made, and by whom.

    The money itself is the Payment (applied by `payment_apply` like any
    other); this row says cash, cheque or card, the cheque's or card's details,
    the cash handed over and the change given back, the clerk and the agency.
    Written once with its payment (payments.counter), never edited.
    """

    audit_scope = {"agency_id": "agency_id", "subscriber_id": "payment__account__subscriber_id"}

    class Method(models.TextChoices):
        CASH = "cash", _("Cash")
        CHEQUE = "cheque", _("Cheque")
        CARD = "card", _("Bank card")

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="counter", verbose_name=_("payment"))
    method = models.CharField(_("method"), max_length=8, choices=Method.choices)
    cheque_number = models.CharField(_("cheque number"), max_length=32, blank=True)
    cheque_bank = models.CharField(_("cheque's bank"), max_length=80, blank=True)
    card_last_digits = models.CharField(_("card's last four digits"), max_length=4, blank=True)
    card_authorisation = models.CharField(_("card authorisation code"), max_length=32, blank=True)
    # Cash only: what the customer handed over, and what went back to them.
    amount_tendered = models.DecimalField(_("amount tendered"), null=True, blank=True, **MONEY)
    change_given = models.DecimalField(_("change given"), null=True, blank=True, **MONEY)
    clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("clerk")
    )
    agency = models.ForeignKey(
        "accounts.Agency", on_delete=models.PROTECT, related_name="counter_payments", verbose_name=_("agency")
    )
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("counter payment")
        verbose_name_plural = _("counter payments")
        ordering = ["-created_at"]
        permissions = [("reverse_counterpayment", _("Can reverse a counter payment"))]
        constraints = [
            models.CheckConstraint(condition=Q(method__in=["cash", "cheque", "card"]), name="counter_method_known"),
            models.CheckConstraint(
                condition=(Q(method="cheque") & ~Q(cheque_number="") & ~Q(cheque_bank=""))
                | (~Q(method="cheque") & Q(cheque_number="", cheque_bank="")),
                name="counter_cheque_has_number_and_bank",
            ),
            models.CheckConstraint(
                condition=Q(method="card") | Q(card_last_digits="", card_authorisation=""),
                name="counter_card_details_for_cards_only",
            ),
            models.CheckConstraint(
                condition=Q(card_last_digits="") | Q(card_last_digits__regex=r"^[0-9]{4}$"),
                name="counter_card_last_four_digits",
            ),
            # Cash: both figures, the change less than what was handed over (the
            # rest paid the payment); anything else: neither.
            models.CheckConstraint(
                condition=(
                    Q(method="cash", amount_tendered__isnull=False, change_given__gte=0)
                    & Q(amount_tendered__gt=F("change_given"))
                )
                | (~Q(method="cash") & Q(amount_tendered__isnull=True, change_given__isnull=True)),
                name="counter_cash_tendered_and_change",
            ),
        ]
        indexes = [models.Index(fields=["agency", "-created_at"], name="counter_agency_idx")]

    def __str__(self) -> str:
        return self.payment.receipt_number if self.payment_id else "—"


# --- Settlement files ----------------------------------------------------------


class SettlementImport(AuditScoped, models.Model):
    """One provider's settlement file compared with our payments, and the result,
    kept (payments.settlement). The same file is never imported twice."""

    audit_scope = {"agency_id": "provider__agency_id"}

    provider = models.ForeignKey(
        Provider, on_delete=models.PROTECT, related_name="settlement_imports", verbose_name=_("provider")
    )
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("uploaded by")
    )
    uploaded_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    # The days (operator's time zone) the file covers: our payments of these days
    # that the file does not list are "missing on their side".
    period_start = models.DateField(_("first day covered"))
    period_end = models.DateField(_("last day covered"))
    currency = models.CharField(_("currency"), max_length=3)
    lines_count = models.PositiveIntegerField(_("lines in the file"))
    matched_count = models.PositiveIntegerField(_("matched"))
    matched_total = models.DecimalField(_("matched, total"), **MONEY)
    missing_ours_count = models.PositiveIntegerField(_("missing on our side"))
    missing_ours_total = models.DecimalField(_("missing on our side, total"), **MONEY)
    missing_theirs_count = models.PositiveIntegerField(_("missing on their side"))
    missing_theirs_total = models.DecimalField(_("missing on their side, total"), **MONEY)
    mismatch_count = models.PositiveIntegerField(_("amount mismatches"))
    mismatch_total = models.DecimalField(_("amount mismatches, total in the file"), **MONEY)

    class Meta:
        verbose_name = _("settlement import")
        verbose_name_plural = _("settlement imports")
        ordering = ["-uploaded_at"]
        permissions = [("import_provider_settlement", _("Can import bank and wallet settlement files"))]
        constraints = [
            models.UniqueConstraint(fields=["provider", "sha256"], name="settlement_file_once_per_provider"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="settlement_sha256_hex"),
            models.CheckConstraint(condition=Q(period_start__lte=F("period_end")), name="settlement_period_ordered"),
            models.CheckConstraint(
                condition=Q(lines_count=F("matched_count") + F("missing_ours_count") + F("mismatch_count")),
                name="settlement_every_line_has_an_outcome",
            ),
            models.CheckConstraint(
                condition=Q(matched_total__gte=0, missing_ours_total__gte=0, missing_theirs_total__gte=0)
                & Q(mismatch_total__gte=0),
                name="settlement_totals_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["provider", "-uploaded_at"], name="settlement_provider_idx")]

    def __str__(self) -> str:
        return f"{self.provider} · {self.file_name}"


class SettlementLine(models.Model):
    """A line of a settlement file and what we found for it, or one of our
    payments the file should have listed and did not (`missing_theirs`, no line)."""

    class Outcome(models.TextChoices):
        MATCHED = "matched", _("Matched")
        MISSING_OURS = "missing_ours", _("Missing on our side")
        MISSING_THEIRS = "missing_theirs", _("Missing on their side")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amount mismatch")

    settlement_import = models.ForeignKey(
        SettlementImport, on_delete=models.CASCADE, related_name="lines", verbose_name=_("settlement import")
    )
    line_number = models.PositiveIntegerField(_("line"), null=True, blank=True)
    reference = models.CharField(_("provider reference"), max_length=64)
    # As the file says; empty for our payments the file does not list.
    amount = models.DecimalField(_("amount in the file"), null=True, blank=True, **MONEY)
    currency = models.CharField(_("currency"), max_length=3)
    paid_at = models.DateTimeField(_("paid at (file)"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    payment = models.ForeignKey(
        Payment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="settlement_lines",
        verbose_name=_("our payment"),
    )

    class Meta:
        verbose_name = _("settlement line")
        verbose_name_plural = _("settlement lines")
        ordering = ["settlement_import", "line_number", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["settlement_import", "reference"], name="settlement_line_reference_once"),
            models.UniqueConstraint(
                fields=["settlement_import", "line_number"],
                condition=Q(line_number__isnull=False),
                name="settlement_line_number_once",
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=["matched", "missing_ours", "missing_theirs", "amount_mismatch"]),
                name="settlement_line_outcome_known",
            ),
            # In the file: a line, its amount and date. Ours only: a payment and nothing of the file.
            models.CheckConstraint(
                condition=(
                    Q(outcome="missing_theirs", line_number__isnull=True, amount__isnull=True, paid_at__isnull=True)
                    & Q(payment__isnull=False)
                )
                | (
                    ~Q(outcome="missing_theirs")
                    & Q(line_number__isnull=False, amount__isnull=False, paid_at__isnull=False)
                ),
                name="settlement_line_shape",
            ),
            models.CheckConstraint(
                condition=Q(outcome="missing_ours", payment__isnull=True)
                | (~Q(outcome="missing_ours") & Q(payment__isnull=False)),
                name="settlement_line_payment_unless_missing_ours",
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gt=0), name="settlement_line_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.reference
