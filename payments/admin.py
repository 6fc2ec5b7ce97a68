"""Back office for payments: providers and their secrets, payments, the API inbox.

Payments and inbox rows are read-only: a correction is a reversal through the
service, never an edit. A provider's signing secret is shown once, on the page
that follows its creation or rotation, and never stored in a message or a session.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.scoping import GLOBAL, AgencyScopedAdmin
from billing.models import ServiceAccount
from core.admin_money import MoneyFieldsAdmin
from core.money import babel_locale, format_money

from . import counter, settlement
from .admin_forms import CounterAccountForm, CounterPaymentForm, ProviderForm, ReversalForm, SettlementUploadForm
from .models import (
    Allocation,
    ApiInbox,
    CounterPayment,
    Payment,
    PaymentOrder,
    Provider,
    SettlementImport,
    SettlementLine,
)
from .selectors import counter_receipt, settlement_may_import_any, settlement_providers
from .services import provider_create, provider_rotation_end, provider_secret_rotate

# A file of thousands of lines shows this many on its import's page; the list
# of settlement lines has them all, filtered and searchable.
INLINE_LINES_SHOWN = 500


class ReadOnlyAdmin(AgencyScopedAdmin):
    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


def _secret_page(request: HttpRequest, *, provider: Provider, secret: str, admin_site: admin.AdminSite) -> HttpResponse:
    response = TemplateResponse(
        request,
        "admin/payments/provider/secret.html",
        {
            **admin_site.each_context(request),
            "title": _("Signing secret of %(name)s") % {"name": provider.name},
            "provider": provider,
            "secret": secret,
            "opts": Provider._meta,
        },
    )
    # The secret must not linger in a cache or the browser's history.
    response["Cache-Control"] = "no-store"
    return response


@admin.register(Provider)
class ProviderAdmin(AgencyScopedAdmin):
    agency_path = GLOBAL  # the operator's partners, no agency's; counters are no secret either
    form = ProviderForm
    list_display = ["name", "kind", "agency", "key_id", "is_active", "rotating", "created_at"]
    list_filter = ["kind", "is_active"]
    list_select_related = ["agency"]
    search_fields = ["name", "key_id"]
    fields = ["name", "kind", "agency", "key_id", "is_active", "created_at"]
    actions = ["rotate_secret", "end_rotation"]

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> list[str]:
        # The key id is what the provider's systems send: fixed once issued. An
        # agency's counter stays its agency's counter (payments.counter makes them).
        if obj is not None and obj.kind == Provider.Kind.COUNTER:
            return ["kind", "agency", "key_id", "created_at"]
        return ["agency", "key_id", "created_at"] if obj else ["agency", "created_at"]

    @admin.display(description=_("rotation under way"), boolean=True)
    def rotating(self, obj: Provider) -> bool:
        return obj.is_rotating

    def save_model(self, request: HttpRequest, obj: Provider, form, change: bool) -> None:
        if change:
            obj.save(update_fields=["name", "kind", "is_active"])
            return
        provider, secret = provider_create(name=obj.name, kind=obj.kind, key_id=obj.key_id, is_active=obj.is_active)
        obj.pk, obj.secret_sealed, obj.created_at = provider.pk, provider.secret_sealed, provider.created_at
        request._provider_secret = secret  # type: ignore[attr-defined]  # for response_add, this request only

    def response_add(self, request: HttpRequest, obj: Provider, post_url_continue=None) -> HttpResponse:
        secret = getattr(request, "_provider_secret", None)
        if secret is None:  # pragma: no cover - save_model always sets it
            return super().response_add(request, obj, post_url_continue)
        return _secret_page(request, provider=obj, secret=secret, admin_site=self.admin_site)

    @admin.action(
        permissions=["change"],
        description=_("Issue a new signing secret (the current one keeps working until the rotation ends)"),
    )
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Provider]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Rotate one provider at a time."), messages.WARNING)
            return None
        provider = queryset.get()
        if provider.kind == Provider.Kind.COUNTER:
            self.message_user(request, _("An agency counter signs no API requests: it has no secret to give."))
            return None
        secret = provider_secret_rotate(provider=provider)
        return _secret_page(request, provider=provider, secret=secret, admin_site=self.admin_site)

    @admin.action(permissions=["change"], description=_("End the rotation: the previous secret stops working"))
    def end_rotation(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        count = sum(provider_rotation_end(provider=p) for p in queryset)
        self.message_user(
            request,
            ngettext("%(count)d rotation ended.", "%(count)d rotations ended.", count) % {"count": count},
            messages.SUCCESS if count else messages.WARNING,
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # Payments keep their provider; a provider that stops is made inactive.
        return False


class AllocationInline(admin.TabularInline):
    model = Allocation
    fields = ["bill", "allocated"]
    readonly_fields = ["bill", "allocated"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        return super().get_queryset(request).select_related("payment", "bill")

    @admin.display(description=_("amount"))
    def allocated(self, obj: Allocation) -> str:
        return format_money(obj.amount, obj.payment.currency)


@admin.register(Payment)
class PaymentAdmin(MoneyFieldsAdmin, ReadOnlyAdmin):
    agency_path = "account__subscriber__agency"
    list_display = ["receipt_number", "reference", "provider", "account", "amount", "status", "paid_at"]
    list_filter = ["status", "provider", "channel"]
    money_fields = {"amount": "currency", "credit": "currency"}
    list_select_related = ["provider", "account"]
    search_fields = ["receipt_number", "reference", "account__number"]
    date_hierarchy = "paid_at"
    inlines = [AllocationInline]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(PaymentOrder)
class PaymentOrderAdmin(MoneyFieldsAdmin, ReadOnlyAdmin):
    """A subscriber's checkouts: what a clerk needs when a customer says "I paid
    with my wallet and my bill still shows due" (the order's status, the
    provider's reference to quote to the wallet, and why it failed)."""

    agency_path = "account__subscriber__agency"
    list_display = ["reference", "created_at", "account", "provider", "amount", "status", "provider_ref"]
    list_filter = ["status", "provider"]
    money_fields = {"amount": "currency"}
    list_select_related = ["provider", "account"]
    search_fields = ["reference", "provider_ref", "account__number"]
    date_hierarchy = "created_at"
    raw_id_fields = ["subscriber", "account", "payment"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]


@admin.register(ApiInbox)
class ApiInboxAdmin(ReadOnlyAdmin):
    # The providers' traffic, operator-wide; no role grants it to agency staff.
    agency_path = GLOBAL
    list_display = ["received_at", "provider", "method", "path", "status", "response_status"]
    list_filter = ["status", "provider", "method"]
    list_select_related = ["provider"]
    search_fields = ["path", "error"]
    date_hierarchy = "received_at"
    exclude = ["body"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields if f.name != "body"] + ["raw_body"]

    @admin.display(description=_("raw body"))
    def raw_body(self, obj: ApiInbox) -> str:
        return bytes(obj.body).decode("utf-8", errors="backslashreplace")


# --- Agency counters ---------------------------------------------------------------


@admin.register(CounterPayment)
class CounterPaymentAdmin(MoneyFieldsAdmin, AgencyScopedAdmin):
    """Payments taken at the counter: recorded through `counter_payment_record`
    on the add page, printed as a receipt, never edited; a supervisor reverses one."""

    # The counter that took the money, as its cash drawer and its settlement say.
    agency_path = "agency"
    list_display = ["receipt_number", "created_at", "account", "amount", "method", "status", "clerk", "agency"]
    list_filter = ["method", "payment__status", "agency"]
    list_select_related = ["payment", "payment__account", "clerk", "agency"]
    money_fields = {"amount_tendered": "payment.currency", "change_given": "payment.currency"}
    search_fields = ["payment__receipt_number", "payment__account__number", "cheque_number"]
    date_hierarchy = "created_at"
    fields = [
        "receipt_number", "account", "amount", "method", "status", "cheque_number", "cheque_bank",
        "card_last_digits", "card_authorisation", "amount_tendered", "change_given", "clerk", "agency",
        "created_at", "payment", "receipt",
    ]  # fmt: skip
    readonly_fields = fields
    actions = ["reverse"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_reverse_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(counter.REVERSE_PERMISSION)

    @admin.display(description=_("receipt number"), ordering="payment__receipt_number")
    def receipt_number(self, obj: CounterPayment) -> str:
        return obj.payment.receipt_number

    @admin.display(description=_("account"))
    def account(self, obj: CounterPayment) -> str:
        return str(obj.payment.account)

    @admin.display(description=_("amount"))
    def amount(self, obj: CounterPayment) -> str:
        return format_money(obj.payment.amount, obj.payment.currency)

    @admin.display(description=_("status"))
    def status(self, obj: CounterPayment) -> str:
        return obj.payment.get_status_display()

    @admin.display(description=_("receipt"))
    def receipt(self, obj: CounterPayment) -> str:
        url = reverse("admin:payments_counterpayment_receipt", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Print the receipt"))

    def get_urls(self):  # type: ignore[no-untyped-def]
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/receipt/", view(self.receipt_view), name="payments_counterpayment_receipt"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **extra) -> dict:  # type: ignore[no-untyped-def]
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:  # type: ignore[no-untyped-def]
        """Find the account (GET ?account=), then take the payment (POST) → the receipt."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        accounts = self.admin_site._registry[ServiceAccount].get_queryset(request).select_related("subscriber")
        asked = request.POST.get("account") if request.method == "POST" else request.GET.get("account")
        finder = CounterAccountForm(
            {"account": asked} if asked else None, accounts=accounts, admin_site=self.admin_site
        )
        account = finder.cleaned_data["account"] if asked and finder.is_valid() else None
        account_refused = bool(asked) and account is None
        if account_refused:
            # Shown empty again: the search box would look the refused value up to display it.
            finder = CounterAccountForm(accounts=accounts, admin_site=self.admin_site)
        form = None
        if account is not None:
            form = CounterPaymentForm(request.POST if request.method == "POST" else None, account=account)
            if request.method == "POST" and form.is_valid():
                data = form.cleaned_data
                try:
                    recorded = counter.counter_payment_record(
                        clerk=request.user, account=account, amount=data["amount"], method=data["method"],
                        bill=data["bill"], cheque_number=data["cheque_number"], cheque_bank=data["cheque_bank"],
                        card_last_digits=data["card_last_digits"], card_authorisation=data["card_authorisation"],
                        amount_tendered=data["amount_tendered"], reference=f"CTR-{data['token']}",
                    )  # fmt: skip
                except counter.CounterPaymentRefused as exc:
                    form.add_error(None, exc.message)
                else:
                    self.message_user(
                        request,
                        _("Payment recorded: receipt %(receipt)s.") % {"receipt": recorded.payment.receipt_number},
                    )
                    return redirect("admin:payments_counterpayment_receipt", recorded.pk)
        main = form if form is not None else finder
        fieldsets = CounterPaymentForm.FIELDSETS if form is not None else [(None, {"fields": ["account"]})]
        context = self._context(
            request,
            title=_("Record a counter payment"),
            finder=finder,
            account_refused=account_refused,
            form=form,
            account=account,
            adminform=helpers.AdminForm(main, fieldsets, {}, model_admin=self),
            media=self.media + finder.media + (form.media if form else forms.Media()),
            open_bills=[(b, format_money(b.amount_due, b.currency)) for b in form.open_bills] if form else [],
            total_due=format_money(form.total_due, form.currency) if form else "",
            credit=format_money(account.credit, settings.SELFCARE_CURRENCY) if account else "",
            add=True,
            has_view_permission=self.has_view_permission(request),
        )
        return TemplateResponse(request, "admin/payments/counterpayment/add.html", context)

    def receipt_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.get_object(request, str(pk))  # another agency's: 404
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        found, allocations = counter_receipt(counter_payment=obj)
        payment, locale = found.payment, babel_locale()

        def money(amount):  # type: ignore[no-untyped-def]
            return format_money(amount, payment.currency, locale=locale)

        context = self._context(
            request,
            title=_("Payment receipt"),
            counter_payment=found,
            payment=payment,
            account=payment.account,
            amount=money(payment.amount),
            allocations=[(a.bill, money(a.amount)) for a in allocations],
            credit=money(payment.credit) if payment.credit else "",
            tendered=money(found.amount_tendered) if found.amount_tendered is not None else "",
            change=money(found.change_given) if found.change_given is not None else "",
            paid_at=timezone.localtime(payment.paid_at),
            printed_at=timezone.localtime(),
            clerk_name=found.clerk.get_full_name() or found.clerk.email,
        )
        # Not cached anywhere: the back office's pages are all no-store (core.middleware).
        return TemplateResponse(request, "admin/payments/counterpayment/receipt.html", context)

    @admin.action(description=_("Reverse the selected payments (asks for the reason)"), permissions=["reverse"])
    def reverse(self, request: HttpRequest, queryset: QuerySet[CounterPayment]) -> HttpResponse | None:
        form = ReversalForm(request.POST if "reason" in request.POST else None)
        if form.is_valid():
            done = 0
            for counter_payment in queryset.select_related("payment__provider"):
                try:
                    done += counter.counter_payment_reverse(
                        counter_payment=counter_payment, reason=form.cleaned_data["reason"], user=request.user
                    )
                except counter.CounterPaymentRefused as exc:
                    self.message_user(request, f"{counter_payment}: {exc.message}", messages.ERROR)
            self.message_user(
                request,
                ngettext("%(count)d payment reversed.", "%(count)d payments reversed.", done) % {"count": done},
                messages.SUCCESS if done else messages.WARNING,
            )
            return None
        context = self._context(
            request,
            title=_("Reverse counter payments"),
            form=form,
            queryset=queryset.select_related("payment", "payment__account"),
            action_checkbox_name=helpers.ACTION_CHECKBOX_NAME,
            select_across=request.POST.get("select_across", "0"),
        )
        return TemplateResponse(request, "admin/payments/counterpayment/reverse.html", context)


# --- Settlement files ---------------------------------------------------------------


class CappedLinesFormSet(BaseInlineFormSet):
    def get_queryset(self):  # type: ignore[no-untyped-def]
        if not hasattr(self, "_capped"):
            self._capped = list(super().get_queryset()[:INLINE_LINES_SHOWN])
        return self._capped


class SettlementLineInline(admin.TabularInline):
    """The file's lines and ours it lacks, on the import's page; ?outcome= filters them."""

    model = SettlementLine
    fields = [
        "line_number", "reference", "file_amount", "paid_at", "outcome", "our_payment", "our_amount", "our_status",
    ]  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    formset = CappedLinesFormSet

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[SettlementLine]:
        queryset = super().get_queryset(request).select_related("payment")
        outcome = request.GET.get("outcome")
        if outcome in SettlementLine.Outcome.values:
            queryset = queryset.filter(outcome=outcome)
        return queryset

    @admin.display(description=_("our payment"))
    def our_payment(self, obj: SettlementLine) -> str:
        if obj.payment is None:
            return "—"
        url = reverse("admin:payments_payment_change", args=[obj.payment_id])
        return format_html('<a href="{}">{}</a>', url, obj.payment.receipt_number)

    @admin.display(description=_("amount in the file"))
    def file_amount(self, obj: SettlementLine) -> str:
        return format_money(obj.amount, obj.currency) if obj.amount is not None else "—"

    @admin.display(description=_("our amount"))
    def our_amount(self, obj: SettlementLine) -> str:
        return format_money(obj.payment.amount, obj.payment.currency) if obj.payment else "—"

    @admin.display(description=_("our status"))
    def our_status(self, obj: SettlementLine) -> str:
        return obj.payment.get_status_display() if obj.payment else "—"


@admin.register(SettlementImport)
class SettlementImportAdmin(AgencyScopedAdmin):
    """Settlement files imported, each with its result; the add page imports one
    (payments.settlement), nothing is edited afterwards."""

    # A counter's files are its agency's; bank and wallet files (no agency) are
    # seen by those who see every agency.
    agency_path = "provider__agency"
    list_display = [
        "uploaded_at", "provider", "file_name", "period_start", "period_end", "lines_count", "matched_count",
        "missing_ours_count", "missing_theirs_count", "mismatch_count", "uploaded_by",
    ]  # fmt: skip
    list_filter = ["provider", "uploaded_at"]
    list_select_related = ["provider", "uploaded_by"]
    search_fields = ["file_name", "sha256", "lines__reference"]
    date_hierarchy = "uploaded_at"
    fields = [
        "provider", "file_name", "sha256", "uploaded_by", "uploaded_at", "period_start", "period_end",
        "lines_count", "outcomes",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [SettlementLineInline]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):  # type: ignore[no-untyped-def]
        queryset, _duplicates = super().get_search_results(request, queryset, search_term)
        return queryset.distinct(), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return settlement_may_import_any(user=request.user)  # type: ignore[arg-type]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("result"))
    def outcomes(self, obj: SettlementImport) -> str:
        change = reverse("admin:payments_settlementimport_change", args=[obj.pk])
        lines = reverse("admin:payments_settlementline_changelist")
        rows = [
            (SettlementLine.Outcome.MATCHED, obj.matched_count, obj.matched_total),
            (SettlementLine.Outcome.AMOUNT_MISMATCH, obj.mismatch_count, obj.mismatch_total),
            (SettlementLine.Outcome.MISSING_OURS, obj.missing_ours_count, obj.missing_ours_total),
            (SettlementLine.Outcome.MISSING_THEIRS, obj.missing_theirs_count, obj.missing_theirs_total),
        ]
        body = format_html_join(
            "",
            '<tr class="outcome-{}"><th scope="row"><a href="{}?outcome={}">{}</a></th><td>{}</td>'
            '<td><bdi>{}</bdi></td><td><a href="{}?settlement_import__id__exact={}&amp;outcome__exact={}">{}</a></td></tr>',
            (
                (
                    outcome.value, change, outcome.value, outcome.label, count, format_money(total, obj.currency),
                    lines, obj.pk, outcome.value, _("all lines"),
                )
                for outcome, count, total in rows
            ),
        )  # fmt: skip
        table = format_html(
            '<table id="settlement-outcomes"><thead><tr><th scope="col">{}</th><th scope="col">{}</th>'
            '<th scope="col">{}</th><th scope="col"></th></tr></thead><tbody>{}</tbody></table>',
            _("outcome"),
            _("lines"),
            _("total"),
            body,
        )
        if obj.lines_count + obj.missing_theirs_count <= INLINE_LINES_SHOWN:
            return table
        note = _("Below, the first %(count)d lines only; “all lines” lists every one.") % {"count": INLINE_LINES_SHOWN}
        return format_html('{}<p class="help">{}</p>', table, note)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:  # type: ignore[no-untyped-def]
        if not self.has_add_permission(request):
            raise PermissionDenied
        providers = settlement_providers(user=request.user)  # type: ignore[arg-type]
        form = SettlementUploadForm(request.POST or None, request.FILES or None, providers=providers)
        errors: list = []
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                result = settlement.settlement_import(
                    provider=data["provider"], file=data["file"], user=request.user,
                    period_start=data["period_start"], period_end=data["period_end"],
                )  # fmt: skip
            except settlement.SettlementRefused as exc:
                errors = exc.errors
                form.add_error(
                    None,
                    ngettext(
                        "The file was not imported: %(count)d problem, listed below.",
                        "The file was not imported: %(count)d problems, listed below.",
                        len(errors),
                    )
                    % {"count": len(errors)},
                )
            else:
                self.message_user(request, _("The settlement file was imported."))
                return redirect("admin:payments_settlementimport_change", result.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Import a settlement file"),
            "adminform": helpers.AdminForm(
                form, [(None, {"fields": list(SettlementUploadForm.base_fields)})], {}, model_admin=self
            ),
            "form": form,
            "media": self.media + form.media,
            "errors_shown": errors[: settlement.MAX_ERRORS_SHOWN],
            "errors_more": max(0, len(errors) - settlement.MAX_ERRORS_SHOWN),
            "add": True,
        }
        return TemplateResponse(request, "admin/payments/settlementimport/add.html", context)


@admin.register(SettlementLine)
class SettlementLineAdmin(MoneyFieldsAdmin, ReadOnlyAdmin):
    """Every line of every import, to filter by outcome across files or search a reference."""

    agency_path = "settlement_import__provider__agency"
    list_display = ["settlement_import", "line_number", "reference", "amount", "paid_at", "outcome", "payment"]
    list_filter = ["outcome", "settlement_import__provider"]
    money_fields = {"amount": "currency"}
    list_select_related = ["settlement_import__provider", "payment"]
    search_fields = ["reference", "payment__receipt_number"]
    raw_id_fields = ["settlement_import", "payment"]

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> list[str]:
        return [f.name for f in self.model._meta.fields]
