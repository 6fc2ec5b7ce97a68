"""Payments: the providers that send money, the payments they send, where each
payment went, and the inbox of every signed request they made."""

from __future__ import annotations

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
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment provider")
        verbose_name_plural = _("payment providers")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(key_id__regex=KEY_ID_REGEX), name="provider_key_id_format"),
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
        return f"{self.payment_id} → {self.bill_id}: {self.amount}"


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
