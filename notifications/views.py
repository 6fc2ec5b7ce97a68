"""The subscriber's contact channels (with their verification) and messages,
and a forgotten password reset by a code sent to the login phone."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import password_validators_help_texts
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts import services as account_services
from accounts.backends import client_address
from accounts.models import ContactChannel
from accounts.phones import phone_display_local
from accounts.selectors import subscriber_has_verified_channel, subscriber_or_404, subscriber_paper_bills
from accounts.services import ChannelError, InvalidAddress

from . import passwords, verification
from .forms import (
    ChannelAddForm,
    ChannelPreferencesForm,
    ChannelVerifyForm,
    PasswordResetCodeForm,
    PasswordResetPhoneForm,
)
from .selectors import messages_of


@login_required
def message_list(request: HttpRequest) -> HttpResponse:
    subscriber = subscriber_or_404(request)
    page = Paginator(messages_of(subscriber=subscriber), 20).get_page(request.GET.get("page"))
    # The empty page asks for a number only of a subscriber who has none verified.
    has_channel = not page.object_list and subscriber_has_verified_channel(subscriber_id=subscriber.pk)
    return render(request, "notifications/message_list.html", {"page": page, "has_channel": has_channel})


def _channel(request: HttpRequest, pk: int) -> ContactChannel:
    return get_object_or_404(ContactChannel, pk=pk, subscriber=subscriber_or_404(request))


@login_required
def channels(request: HttpRequest) -> HttpResponse:
    """The subscriber's channels, the add form and the paperless choice."""
    subscriber = subscriber_or_404(request)
    form = ChannelAddForm(request.POST or None, initial={"language": subscriber.preferred_language})
    if request.method == "POST" and form.is_valid():
        try:
            channel = verification.channel_add(
                subscriber=subscriber, client=client_address(request), **form.cleaned_data
            )
        except ChannelError as exc:
            form.add_error("address" if isinstance(exc, InvalidAddress) else None, exc.message)
        else:
            if channel.is_verified:
                messages.info(request, _("This channel is already verified."))
                return redirect("notifications:channels")
            messages.success(request, _("We sent a code to %(address)s.") % {"address": _isolated(channel.address)})
            return redirect("notifications:channel_verify", pk=channel.pk)
    return render(
        request,
        "notifications/channels.html",
        {
            "form": form,
            "subscriber": subscriber,
            "channels": subscriber.channels.order_by("kind", "created_at"),
            "paper": subscriber_paper_bills(subscriber_id=subscriber.pk),
        },
    )


@login_required
def channel_verify(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    if channel.is_verified:
        return redirect("notifications:channels")
    form = ChannelVerifyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            verification.channel_verify(channel=channel, code=form.cleaned_data["code"])
        except verification.CodeRejected as exc:
            form.add_error("code", exc.message)
        else:
            messages.success(
                request,
                _("Verified: %(address)s will now receive your messages.") % {"address": _isolated(channel.address)},
            )
            return redirect("notifications:channels")
    return render(request, "notifications/channel_verify.html", {"form": form, "channel": channel})


@login_required
@require_POST
def channel_resend(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    try:
        verification.channel_code_send(channel=channel, client=client_address(request))
    except verification.TooManyCodes as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("We sent a new code to %(address)s.") % {"address": _isolated(channel.address)})
    return redirect("notifications:channel_verify", pk=channel.pk)


@login_required
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    form = ChannelPreferencesForm(request.POST or None, instance=channel)
    if request.method == "POST" and form.is_valid():
        account_services.channel_update(channel=channel, **form.cleaned_data)
        messages.success(request, _("Your choices are saved."))
        return redirect("notifications:channels")
    return render(request, "notifications/channel_edit.html", {"form": form, "channel": channel})


@login_required
@require_POST
def channel_remove(request: HttpRequest, pk: int) -> HttpResponse:
    account_services.channel_remove(channel=_channel(request, pk))
    messages.success(request, _("The channel is removed."))
    return redirect("notifications:channels")


@login_required
@require_POST
def paperless(request: HttpRequest) -> HttpResponse:
    try:
        account_services.subscriber_set_paperless(
            subscriber=subscriber_or_404(request), paperless=request.POST.get("paperless") == "1"
        )
    except ChannelError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your choice for paper bills is saved."))
    return redirect("notifications:channels")


def _isolated(address: str) -> str:
    """A phone number or e-mail inside a translated sentence: isolated (LRI…PDI) so
    an Arabic sentence does not move its "+" to the wrong end."""
    return f"\u2066{address}\u2069"


# --- A forgotten password, reset by a code sent to the login phone ---

# The number typed on the first page (E.164), for the code page: kept in the
# session, so the code page needs nothing from the URL.
RESET_PHONE_KEY = "password_reset_phone"


def password_reset_sms(request: HttpRequest) -> HttpResponse:
    """The number the subscriber logs in with; then, whatever it is, the code page."""
    form = PasswordResetPhoneForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        phone = form.cleaned_data["phone"]
        passwords.password_reset_code_send(phone=phone, client=client_address(request))
        request.session[RESET_PHONE_KEY] = phone
        return redirect("notifications:password_reset_sms_code")
    return render(request, "notifications/password_reset_sms.html", {"form": form})


@sensitive_post_parameters("new_password1", "new_password2")
def password_reset_sms_code(request: HttpRequest) -> HttpResponse:
    phone = request.session.get(RESET_PHONE_KEY)
    if not phone:
        return redirect("notifications:password_reset_sms")
    form = PasswordResetCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            passwords.password_reset_by_code(
                phone=phone,
                code=form.cleaned_data["code"],
                password=form.cleaned_data["new_password1"],
                client=client_address(request),
            )
        except verification.CodeRejected as exc:
            form.add_error("code", exc.message)
        except ValidationError as exc:
            form.add_error("new_password2", exc)
        else:
            del request.session[RESET_PHONE_KEY]
            return redirect("accounts:password_reset_complete")
    return render(
        request,
        "notifications/password_reset_sms_code.html",
        {"form": form, "phone": phone_display_local(phone), "password_rules": password_validators_help_texts()},
    )


@require_POST
def password_reset_sms_resend(request: HttpRequest) -> HttpResponse:
    phone = request.session.get(RESET_PHONE_KEY)
    if not phone:
        return redirect("notifications:password_reset_sms")
    passwords.password_reset_code_send(phone=phone, client=client_address(request))
    messages.info(request, _("If this number can receive codes, a new one is on its way."))
    return redirect("notifications:password_reset_sms_code")
