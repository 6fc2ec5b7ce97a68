"""Back office for agency staff: find a customer by name, e-mail or phone."""

from __future__ import annotations

import itertools
import re

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from babel.numbers import format_percent
from django import forms
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp import admin as otp_totp_admin
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.money import babel_locale

from .backends import normalize_identifier
from .models import Agency, AgencyHours, AgencyHoursReduction, Subscriber, User
from .phones import InvalidPhoneNumber, ascii_digits, phone_to_e164
from .scoping import GLOBAL, AgencyScopedAdmin
from .selectors import agencies_with_rollout, agency_rollout_report, subscriber_paperless_q


class PhoneAwareSearchMixin:
    """A clerk types a phone number as the customer says it: `20 000 001`,
    `+216 20 000 001`, `00216…`, in Arabic-Indic digits. Django's search splits
    that into words and finds every row holding `20`, `000` and `001`, the right
    one among many; a term that reads as a phone (or, in billing, an account
    number) finds exactly its rows when there are any, else the usual search
    runs, on the digits without their spaces."""

    phone_lookup = "phone"

    def exact_search_results(self, queryset: QuerySet, search_term: str) -> QuerySet | None:
        """The rows a phone-like term names exactly, or None when it is no phone."""
        normalized = normalize_identifier(search_term)
        if normalized.startswith("+"):
            return queryset.filter(**{self.phone_lookup: normalized})
        return None

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):  # type: ignore[override]
        exact = self.exact_search_results(queryset, search_term) if search_term.strip() else None
        if exact is not None and exact.exists():
            return exact, False
        # `100 000 0016` as displayed: one word, not three that match everywhere.
        compact = re.sub(r"[\s.\-\u00a0]", "", ascii_digits(search_term))
        if compact.isdigit():
            search_term = compact
        return super().get_search_results(request, queryset, search_term)  # type: ignore[misc]


@admin.register(User)
class UserAdmin(PhoneAwareSearchMixin, AgencyScopedAdmin, DjangoUserAdmin):
    # Staff of the agencies, and the logins of their subscribers.
    agency_path = ("agencies", "subscriber__agency")
    ordering = ["email"]
    list_display = ["email", "phone", "first_name", "last_name", "is_staff", "agency_codes"]
    list_filter = ["is_staff", "is_superuser", "is_active", "agencies", "groups"]
    search_fields = ["email", "phone", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "phone", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Staff"), {"fields": ("agencies", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "phone", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal = ["agencies", "groups", "user_permissions"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("agencies")

    @admin.display(description=_("agencies"))
    def agency_codes(self, obj: User) -> str:
        return ", ".join(agency.code for agency in obj.agencies.all())


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(AgencyScopedAdmin, DjangoGroupAdmin):
    agency_path = GLOBAL  # roles (accounts.roles) are the same in every agency


# --- Agencies: their public page's details, and their paperless roll-out ----------


class AgencyForm(forms.ModelForm):
    class Meta:
        model = Agency
        fields = ["code", "name_ar", "name_fr", "city", "address", "phone", "latitude", "longitude", "paperless_from"]

    def clean_phone(self) -> str:
        """A clerk types the number as it is written (71 123 456); it is kept in E.164."""
        raw = self.cleaned_data.get("phone") or ""
        if not raw.strip():
            return ""
        try:
            return phone_to_e164(raw)
        except InvalidPhoneNumber:
            raise ValidationError(_("Enter a phone number, for example 71 123 456 or +216 71 123 456.")) from None


class AgencyHoursFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        """Two openings of one day may not overlap (the database sees only one row at a time)."""
        super().clean()
        openings = sorted(
            (form.cleaned_data["weekday"], form.cleaned_data["opens"], form.cleaned_data["closes"])
            for form in self.forms
            if form.cleaned_data
            and not form.cleaned_data.get("DELETE")
            and all(form.cleaned_data.get(f) is not None for f in ("weekday", "opens", "closes"))
        )
        for (day, _opens, closes), (next_day, next_opens, _closes) in itertools.pairwise(openings):
            if day == next_day and next_opens < closes:
                raise ValidationError(_("Two openings of the same day overlap."))


class AgencyHoursInline(admin.TabularInline):
    model = AgencyHours
    formset = AgencyHoursFormSet
    extra = 1
    verbose_name_plural = _("usual opening hours (a day with a lunch break has two rows)")


class AgencyHoursReductionInline(admin.TabularInline):
    model = AgencyHoursReduction
    extra = 0
    fields = ["starts_on", "ends_on", "closed", "opens", "closes", "note_ar", "note_fr"]
    verbose_name_plural = _("reduced hours or closures (shown on the public page while they apply)")


def _share(part: int, whole: int) -> str:
    """`312 (62 %)`, in the staff member's language; a dash for an agency with nobody."""
    if not whole:
        return "—"
    return f"{part} ({format_percent(part / whole, locale=babel_locale())})"


@admin.register(Agency)
class AgencyAdmin(AgencyScopedAdmin):
    agency_path = "pk"
    form = AgencyForm
    list_display = ["code", "name_fr", "name_ar", "city", "paperless_from", "subscribers", "verified", "paperless"]
    search_fields = ["code", "name_fr", "name_ar", "city"]
    list_filter = ["city"]
    inlines = [AgencyHoursInline, AgencyHoursReductionInline]
    fieldsets = (
        (None, {"fields": ("code", "name_ar", "name_fr", "city", "address", "phone")}),
        (_("Map (for the link that opens the phone's map app)"), {"fields": ("latitude", "longitude")}),
        (_("Paperless roll-out"), {"fields": ("paperless_from",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agency]:
        # The roll-out figures as correlated counts: still one query for the changelist.
        return agencies_with_rollout(queryset=super().get_queryset(request), today=timezone.localdate())

    @admin.display(description=_("subscribers"), ordering="subscriber_count")
    def subscribers(self, obj: Agency) -> int:
        return obj.subscriber_count  # type: ignore[attr-defined]

    @admin.display(description=_("with a verified channel"), ordering="verified_count")
    def verified(self, obj: Agency) -> str:
        return _share(obj.verified_count, obj.subscriber_count)  # type: ignore[attr-defined]

    @admin.display(description=_("e-bills, no paper"), ordering="paperless_count")
    def paperless(self, obj: Agency) -> str:
        return _share(obj.paperless_count, obj.subscriber_count)  # type: ignore[attr-defined]

    def get_urls(self) -> list[URLPattern]:
        rollout = path(
            "rollout/", self.admin_site.admin_view(self.rollout_view), name="accounts_agency_rollout"
        )  # before the default ones, whose "<object_id>/" would take it
        return [rollout, *super().get_urls()]

    def rollout_view(self, request: HttpRequest) -> HttpResponse:
        """Read-only: per agency, the shares and the paper copies asked for each month.
        Built on get_queryset, so a clerk sees the agencies the back office lets them see."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        months, rows = agency_rollout_report(queryset=self.get_queryset(request), today=timezone.localdate())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Paperless roll-out"),
            "months": months,
            "rows": [
                {
                    "agency": row.agency,
                    "subscribers": row.subscribers,
                    "verified": _share(row.verified, row.subscribers),
                    "paperless": _share(row.paperless, row.subscribers),
                    "paper_copies": row.paper_copies,
                    "paper_copies_total": sum(row.paper_copies),
                }
                for row in rows
            ],
        }
        return TemplateResponse(request, "admin/accounts/agency/rollout.html", context)


class PaperBillsFilter(admin.SimpleListFilter):
    """Who gets paper bills today, by the one rule (accounts.selectors), not only by
    the subscriber's own choice: their agency may have stopped paper."""

    title = _("bills today")
    parameter_name = "bills"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("e", _("e-bills, no paper")), ("paper", _("paper bills"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> QuerySet[Subscriber]:
        paperless = subscriber_paperless_q(today=timezone.localdate())
        if self.value() == "e":
            return queryset.filter(paperless)
        if self.value() == "paper":
            return queryset.exclude(paperless)
        return queryset


@admin.register(Subscriber)
class SubscriberAdmin(PhoneAwareSearchMixin, AgencyScopedAdmin):
    agency_path = "agency"
    ordering = ["-pk"]  # the changelist's own default, declared so autocomplete pages are stable
    phone_lookup = "user__phone"
    list_display = ["full_name", "user", "phone", "agency", "preferred_language", "paperless", "created_at"]
    list_filter = ["agency", "preferred_language", "paperless", PaperBillsFilter]
    list_select_related = ["user", "agency"]
    search_fields = ["full_name", "full_name_ar", "national_id", "user__email", "user__phone", "accounts__number"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at"]

    @admin.display(description=_("phone number"), ordering="user__phone")
    def phone(self, obj: Subscriber) -> str:
        return obj.user.phone or ""

    def get_fields(self, request: HttpRequest, obj: Subscriber | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        # Who logs in as this customer changes only through a re-link request a
        # supervisor approves (billing.approvals), never by a plain edit.
        return [("login" if f == "user" else f) for f in fields if f != "login"] if obj else fields

    def get_readonly_fields(self, request: HttpRequest, obj: Subscriber | None = None) -> list[str]:
        return [*self.readonly_fields, "login"] if obj else self.readonly_fields

    @admin.display(description=_("login"))
    def login(self, obj: Subscriber) -> str:
        url = reverse("admin:billing_changerequest_relink", args=[obj.pk])
        return format_html('{} · <a href="{}">{}</a>', obj.user, url, _("Request a login re-link"))


# --- django-axes' login records, held to the same rules ---------------------
# Login attempts belong to no agency and no role is granted them (accounts.roles):
# only the operator's superusers read them. Re-registered so the guard test's
# rules hold here too, and so its clean-up action says what it needs.
class AccessAttemptAdmin(AgencyScopedAdmin, axes_admin.AccessAttemptAdmin):
    agency_path = GLOBAL

    @admin.action(description=_("Clean up expired attempts"), permissions=["delete"])
    def cleanup_expired_attempts(self, request: HttpRequest, queryset: QuerySet) -> None:
        super().cleanup_expired_attempts(request, queryset)


class AccessLogAdmin(AgencyScopedAdmin, axes_admin.AccessLogAdmin):
    agency_path = GLOBAL


class AccessFailureLogAdmin(AgencyScopedAdmin, axes_admin.AccessFailureLogAdmin):
    agency_path = GLOBAL


if admin.site.is_registered(AccessAttempt):  # settings.AXES_ENABLE_ADMIN
    for _model, _model_admin in [
        (AccessAttempt, AccessAttemptAdmin),
        (AccessLog, AccessLogAdmin),
        (AccessFailureLog, AccessFailureLogAdmin),
    ]:
        admin.site.unregister(_model)
        admin.site.register(_model, _model_admin)


# --- Staff TOTP devices (django-otp), held to the same rules ----------------
# A device belongs to a staff user, not to an agency, and no role is granted it:
# only the operator's superusers see them, to delete a lost phone's device (the
# next login enrols again).
class TOTPDeviceAdmin(AgencyScopedAdmin, otp_totp_admin.TOTPDeviceAdmin):
    agency_path = GLOBAL


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
    admin.site.register(TOTPDevice, TOTPDeviceAdmin)
