"""The subscriber's contact channels (with their verification) and messages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import services as account_services
from accounts.backends import client_address
from accounts.models import ContactChannel
from accounts.selectors import subscriber_has_verified_channel, subscriber_or_404, subscriber_paper_bills
from accounts.services import ChannelError, InvalidAddress

from . import verification
from .forms import ChannelAddForm, ChannelPreferencesForm, ChannelVerifyForm
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
