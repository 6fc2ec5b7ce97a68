"""Back office of the overdue ladder and technician visits (registered from
billing/admin.py): the ladder's days (superusers), the overdue list per agency,
the field team's orders with their printable sheet, exemptions and visits.
Every write goes through billing/dunning.py or billing/appointments.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import DecimalField, Exists, Min, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.scoping import GLOBAL, AgencyScopedAdmin
from core.admin_money import OPERATOR_CURRENCY, MoneyFieldsAdmin
from core.audit import audited_action
from core.exceptions import ApplicationError
from core.money import format_money

from . import appointments, dunning, selectors
from .models import (
    MONEY,
    Appointment,
    Bill,
    DunningExemption,
    DunningLadderStep,
    DunningStep,
    DunningStepKind,
    FieldOrder,
    OverdueAccount,
)


@admin.register(DunningLadderStep)
class DunningLadderStepAdmin(AgencyScopedAdmin):
    """The ladder's days: one setting for every agency, so only superusers edit it."""

    agency_path = GLOBAL
    list_display = ["kind", "days_after_due", "is_active"]
    readonly_fields = ["kind"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the five steps come with the migration

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(DunningStep)
class DunningStepAdmin(AgencyScopedAdmin):
    """What the ladder did, read-only: written by the daily run only."""

    agency_path = "account__subscriber__agency"
    list_display = ["taken_on", "account", "bill", "kind", "disconnection_date", "messages"]
    list_filter = ["kind", "taken_on", "account__subscriber__agency"]
    list_select_related = ["account", "bill"]
    search_fields = ["account__number", "bill__number"]
    date_hierarchy = "taken_on"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ExemptNowFilter(admin.SimpleListFilter):
    title = _("exemption")
    parameter_name = "exempt"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Exempt today")), ("no", _("Not exempt"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("yes", "no"):
            return queryset.filter(exempt=self.value() == "yes")
        return queryset


@admin.register(OverdueAccount)
class OverdueAccountAdmin(MoneyFieldsAdmin, AgencyScopedAdmin):
    """The overdue list: accounts owing money past its due date, oldest first,
    with the ladder's last step and any exemption. One query for the page."""

    agency_path = "subscriber__agency"
    list_display = [
        "account_number", "subscriber_name", "agency", "overdue_amount", "days_overdue", "last_step", "exempt_now", "status",
    ]  # fmt: skip
    list_filter = [ExemptNowFilter, "status", "kind", "subscriber__agency"]
    search_fields = ["number", "subscriber__full_name", "subscriber__user__phone"]
    money_fields = {"credit": OPERATOR_CURRENCY}

    def get_ordering(self, request: HttpRequest) -> list[str]:
        return []  # the annotations below do not exist yet when the admin orders

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        today = timezone.localdate()
        overdue = Bill.objects.filter(Bill.overdue_q(today), account=OuterRef("pk"))
        money = DecimalField(**MONEY)
        return (
            super()
            .get_queryset(request)
            .filter(Exists(overdue))
            .select_related("subscriber", "subscriber__agency")
            .annotate(
                overdue_total=Coalesce(
                    Subquery(
                        overdue.order_by().values("account").annotate(s=Sum("amount_due")).values("s"),
                        output_field=money,
                    ),
                    Value(0, output_field=money),
                ),
                oldest_due=Subquery(overdue.order_by().values("account").annotate(m=Min("due_date")).values("m")),
                step=Subquery(
                    DunningStep.objects.filter(account=OuterRef("pk")).order_by("-taken_on", "-pk").values("kind")[:1]
                ),
                exempt=Exists(
                    DunningExemption.objects.filter(DunningExemption.active_q(today), account=OuterRef("pk"))
                ),
                today=Value(today),
            )
            .order_by("oldest_due", "number")
        )

    # Grouped 3-3-4 as on every other page and on the bills: the bare ten digits
    # are hard to read out to a subscriber on the phone.
    @admin.display(description=_("account number"), ordering="number")
    def account_number(self, obj: OverdueAccount) -> str:
        return obj.display_number

    @admin.display(description=_("subscriber"), ordering="subscriber__full_name")
    def subscriber_name(self, obj: OverdueAccount) -> str:
        return obj.subscriber.full_name

    @admin.display(description=_("agency"))
    def agency(self, obj: OverdueAccount) -> str:
        # str(agency) is its French name: the Arabic admin shows the Arabic one.
        agency = obj.subscriber.agency
        return f"{agency.code} {agency.name}"

    @admin.display(description=_("overdue amount"), ordering="overdue_total")
    def overdue_amount(self, obj: Any) -> str:
        return format_money(obj.overdue_total, settings.SELFCARE_CURRENCY)

    @admin.display(description=_("days overdue"), ordering="oldest_due")
    def days_overdue(self, obj: Any) -> int:
        return (obj.today - obj.oldest_due).days if obj.oldest_due else 0

    @admin.display(description=_("last ladder step"), ordering="step")
    def last_step(self, obj: Any) -> str:
        return DunningStepKind(obj.step).label if obj.step else "—"

    @admin.display(description=_("exempt"), boolean=True, ordering="exempt")
    def exempt_now(self, obj: Any) -> bool:
        return obj.exempt

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FieldOrder)
class FieldOrderAdmin(AgencyScopedAdmin):
    """Disconnections and reconnections for the agency's field team: print the
    sheets, then mark each carried out."""

    agency_path = "agency"
    list_display = ["ordered_on", "kind", "account", "subscriber", "agency", "status", "printed_at", "closed_at"]
    list_filter = ["status", "kind", "agency", "ordered_on"]
    list_select_related = ["account__subscriber", "agency"]
    search_fields = ["account__number", "account__subscriber__full_name"]
    readonly_fields = [
        "kind", "step", "account", "agency", "reconnects", "status", "ordered_on", "printed_at", "printed_by",
        "closed_at", "closed_by", "note",
    ]  # fmt: skip
    actions = ["print_sheets", "mark_executed"]

    @admin.display(description=_("subscriber"))
    def subscriber(self, obj: FieldOrder) -> str:
        return obj.account.subscriber.full_name

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the ladder orders them

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Print the field team's sheets (marks them printed)"), permissions=["change"])
    @audited_action
    def print_sheets(self, request: HttpRequest, queryset: QuerySet[FieldOrder]) -> HttpResponse:
        orders = list(
            queryset.exclude(status=FieldOrder.Status.CANCELLED)
            .select_related("account__subscriber", "agency", "step__bill", "reconnects")
            .order_by("agency__code", "kind", "account__service_address", "pk")
        )
        dunning.field_orders_mark_printed(orders=orders, by=request.user)
        # At the door the technician checks the receipt against what is owed: the
        # amount and the bills' numbers, read for every sheet in one query.
        overdue = selectors.overdue_bills_by_account(
            account_ids=[o.account_id for o in orders if o.kind == FieldOrder.Kind.DISCONNECTION],
            today=timezone.localdate(),
        )
        for order in orders:
            owed = overdue.get(order.account_id)
            order.overdue_numbers = owed.numbers if owed else []
            order.overdue_total = (
                " + ".join(format_money(amount, currency) for currency, amount in owed.totals.items()) if owed else ""
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Disconnection and reconnection orders"),
            "orders": orders,
            "printed_on": timezone.localdate(),
        }
        return TemplateResponse(request, "admin/billing/fieldorder/print.html", context)

    @admin.action(description=_("Mark as carried out"), permissions=["change"])
    @audited_action
    def mark_executed(self, request: HttpRequest, queryset: QuerySet[FieldOrder]) -> None:
        done = 0
        for order in queryset.filter(status__in=FieldOrder.OPEN_STATUSES):
            try:
                dunning.field_order_execute(order=order, by=request.user)
                done += 1
            except ApplicationError:
                continue
        self.message_user(
            request,
            ngettext("%(count)d order carried out.", "%(count)d orders carried out.", done) % {"count": done},
            messages.SUCCESS,
        )


class DunningExemptionForm(forms.ModelForm):
    class Meta:
        model = DunningExemption
        fields = ["account", "reason", "note", "starts_on", "ends_on"]

    def clean(self) -> dict[str, Any]:
        # The service's rules, said on the form rather than as an error page.
        data = super().clean()
        starts_on, ends_on = data.get("starts_on") or getattr(self.instance, "starts_on", None), data.get("ends_on")
        if data.get("reason") == DunningExemption.Reason.OTHER and not (data.get("note") or "").strip():
            self.add_error("note", _("Say why the account is exempted."))
        if starts_on and ends_on and ends_on < starts_on:
            self.add_error("ends_on", _("The exemption ends before it starts."))
        if self.instance.pk and "ends_on" in self.changed_data and ends_on is None:
            self.add_error("ends_on", _("Give the exemption's last day."))
        return data


@admin.register(DunningExemption)
class DunningExemptionAdmin(AgencyScopedAdmin):
    """An account spared the warnings and disconnection (medical need, dispute),
    granted by a supervisor with a reason; later only its end date changes."""

    agency_path = "account__subscriber__agency"
    form = DunningExemptionForm
    list_display = ["account", "reason", "starts_on", "ends_on", "granted_by", "created_at"]
    list_filter = ["reason", "account__subscriber__agency"]
    list_select_related = ["account", "granted_by"]
    search_fields = ["account__number", "account__subscriber__full_name"]
    autocomplete_fields = ["account"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["account", "reason", "note", "starts_on", "granted_by", "created_at"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # ended, never erased: the trail says who spared whom

    def save_model(self, request: HttpRequest, obj: DunningExemption, form: forms.ModelForm, change: bool) -> None:
        try:
            if not change:
                saved = dunning.dunning_exemption_grant(
                    account=obj.account, reason=obj.reason, note=obj.note or "", starts_on=obj.starts_on,
                    ends_on=obj.ends_on, granted_by=request.user,
                )  # fmt: skip
                obj.pk = saved.pk
            elif "ends_on" in form.changed_data and obj.ends_on is not None:
                dunning.dunning_exemption_end(
                    exemption=DunningExemption.objects.get(pk=obj.pk), ends_on=obj.ends_on, by=request.user
                )
        except ApplicationError as error:
            raise PermissionDenied(error.message) from error


class AppointmentForm(forms.ModelForm):
    class Meta:
        model = Appointment
        fields = ["account", "kind", "date", "window_start", "window_end", "status", "notes"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end, date = data.get("window_start"), data.get("window_end"), data.get("date")
        if start and end and end <= start:
            self.add_error("window_end", _("The time window ends before it starts."))
        if date and "date" in self.changed_data and date < timezone.localdate():
            self.add_error("date", _("The visit cannot be in the past."))
        return data


@admin.register(Appointment)
class AppointmentAdmin(AgencyScopedAdmin):
    """Technician visits: booking one tells the subscriber; a new date tells them again."""

    agency_path = "account__subscriber__agency"
    form = AppointmentForm
    list_display = ["date", "window_start", "window_end", "account", "kind", "status", "move_wish"]
    list_filter = ["status", "kind", "moved_once", "date", "account__subscriber__agency"]
    list_select_related = ["account"]
    search_fields = ["account__number", "account__subscriber__full_name"]
    autocomplete_fields = ["account"]
    date_hierarchy = "date"

    @admin.display(description=_("subscriber asks for"))
    def move_wish(self, obj: Appointment) -> str:
        if not obj.moved_once:
            return ""
        return f"{obj.move_preferred_date:%d/%m/%Y} ({self.preferred_window(obj)})"

    @admin.display(description=_("preferred time"))
    def preferred_window(self, obj: Appointment) -> str:
        # The stored key ("morning") is no word for a French or Arabic clerk.
        return str(appointments.PREFERRED_WINDOWS.get(obj.move_preferred_window, obj.move_preferred_window))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        wish = ["moved_once", "move_preferred_date", "preferred_window", "move_requested_at", "scheduled_by"]
        return ["account", "kind", *wish] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = ["account", "kind", "date", "window_start", "window_end", "notes"]
        if obj is None:
            return fields
        wish = ["moved_once", "move_preferred_date", "preferred_window", "move_requested_at", "scheduled_by"]
        return [*fields, "status", *wish]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # cancelled, not erased

    def save_model(self, request: HttpRequest, obj: Appointment, form: forms.ModelForm, change: bool) -> None:
        data = form.cleaned_data
        try:
            if not change:
                saved = appointments.appointment_schedule(
                    account=data["account"], kind=data["kind"], date=data["date"], window_start=data["window_start"],
                    window_end=data["window_end"], notes=data.get("notes") or "", scheduled_by=request.user,
                )  # fmt: skip
                obj.pk = saved.pk
                return
            current = Appointment.objects.get(pk=obj.pk)
            status = data.get("status")
            if status in (Appointment.Status.DONE, Appointment.Status.CANCELLED) and status != current.status:
                appointments.appointment_close(appointment=current, status=status, by=request.user)
                return
            if {"date", "window_start", "window_end"} & set(form.changed_data):
                appointments.appointment_reschedule(
                    appointment=current, date=data["date"], window_start=data["window_start"],
                    window_end=data["window_end"], by=request.user,
                )  # fmt: skip
            if "notes" in form.changed_data:
                current.refresh_from_db()
                current.notes = data.get("notes") or ""
                current.save(update_fields=["notes"])
        except ApplicationError as error:
            raise PermissionDenied(error.message) from error
