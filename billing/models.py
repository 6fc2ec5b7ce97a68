from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import Exact
from django.utils import translation
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from accounts.models import Subscriber
from core.models import AuditScoped

from .numbers import format_account_number

# Money columns hold up to 3 decimals, the largest ISO 4217 exponent we serve;
# core.money.quantize() rounds each amount to its own currency before saving.
MONEY = {"max_digits": 14, "decimal_places": 3}
# Unit prices (per kWh, per GB) carry more precision; only totals are rounded.
UNIT_PRICE = {"max_digits": 14, "decimal_places": 6}
QUANTITY = {"max_digits": 14, "decimal_places": 3}


def _is_zero(expression: models.Expression) -> Exact:
    """`expression = 0` to the money columns' precision.

    Exact on PostgreSQL's numeric; on SQLite, which stores decimals as floats,
    the rounding keeps `0.1 + 0.2 = 0.3` true.
    """
    return Exact(Round(expression, MONEY["decimal_places"]), 0)


class ServiceKind(models.TextChoices):
    ELECTRICITY = "electricity", _("Electricity")
    GAS = "gas", _("Gas")
    WATER = "water", _("Water")
    MOBILE = "mobile", _("Mobile")
    FIXED_LINE = "fixed_line", _("Fixed line")
    INTERNET = "internet", _("Internet")


UTILITY_KINDS = (ServiceKind.ELECTRICITY, ServiceKind.GAS, ServiceKind.WATER)


class Unit(models.TextChoices):
    KWH = "kWh", pgettext_lazy("unit", "kWh")
    M3 = "m3", pgettext_lazy("unit", "m³")
    MINUTES = "min", pgettext_lazy("unit", "min")
    SMS = "sms", pgettext_lazy("unit", "SMS")
    GB = "GB", pgettext_lazy("unit", "GB")


# What the consumption chart shows for each kind of service.
PRIMARY_UNIT: dict[str, str] = {
    ServiceKind.ELECTRICITY: Unit.KWH,
    ServiceKind.GAS: Unit.M3,
    ServiceKind.WATER: Unit.M3,
    ServiceKind.MOBILE: Unit.GB,
    ServiceKind.FIXED_LINE: Unit.MINUTES,
    ServiceKind.INTERNET: Unit.GB,
}


class Plan(models.Model):
    """A tariff: a monthly fee plus either consumption tiers or telecom allowances."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    name_ar = models.CharField(_("name (Arabic)"), max_length=120)
    name_fr = models.CharField(_("name (French)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=ServiceKind.choices)
    monthly_fee = models.DecimalField(_("monthly fee"), **MONEY)
    # Telecom allowances, with the price of what goes beyond them.
    included_minutes = models.PositiveIntegerField(_("included minutes"), null=True, blank=True)
    included_sms = models.PositiveIntegerField(_("included SMS"), null=True, blank=True)
    included_data_gb = models.DecimalField(_("included data (GB)"), null=True, blank=True, **QUANTITY)
    price_per_minute = models.DecimalField(_("price per extra minute"), null=True, blank=True, **UNIT_PRICE)
    price_per_sms = models.DecimalField(_("price per extra SMS"), null=True, blank=True, **UNIT_PRICE)
    price_per_gb = models.DecimalField(_("price per extra GB"), null=True, blank=True, **UNIT_PRICE)
    # Empty: the operator's rate (SELFCARE_VAT_RATE), so a change of the law is one setting.
    vat_rate = models.DecimalField(
        _("VAT rate"), max_digits=5, decimal_places=4, null=True, blank=True,
        help_text=_("0.19 for 19 %. Empty: the operator's standard rate."),
    )  # fmt: skip
    is_active = models.BooleanField(_("offered"), default=True)
    # What a subscriber moving *to* this plan may do (billing.plan_changes).
    allows_immediate_change = models.BooleanField(
        _("allows an immediate change"),
        default=False,
        help_text=_(
            "A subscriber may move to this plan at once; the monthly fee of that month is prorated by the day."
        ),
    )
    change_needs_approval = models.BooleanField(
        _("change needs approval"),
        default=False,
        help_text=_("A move to this plan waits for a supervisor of the subscriber's agency."),
    )

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ["kind", "monthly_fee", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(monthly_fee__gte=0), name="plan_fee_not_negative"),
            # A utility plan is priced by tiers only; allowances belong to telecom.
            models.CheckConstraint(
                condition=~Q(kind__in=UTILITY_KINDS)
                | Q(included_minutes__isnull=True, included_sms__isnull=True, included_data_gb__isnull=True),
                name="plan_utility_has_no_allowances",
            ),
            # The target of service accounts' (plan, kind) foreign key (migration
            # billing 0004): an account's kind is always its plan's kind.
            models.UniqueConstraint(fields=["id", "kind"], name="plan_id_kind_unique"),
            models.CheckConstraint(
                condition=Q(vat_rate__isnull=True) | Q(vat_rate__gte=0, vat_rate__lt=1), name="plan_vat_rate_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name_fr}"

    @property
    def name(self) -> str:
        language = translation.get_language() or "fr"
        return getattr(self, f"name_{language[:2]}", None) or self.name_fr

    @property
    def is_utility(self) -> bool:
        return self.kind in UTILITY_KINDS

    @property
    def unit(self) -> str:
        return PRIMARY_UNIT[self.kind]

    @property
    def unit_label(self) -> str:
        return Unit(self.unit).label


class PlanTier(models.Model):
    """A progressive tranche: usage between the bounds is charged at its price."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="tiers", verbose_name=_("plan"))
    position = models.PositiveSmallIntegerField(_("position"))
    from_quantity = models.DecimalField(_("from"), **QUANTITY)
    to_quantity = models.DecimalField(
        _("up to"), null=True, blank=True, help_text=_("Empty: no upper bound."), **QUANTITY
    )
    unit_price = models.DecimalField(_("unit price"), **UNIT_PRICE)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="plantier_position_unique"),
            models.CheckConstraint(
                condition=Q(to_quantity__isnull=True) | Q(to_quantity__gt=F("from_quantity")),
                name="plantier_bounds_ordered",
            ),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="plantier_price_not_negative"),
        ]

    def __str__(self) -> str:
        upper = self.to_quantity if self.to_quantity is not None else "∞"
        return f"{self.from_quantity}–{upper} @ {self.unit_price}"


class PlanLevy(models.Model):
    """A fixed amount on every bill of a plan (a municipal levy, the TV fee), taxed
    with VAT or not. The bill line points at it, so its name shows in the
    subscriber's language; it cannot be deleted once billed (deactivate the plan
    and offer a new one instead)."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="levies", verbose_name=_("plan"))
    position = models.PositiveSmallIntegerField(_("position"))
    name_ar = models.CharField(_("name (Arabic)"), max_length=120)
    name_fr = models.CharField(_("name (French)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    amount = models.DecimalField(_("amount per bill"), **MONEY)
    taxable = models.BooleanField(_("subject to VAT"), default=False)

    class Meta:
        verbose_name = _("levy")
        verbose_name_plural = _("levies")
        ordering = ["plan", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="planlevy_position_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="planlevy_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name_fr} {self.amount}"

    @property
    def name(self) -> str:
        language = translation.get_language() or "fr"
        return getattr(self, f"name_{language[:2]}", None) or self.name_fr


class ServiceAccount(AuditScoped, models.Model):
    """The contract for one meter or line: what the subscriber is billed on."""

    audit_scope = {"agency_id": "subscriber__agency_id", "subscriber_id": "subscriber_id"}

    class BillingMode(models.TextChoices):
        POSTPAID = "postpaid", _("Postpaid")
        PREPAID = "prepaid", _("Prepaid")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        DISCONNECTED = "disconnected", _("Disconnected")
        CLOSED = "closed", _("Closed")

    # Ten digits, the last a Luhn check digit (billing.numbers).
    number = models.CharField(_("account number"), max_length=10, unique=True)
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("subscriber")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=ServiceKind.choices)
    billing_mode = models.CharField(
        _("billing mode"), max_length=8, choices=BillingMode.choices, default=BillingMode.POSTPAID
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("plan"))
    meter_number = models.CharField(_("meter or line number"), max_length=32)
    service_address = models.TextField(_("service address"))
    opened_on = models.DateField(_("opened on"), default=dt.date.today)
    # Money received beyond what the bills asked (payments never refuse it); the
    # next bills use it first. Changed only under the account's row lock.
    credit = models.DecimalField(_("credit"), default=Decimal(0), **MONEY)
    # Meters are read in rounds; a bill run may bill one round (cycle) at a time.
    billing_cycle = models.PositiveSmallIntegerField(_("billing cycle"), default=1)

    class Meta:
        verbose_name = _("service account")
        verbose_name_plural = _("service accounts")
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(condition=Q(number__regex=r"^[0-9]{10}$"), name="account_number_ten_digits"),
            models.CheckConstraint(condition=Q(credit__gte=0), name="account_credit_not_negative"),
            models.CheckConstraint(
                condition=Q(billing_cycle__gte=1, billing_cycle__lte=31), name="account_billing_cycle_range"
            ),
        ]

    def __str__(self) -> str:
        return self.display_number

    def clean(self) -> None:
        # PostgreSQL refuses a mismatch anyway (a composite foreign key to the plan's
        # (id, kind)); this gives a form its message instead of an IntegrityError.
        if self.plan_id and self.kind and Plan.objects.filter(pk=self.plan_id).exclude(kind=self.kind).exists():
            raise ValidationError({"plan": _("This plan is for another kind of service.")})

    @property
    def display_number(self) -> str:
        return format_account_number(self.number)

    @property
    def unit(self) -> str:
        return PRIMARY_UNIT[self.kind]

    @property
    def unit_label(self) -> str:
        return Unit(self.unit).label


class Consumption(AuditScoped, models.Model):
    """Usage for one account, period and unit: a meter index or a usage count."""

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, related_name="consumptions", verbose_name=_("account")
    )
    period = models.DateField(_("period"), help_text=_("First day of the month."))
    unit = models.CharField(_("unit"), max_length=4, choices=Unit.choices)
    quantity = models.DecimalField(_("quantity"), **QUANTITY)
    # Cumulative meter reading at the end of the period; empty for telecom usage.
    meter_index = models.DecimalField(_("meter index"), null=True, blank=True, **QUANTITY)

    class Meta:
        verbose_name = _("consumption")
        verbose_name_plural = _("consumption")
        ordering = ["account", "-period"]
        constraints = [
            models.UniqueConstraint(fields=["account", "period", "unit"], name="consumption_period_unique"),
            models.CheckConstraint(condition=Q(quantity__gte=0), name="consumption_not_negative"),
            models.CheckConstraint(condition=Q(period__day=1), name="consumption_period_first_day"),
        ]

    def __str__(self) -> str:
        # No account id ("806" means nothing to a clerk), and no query: consumption
        # rows are saved by the thousand and each save writes this to the audit trail.
        return f"{self.period:%Y-%m} · {Decimal(self.quantity).normalize():f} {self.get_unit_display()}"


class Bill(AuditScoped, models.Model):
    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued")
        PARTIALLY_PAID = "partially_paid", _("Partially paid")
        PAID = "paid", _("Paid")
        OVERDUE = "overdue", _("Overdue")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = (Status.ISSUED, Status.PARTIALLY_PAID, Status.OVERDUE)

    # Account number and period (0123456789-202611): unique by construction,
    # and a clerk can tell from it whose bill it is.
    # Unique by a constraint rather than unique=True, which would add a second
    # (LIKE) index that no query uses and every bill run would maintain.
    number = models.CharField(_("bill number"), max_length=20)
    # Indexed by the (account, period) constraint, which starts with it.
    account = models.ForeignKey(
        ServiceAccount, on_delete=models.PROTECT, related_name="bills", verbose_name=_("account"), db_index=False
    )
    period = models.DateField(_("period"), help_text=_("First day of the billed month."))
    issue_date = models.DateField(_("issue date"))
    due_date = models.DateField(_("due date"))
    currency = models.CharField(_("currency"), max_length=3)
    amount_lines = models.DecimalField(_("amount before tax"), **MONEY)
    amount_tax = models.DecimalField(_("tax"), **MONEY)
    amount_total = models.DecimalField(_("total"), **MONEY)
    amount_paid = models.DecimalField(_("paid"), default=Decimal(0), **MONEY)
    amount_due = models.DecimalField(_("amount due"), **MONEY)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ISSUED)
    # No meter reading for the period: priced on the average of the last ones.
    is_estimated = models.BooleanField(_("estimated"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("bill")
        verbose_name_plural = _("bills")
        ordering = ["-period", "number"]
        # Viewing a bill is not sending messages to its subscriber.
        permissions = [("announce_bill", _("Can send the bill-issued messages"))]
        constraints = [
            models.UniqueConstraint(fields=["account", "period"], name="bill_one_per_account_period"),
            models.UniqueConstraint(fields=["number"], name="bill_number_unique"),
            models.CheckConstraint(condition=Q(period__day=1), name="bill_period_first_day"),
            models.CheckConstraint(condition=Q(due_date__gte=F("issue_date")), name="bill_due_after_issue"),
            models.CheckConstraint(
                condition=_is_zero(F("amount_total") - F("amount_lines") - F("amount_tax")),
                name="bill_total_is_lines_plus_tax",
            ),
            models.CheckConstraint(
                condition=_is_zero(F("amount_due") - F("amount_total") + F("amount_paid")),
                name="bill_due_is_total_less_paid",
            ),
            models.CheckConstraint(
                condition=Q(amount_paid__gte=0, amount_paid__lte=F("amount_total")), name="bill_paid_within_total"
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(amount_due=0), name="bill_paid_status_has_nothing_due"
            ),
        ]
        indexes = [
            # The overdue sweep and the agencies' overdue lists.
            models.Index(fields=["status", "due_date"], name="bill_status_due_idx"),
            # The estimated bills a reading may have to correct: one bill in many.
            models.Index(fields=["account", "period"], condition=Q(is_estimated=True), name="bill_estimated_idx"),
            # What an account owes: its open bills only, a handful among years of history
            # (the statuses of Bill.OPEN_STATUSES; test_constraints holds them equal).
            models.Index(
                fields=["account", "due_date"],
                condition=Q(status__in=["issued", "partially_paid", "overdue"], amount_due__gt=0),
                name="bill_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @classmethod
    def open_q(cls, prefix: str = "") -> Q:
        """Bills still asking for money. `prefix` reaches them through a relation ("bills__")."""
        return Q(**{f"{prefix}status__in": cls.OPEN_STATUSES, f"{prefix}amount_due__gt": 0})

    @classmethod
    def overdue_q(cls, today: dt.date, prefix: str = "") -> Q:
        """Overdue *today*, whether or not the hourly sweep has flagged them yet."""
        return cls.open_q(prefix) & Q(**{f"{prefix}due_date__lt": today})

    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def is_overdue(self, today: dt.date) -> bool:
        return self.is_overdue_given(
            status=self.status, amount_due=self.amount_due, due_date=self.due_date, today=today
        )

    @classmethod
    def is_overdue_given(cls, *, status: str, amount_due: Decimal, due_date: dt.date, today: dt.date) -> bool:
        """`overdue_q` for one bill's values, loaded as a model or as a row of a selector."""
        return status in cls.OPEN_STATUSES and amount_due > 0 and due_date < today

    def set_amount_paid(self, amount_paid: Decimal) -> None:
        """Move `amount_paid`, keeping `amount_due` and the status in step with it."""
        self.amount_paid = amount_paid
        self.amount_due = self.amount_total - amount_paid
        if self.amount_due == 0:
            self.status = self.Status.PAID
        elif self.status != self.Status.OVERDUE:
            self.status = self.Status.PARTIALLY_PAID if amount_paid > 0 else self.Status.ISSUED


class BillLine(models.Model):
    class Kind(models.TextChoices):
        FIXED_FEE = "fixed_fee", _("Monthly fee")
        CONSUMPTION = "consumption", _("Consumption")
        OVERAGE = "overage", _("Beyond allowance")
        FEE = "fee", _("Service fee")
        ADJUSTMENT = "adjustment", _("Adjustment")
        # The monthly fee of a month in which the plan changed, by the day (plan_changes).
        PRORATION = "proration", _("Plan change: monthly fee by the day")
        # The real consumption of months billed on an estimate, less what the
        # estimates charged, once a reading shows it (billing/estimates.py).
        ESTIMATE_CORRECTION = "estimate_fix", _("Correction of estimated bills")
        LEVY = "levy", _("Levy")
        # A bill whose credits exceed its charges comes to zero; the rest pays the
        # account's open bills, then goes to its credit for the next bills
        # (tariffs.bill_compute, services.account_credit_carry).
        CREDIT_CARRIED = "credit_carried", _("Credit carried to your account")

    # Indexed by the (bill, position) constraint, which starts with it.
    bill = models.ForeignKey(
        Bill, on_delete=models.CASCADE, related_name="lines", verbose_name=_("bill"), db_index=False
    )
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # Which tier of the plan a consumption line charges (1 = first tranche).
    tier = models.PositiveSmallIntegerField(_("tier"), null=True, blank=True)
    quantity = models.DecimalField(_("quantity"), null=True, blank=True, **QUANTITY)
    unit = models.CharField(_("unit"), max_length=4, choices=Unit.choices, blank=True)
    unit_price = models.DecimalField(_("unit price"), null=True, blank=True, **UNIT_PRICE)
    amount = models.DecimalField(_("amount"), **MONEY)
    # A levy line names its levy (shown in the reader's language). Indexed only
    # where set: millions of other lines need no index entry.
    levy = models.ForeignKey(
        PlanLevy, on_delete=models.PROTECT, null=True, blank=True, db_index=False, related_name="+",
        verbose_name=_("levy"),
    )  # fmt: skip

    class Meta:
        verbose_name = _("bill line")
        verbose_name_plural = _("bill lines")
        ordering = ["bill", "position"]
        constraints = [
            models.UniqueConstraint(fields=["bill", "position"], name="billline_position_unique"),
            models.CheckConstraint(condition=Q(kind="levy") | Q(levy__isnull=True), name="billline_levy_kind"),
        ]
        indexes = [models.Index(fields=["levy"], condition=Q(levy__isnull=False), name="billline_levy_idx")]

    def __str__(self) -> str:
        return f"#{self.position} {self.label}"

    @property
    def label(self) -> str:
        if self.levy_id is not None:
            return self.levy.name
        return self.get_kind_display()

    @property
    def title(self) -> str:
        return bill_line_title(self.label, self.tier)


def bill_line_title(label: str, tier: int | None) -> str:
    """A bill line's name as every reader sees it (the portal's bill page, the bill's
    PDF, the back office): its label and, for a tranche of consumption, the tier."""
    if tier:
        return gettext("%(item)s — tier %(tier)s") % {"item": label, "tier": tier}
    return label


class PrintRequest(AuditScoped, models.Model):
    """A paper copy of a bill, asked for by a paperless subscriber, printed by their agency."""

    audit_scope = {"agency_id": "agency_id", "subscriber_id": "bill__account__subscriber_id"}

    class Status(models.TextChoices):
        PENDING = "pending", _("To print")
        PRINTED = "printed", _("Printed")

    bill = models.ForeignKey(Bill, on_delete=models.CASCADE, related_name="print_requests", verbose_name=_("bill"))
    agency = models.ForeignKey(
        "accounts.Agency", on_delete=models.PROTECT, related_name="print_requests", verbose_name=_("agency")
    )
    requested_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("requested by")
    )
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    printed_at = models.DateTimeField(_("printed"), null=True, blank=True)
    printed_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("printed by"),
    )

    class Meta:
        verbose_name = _("paper copy request")
        verbose_name_plural = _("paper copy requests")
        ordering = ["status", "requested_at"]
        constraints = [
            # Asking twice before it is printed is one request.
            models.UniqueConstraint(
                fields=["bill"], condition=Q(status="pending"), name="printrequest_one_pending_per_bill"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bill_id} ({self.status})"


class SmsAlertSubscription(AuditScoped, models.Model):
    """The paid SMS alert service on one account, as some utilities sell it."""

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, related_name="sms_alert_subscriptions", verbose_name=_("account")
    )
    started_on = models.DateField(_("started on"))
    ended_on = models.DateField(_("ended on"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("SMS alert subscription")
        verbose_name_plural = _("SMS alert subscriptions")
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=Q(ended_on__isnull=True), name="smsalert_one_open_per_account"
            ),
            models.CheckConstraint(
                condition=Q(ended_on__isnull=True) | Q(ended_on__gte=models.F("started_on")),
                name="smsalert_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account.display_number} · {self.started_on:%Y-%m-%d}"


class ChangeRequest(AuditScoped, models.Model):
    """A change of who a subscriber or a contract is, asked with a reason by one
    member of staff and applied only once a supervisor of the agency approves
    (maker-checker): a login re-link or a transfer of contract."""

    audit_scope = {"agency_id": "agency_id", "subscriber_id": "subscriber_id"}

    class Kind(models.TextChoices):
        LOGIN_RELINK = "login_relink", _("Re-link a subscriber's login")
        ACCOUNT_TRANSFER = "account_transfer", _("Transfer a contract to another subscriber")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    # The agency whose supervisors decide: the subscriber's when asked.
    agency = models.ForeignKey(
        "accounts.Agency", on_delete=models.PROTECT, related_name="change_requests", verbose_name=_("agency")
    )
    # Login re-link: this subscriber, from one login to another.
    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, null=True, blank=True, related_name="change_requests",
        verbose_name=_("subscriber"),
    )  # fmt: skip
    from_user = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("current login"),
    )  # fmt: skip
    to_user = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("new login"),
    )  # fmt: skip
    # Transfer: this account, from one subscriber to another.
    account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, null=True, blank=True, related_name="change_requests",
        verbose_name=_("account"),
    )  # fmt: skip
    from_subscriber = models.ForeignKey(
        Subscriber, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("current subscriber"),
    )  # fmt: skip
    to_subscriber = models.ForeignKey(
        Subscriber, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("new subscriber"),
    )  # fmt: skip
    reason = models.TextField(_("reason"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    decided_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("decided by"),
    )  # fmt: skip
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    class Meta:
        verbose_name = _("change request")
        verbose_name_plural = _("change requests")
        ordering = ["-requested_at"]
        permissions = [("approve_changerequest", _("Can approve or reject change requests"))]
        constraints = [
            # The one who asks never approves their own request.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="changerequest_maker_is_not_checker",
            ),
            models.CheckConstraint(
                condition=(Q(status="pending", decided_by__isnull=True, decided_at__isnull=True))
                | (Q(status__in=["approved", "rejected"], decided_by__isnull=False, decided_at__isnull=False)),
                name="changerequest_decided_has_who_and_when",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="changerequest_has_reason"),
            models.CheckConstraint(
                condition=(
                    Q(kind="login_relink", subscriber__isnull=False, from_user__isnull=False, to_user__isnull=False)
                    & Q(account__isnull=True, from_subscriber__isnull=True, to_subscriber__isnull=True)
                )
                | (
                    Q(kind="account_transfer", account__isnull=False)
                    & Q(from_subscriber__isnull=False, to_subscriber__isnull=False)
                    & Q(subscriber__isnull=True, from_user__isnull=True, to_user__isnull=True)
                ),
                name="changerequest_fields_match_kind",
            ),
            # One open question per subscriber or contract at a time.
            models.UniqueConstraint(
                fields=["subscriber"], condition=Q(status="pending"), name="changerequest_one_pending_relink"
            ),
            models.UniqueConstraint(
                fields=["account"], condition=Q(status="pending"), name="changerequest_one_pending_transfer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"

    def get_additional_data(self) -> dict:
        # A transfer of contract names its subscriber as `from_subscriber`.
        return {"agency_id": self.agency_id, "subscriber_id": self.subscriber_id or self.from_subscriber_id}


class ReadingCorrection(AuditScoped, models.Model):
    """A corrected meter reading. The consumption row holds the value bills use;
    each correction keeps the value it replaced, so the first correction of a
    row holds the reading as it was taken, and nothing is lost."""

    audit_scope = {
        "agency_id": "consumption__account__subscriber__agency_id",
        "subscriber_id": "consumption__account__subscriber_id",
    }

    consumption = models.ForeignKey(
        Consumption, on_delete=models.CASCADE, related_name="corrections", verbose_name=_("reading")
    )
    original_quantity = models.DecimalField(_("quantity before"), **QUANTITY)
    original_meter_index = models.DecimalField(_("meter index before"), null=True, blank=True, **QUANTITY)
    corrected_quantity = models.DecimalField(_("corrected quantity"), **QUANTITY)
    corrected_meter_index = models.DecimalField(_("corrected meter index"), null=True, blank=True, **QUANTITY)
    reason = models.TextField(_("reason"))
    corrected_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("corrected by")
    )
    corrected_at = models.DateTimeField(_("corrected"), auto_now_add=True)

    class Meta:
        verbose_name = _("reading correction")
        verbose_name_plural = _("reading corrections")
        ordering = ["consumption", "corrected_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="readingcorrection_has_reason"),
            models.CheckConstraint(condition=Q(corrected_quantity__gte=0), name="readingcorrection_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{Decimal(self.original_quantity).normalize():f} → {Decimal(self.corrected_quantity).normalize():f}"


class PlanChange(AuditScoped, models.Model):
    """A subscriber's move from one plan to another of the same kind.

    From the next period (the default), or at once when the new plan allows it,
    the month's fixed fee then prorated by the day and the difference billed on
    the next bill. A move to a plan that needs approval waits for a supervisor.
    billing/plan_changes.py holds the rules; the database holds what it can.
    """

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    class Mode(models.TextChoices):
        NEXT_PERIOD = "next_period", _("From the next period")
        IMMEDIATE = "immediate", _("At once")

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", _("Waiting for approval")
        SCHEDULED = "scheduled", _("Scheduled")
        APPLIED = "applied", _("Applied")
        CANCELLED = "cancelled", _("Cancelled")
        REJECTED = "rejected", _("Rejected")

    # Not yet in effect: the subscriber may still cancel it, and no second one may be asked.
    OPEN_STATUSES = (Status.PENDING_APPROVAL, Status.SCHEDULED)

    account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, related_name="plan_changes", verbose_name=_("account")
    )
    # The plans' kind, copied so the database can hold both plans to it (a composite
    # foreign key to the plan's (id, kind), migration billing 0008).
    kind = models.CharField(_("kind"), max_length=16, choices=ServiceKind.choices)
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+", verbose_name=_("from plan"))
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+", verbose_name=_("to plan"))
    mode = models.CharField(_("when"), max_length=12, choices=Mode.choices, default=Mode.NEXT_PERIOD)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    # The day the new plan starts: the first of a month for a next-period change,
    # the day it was applied (or approved) for an immediate one.
    effective_date = models.DateField(_("effective date"))
    requested_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    requested_at = models.DateTimeField(_("requested"), auto_now_add=True)
    # Who approved, rejected or cancelled it, and when (nobody: the system did).
    decided_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name=_("decided by"),
    )  # fmt: skip
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    # An immediate change: the fixed-fee difference the bill of `bill_period` adds.
    currency = models.CharField(_("currency"), max_length=3)
    proration_amount = models.DecimalField(_("proration"), default=Decimal(0), **MONEY)
    bill_period = models.DateField(_("billed with the bill of"), null=True, blank=True)

    class Meta:
        verbose_name = _("plan change")
        verbose_name_plural = _("plan changes")
        ordering = ["-requested_at"]
        permissions = [("approve_planchange", _("Can approve or reject plan changes"))]
        constraints = [
            # One change at a time: asked twice (two tabs, two clicks) is refused.
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=["pending_approval", "scheduled"]),
                name="planchange_one_open_per_account",
            ),
            models.CheckConstraint(condition=~Q(from_plan=F("to_plan")), name="planchange_changes_the_plan"),
            models.CheckConstraint(
                condition=Q(mode="immediate") | Q(effective_date__day=1), name="planchange_next_period_on_the_first"
            ),
            models.CheckConstraint(
                condition=~Q(status="applied") | Q(applied_at__isnull=False), name="planchange_applied_has_when"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["rejected", "cancelled"]) | Q(decided_at__isnull=False),
                name="planchange_closed_has_when",
            ),
            # Proration only where a fee was split by the day, billed with one month's bill.
            models.CheckConstraint(
                condition=Q(mode="immediate", status="applied") | Q(proration_amount=0, bill_period__isnull=True),
                name="planchange_proration_only_when_applied_at_once",
            ),
            models.CheckConstraint(
                condition=Q(bill_period__isnull=True) | Q(bill_period__day=1), name="planchange_bill_period_first_day"
            ),
        ]
        indexes = [
            # The daily switch: scheduled changes that are due.
            models.Index(fields=["effective_date"], condition=Q(status="scheduled"), name="planchange_scheduled_idx"),
            # What a bill adds: the prorations of its period.
            models.Index(
                fields=["bill_period", "account"],
                condition=Q(bill_period__isnull=False),
                name="planchange_bill_period_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account.display_number}: {self.from_plan.code} → {self.to_plan.code}"

    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


# --- Overdue ladder (dunning) and technician appointments --------------------
# billing/dunning.py holds the rules; billing/appointments.py the visits.


class DunningStepKind(models.TextChoices):
    REMINDER = "reminder", _("Reminder before the due date")
    OVERDUE_NOTICE = "overdue_notice", _("Overdue notice")
    DISCONNECTION_WARNING = "disconnection_warning", _("Disconnection warning")
    DISCONNECTION_ORDER = "disconnection_order", _("Disconnection order")
    RECONNECTION_ORDER = "reconnection_order", _("Reconnection order")


class DunningLadderStep(models.Model):
    """One rung of the ladder: on which day, counted from a bill's due date, it falls.

    Edited by superusers in the back office; the defaults come with migration.
    A reconnection order has no day: it follows the payment of what was overdue.
    """

    kind = models.CharField(_("step"), max_length=24, choices=DunningStepKind.choices, unique=True)
    days_after_due = models.SmallIntegerField(
        _("days after the due date"), help_text=_("Negative: before the due date (a reminder).")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("overdue ladder step")
        verbose_name_plural = _("overdue ladder")
        ordering = ["days_after_due"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="reconnection_order") | Q(days_after_due=0), name="dunningladder_reconnection_no_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.days_after_due:+d})"


class DunningStep(AuditScoped, models.Model):
    """A ladder step taken for a bill: the record that it was sent (or ordered).

    Unique per (bill, step), so no step is ever taken twice, whichever run or
    thread gets there first. Account-wide steps (warning, orders) are recorded
    on the account's oldest overdue bill, the one the days overdue count from.
    """

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, related_name="dunning_steps", verbose_name=_("account")
    )
    bill = models.ForeignKey(Bill, on_delete=models.CASCADE, related_name="dunning_steps", verbose_name=_("bill"))
    kind = models.CharField(_("step"), max_length=24, choices=DunningStepKind.choices)
    taken_on = models.DateField(_("taken on"))
    # A warning: the disconnection date it gave the subscriber (the order waits for it).
    disconnection_date = models.DateField(_("disconnection date"), null=True, blank=True)
    messages = models.PositiveSmallIntegerField(_("messages written"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("overdue ladder record")
        verbose_name_plural = _("overdue ladder records")
        ordering = ["-taken_on", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["bill", "kind"], name="dunningstep_once_per_bill"),
            models.CheckConstraint(
                condition=~Q(kind="disconnection_warning") | Q(disconnection_date__isnull=False),
                name="dunningstep_warning_has_date",
            ),
        ]
        indexes = [models.Index(fields=["account", "kind"], name="dunningstep_account_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.taken_on:%Y-%m-%d}"


class FieldOrder(AuditScoped, models.Model):
    """A disconnection or reconnection for the agency's field team to carry out."""

    audit_scope = {"agency_id": "agency_id", "subscriber_id": "account__subscriber_id"}

    class Kind(models.TextChoices):
        DISCONNECTION = "disconnection", _("Disconnection")
        RECONNECTION = "reconnection", _("Reconnection")

    class Status(models.TextChoices):
        TO_PRINT = "to_print", _("To print")
        PRINTED = "printed", _("Printed")
        EXECUTED = "executed", _("Carried out")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATUSES = (Status.TO_PRINT, Status.PRINTED)

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    step = models.OneToOneField(
        DunningStep, on_delete=models.PROTECT, related_name="field_order", verbose_name=_("ladder record")
    )
    account = models.ForeignKey(
        ServiceAccount, on_delete=models.PROTECT, related_name="field_orders", verbose_name=_("account")
    )
    # The account's agency when ordered: whose field team goes.
    agency = models.ForeignKey(
        "accounts.Agency", on_delete=models.PROTECT, related_name="field_orders", verbose_name=_("agency")
    )
    # A reconnection undoes this disconnection (once: unique).
    reconnects = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reconnection",
        verbose_name=_("reconnects"),
    )  # fmt: skip
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.TO_PRINT)
    ordered_on = models.DateField(_("ordered on"))
    printed_at = models.DateTimeField(_("printed"), null=True, blank=True)
    printed_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("printed by"),
    )  # fmt: skip
    closed_at = models.DateTimeField(_("carried out or cancelled"), null=True, blank=True)
    closed_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("closed by"),
    )  # fmt: skip
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("field order")
        verbose_name_plural = _("disconnection and reconnection orders")
        ordering = ["status", "ordered_on", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="reconnection", reconnects__isnull=False)
                | Q(kind="disconnection", reconnects__isnull=True),
                name="fieldorder_reconnection_names_its_disconnection",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["executed", "cancelled"]) | Q(closed_at__isnull=False),
                name="fieldorder_closed_has_when",
            ),
            # One disconnection not yet carried out or cancelled per account.
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(kind="disconnection", status__in=["to_print", "printed"]),
                name="fieldorder_one_open_disconnection",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.account.display_number} ({self.get_status_display()})"


class DunningExemption(AuditScoped, models.Model):
    """While it runs, the account gets no overdue notice, warning or disconnection order."""

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    class Reason(models.TextChoices):
        MEDICAL = "medical", _("Medical need")
        DISPUTE = "dispute", _("Bill disputed")
        OTHER = "other", _("Other")

    account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, related_name="dunning_exemptions", verbose_name=_("account")
    )
    reason = models.CharField(_("reason"), max_length=8, choices=Reason.choices)
    note = models.TextField(_("details"), blank=True)
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"), null=True, blank=True, help_text=_("Empty: until it is lifted."))
    granted_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("granted by")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("overdue exemption")
        verbose_name_plural = _("overdue exemptions")
        ordering = ["-starts_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=F("starts_on")), name="dunningexemption_ends_after"
            ),
            models.CheckConstraint(condition=~Q(reason="other") | ~Q(note=""), name="dunningexemption_other_says_why"),
        ]

    def __str__(self) -> str:
        return f"{self.account.display_number} {self.get_reason_display()} {self.starts_on}–{self.ends_on or '…'}"

    @classmethod
    def active_q(cls, today: dt.date, prefix: str = "") -> Q:
        return Q(**{f"{prefix}starts_on__lte": today}) & (
            Q(**{f"{prefix}ends_on__isnull": True}) | Q(**{f"{prefix}ends_on__gte": today})
        )


class Appointment(AuditScoped, models.Model):
    """A technician's visit to an account, in a time window on one day."""

    audit_scope = {"agency_id": "account__subscriber__agency_id", "subscriber_id": "account__subscriber_id"}

    class Kind(models.TextChoices):
        METER_CHANGE = "meter_change", _("Meter change")
        SMART_METER = "smart_meter", _("Smart meter installation")
        RECONNECTION = "reconnection", _("Reconnection")
        OTHER = "other", _("Other visit")

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        MOVED = "moved", _("Moved")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    UPCOMING_STATUSES = (Status.SCHEDULED, Status.MOVED)

    account = models.ForeignKey(
        ServiceAccount, on_delete=models.CASCADE, related_name="appointments", verbose_name=_("account")
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    date = models.DateField(_("date"))
    window_start = models.TimeField(_("from"))
    window_end = models.TimeField(_("to"))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    # The subscriber may ask once to move it; staff then set the new date.
    moved_once = models.BooleanField(_("move asked"), default=False)
    move_preferred_date = models.DateField(_("preferred date"), null=True, blank=True)
    move_preferred_window = models.CharField(_("preferred time"), max_length=12, blank=True)
    move_requested_at = models.DateTimeField(_("move asked on"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    scheduled_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="+", verbose_name=_("scheduled by")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("technician appointment")
        verbose_name_plural = _("technician appointments")
        ordering = ["date", "window_start"]
        constraints = [
            models.CheckConstraint(condition=Q(window_end__gt=F("window_start")), name="appointment_window_ordered"),
            models.CheckConstraint(
                condition=Q(moved_once=False) | Q(move_requested_at__isnull=False, move_preferred_date__isnull=False),
                name="appointment_move_request_complete",
            ),
        ]
        indexes = [
            models.Index(
                fields=["date"], condition=Q(status__in=["scheduled", "moved"]), name="appointment_upcoming_idx"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.account.display_number} {self.get_kind_display()} {self.date} "
            f"{self.window_start:%H:%M}–{self.window_end:%H:%M}"
        )

    def is_upcoming(self, today: dt.date) -> bool:
        return self.status in self.UPCOMING_STATUSES and self.date >= today


class OverdueAccount(ServiceAccount):
    """The back office's overdue list: accounts with an overdue amount (admin only)."""

    class Meta:
        proxy = True
        verbose_name = _("overdue account")
        verbose_name_plural = _("overdue accounts")


class BillRun(AuditScoped, models.Model):
    """Billing one period for every active postpaid account in a scope (all, one
    agency, one billing cycle, or an agency's cycle), in chunks that Celery
    workers process in parallel. The counts are the chunks' own, summed by the
    database each time a chunk ends (billing/runs.py), so they are right
    whichever chunk ends last."""

    audit_scope = {"agency_id": "agency_id"}

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        # Every chunk ended, some with an error: resuming the run retries those.
        FAILED = "failed", pgettext_lazy("bill run", "Failed")

    period = models.DateField(_("period"), help_text=_("First day of the billed month."))
    agency = models.ForeignKey(
        "accounts.Agency", on_delete=models.PROTECT, null=True, blank=True, related_name="bill_runs",
        verbose_name=_("agency"), help_text=_("Empty: every agency."),
    )  # fmt: skip
    billing_cycle = models.PositiveSmallIntegerField(
        _("billing cycle"), null=True, blank=True, help_text=_("Empty: every cycle.")
    )
    issue_date = models.DateField(_("issue date"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    accounts_in_scope = models.PositiveIntegerField(_("accounts in scope"), default=0)
    billed = models.PositiveIntegerField(_("billed on a reading"), default=0)
    estimated = models.PositiveIntegerField(_("billed on an estimate"), default=0)
    already_billed = models.PositiveIntegerField(_("already billed"), default=0)
    skipped = models.PositiveIntegerField(_("skipped (no reading, no history)"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    chunks_total = models.PositiveIntegerField(_("chunks"), default=0)
    chunks_done = models.PositiveIntegerField(_("chunks done"), default=0)
    errors = models.TextField(_("errors"), blank=True)
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("started by"),
    )  # fmt: skip
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("bill run")
        verbose_name_plural = _("bill runs")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(period__day=1), name="billrun_period_first_day"),
            models.CheckConstraint(
                condition=Q(billing_cycle__isnull=True) | Q(billing_cycle__gte=1, billing_cycle__lte=31),
                name="billrun_billing_cycle_range",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["finished", "failed"], finished_at__isnull=False)
                | Q(status__in=["queued", "running"], finished_at__isnull=True),
                name="billrun_finished_has_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period:%Y-%m} · {self.scope}"

    @property
    def scope(self) -> str:
        parts = []
        if self.agency_id is not None:
            parts.append(str(_("agency %(code)s") % {"code": self.agency.code}))
        if self.billing_cycle is not None:
            parts.append(str(_("cycle %(cycle)s") % {"cycle": self.billing_cycle}))
        return ", ".join(parts) or str(_("all accounts"))

    @property
    def accounts_done(self) -> int:
        return self.billed + self.estimated + self.already_billed + self.skipped + self.failed

    @property
    def progress_percent(self) -> int:
        if not self.chunks_total:
            return 100 if self.status == self.Status.FINISHED else 0
        return min(100, (100 * self.chunks_done) // self.chunks_total)

    def is_over(self) -> bool:
        return self.status in (self.Status.FINISHED, self.Status.FAILED)


class BillRunChunk(models.Model):
    """A range of account ids of a run, billed in one transaction: its bills,
    lines, credit and messages commit together or not at all. A worker claims
    it by locking its row (SKIP LOCKED), so a chunk redelivered to a second
    worker is left alone while the first holds it, and taken up again if the
    first died (its transaction, and the lock, died with it)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(BillRun, on_delete=models.CASCADE, related_name="chunks", verbose_name=_("bill run"))
    first_account_id = models.BigIntegerField(_("first account id"))
    last_account_id = models.BigIntegerField(_("last account id"))
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    accounts = models.PositiveIntegerField(_("accounts in scope"), default=0)
    billed = models.PositiveIntegerField(_("billed on a reading"), default=0)
    estimated = models.PositiveIntegerField(_("billed on an estimate"), default=0)
    already_billed = models.PositiveIntegerField(_("already billed"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    messages = models.PositiveIntegerField(_("messages"), default=0)
    error = models.TextField(_("error"), blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("bill run chunk")
        verbose_name_plural = _("bill run chunks")
        ordering = ["run", "first_account_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "first_account_id"], name="billrunchunk_unique_range"),
            models.CheckConstraint(
                condition=Q(last_account_id__gte=F("first_account_id")), name="billrunchunk_range_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.first_account_id}–{self.last_account_id} ({self.status})"
