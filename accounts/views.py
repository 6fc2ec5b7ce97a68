from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from . import services
from .forms import ChannelAddForm, ChannelPreferencesForm, ChannelVerifyForm, LoginForm
from .models import ContactChannel, Subscriber
from .services import subscriber_set_language


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's switch (cookie, translated `next`), plus the subscriber's own choice."""
    response = django_set_language(request)
    if request.user.is_authenticated:
        subscriber = Subscriber.objects.filter(user=request.user).first()
        if subscriber:
            subscriber_set_language(subscriber=subscriber, language=request.POST.get("language", ""))
    return response


password_reset = auth_views.PasswordResetView.as_view(
    template_name="accounts/password_reset_form.html",
    email_template_name="accounts/password_reset_email.txt",
    subject_template_name="accounts/password_reset_subject.txt",
    success_url=reverse_lazy("accounts:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="accounts/password_reset_confirm.html",
    success_url=reverse_lazy("accounts:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html"
)


# --- Contact channels --------------------------------------------------------


def subscriber_or_404(request: HttpRequest) -> Subscriber:
    """The logged-in subscriber; staff without a subscriber profile get 404, not 500."""
    try:
        return request.user.subscriber  # type: ignore[union-attr]
    except Subscriber.DoesNotExist:
        raise Http404("No subscriber profile") from None


def _channel(request: HttpRequest, pk: int) -> ContactChannel:
    return get_object_or_404(ContactChannel, pk=pk, subscriber=subscriber_or_404(request))


@login_required
def channels(request: HttpRequest) -> HttpResponse:
    """The subscriber's channels, the add form and the paperless choice."""
    subscriber = subscriber_or_404(request)
    form = ChannelAddForm(request.POST or None, initial={"language": subscriber.preferred_language})
    if request.method == "POST" and form.is_valid():
        try:
            channel = services.channel_add(subscriber=subscriber, **form.cleaned_data)
        except services.ChannelError as exc:
            form.add_error("address" if isinstance(exc, services.InvalidAddress) else None, exc.message)
        else:
            if channel.is_verified:
                messages.info(request, _("This channel is already verified."))
                return redirect("accounts:channels")
            messages.success(request, _("We sent a code to %(address)s.") % {"address": _isolated(channel.address)})
            return redirect("accounts:channel_verify", pk=channel.pk)
    return render(
        request,
        "accounts/channels.html",
        {"form": form, "subscriber": subscriber, "channels": subscriber.channels.order_by("kind", "created_at")},
    )


@login_required
def channel_verify(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    if channel.is_verified:
        return redirect("accounts:channels")
    form = ChannelVerifyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.channel_verify(channel=channel, code=form.cleaned_data["code"])
        except services.CodeRejected as exc:
            form.add_error("code", exc.message)
        else:
            messages.success(
                request,
                _("Verified: %(address)s will now receive your messages.") % {"address": _isolated(channel.address)},
            )
            return redirect("accounts:channels")
    return render(request, "accounts/channel_verify.html", {"form": form, "channel": channel})


@login_required
@require_POST
def channel_resend(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    try:
        services.channel_code_send(channel=channel)
    except services.TooManyCodes as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("We sent a new code to %(address)s.") % {"address": _isolated(channel.address)})
    return redirect("accounts:channel_verify", pk=channel.pk)


@login_required
def channel_edit(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _channel(request, pk)
    form = ChannelPreferencesForm(request.POST or None, instance=channel)
    if request.method == "POST" and form.is_valid():
        services.channel_update(channel=channel, **form.cleaned_data)
        messages.success(request, _("Your choices are saved."))
        return redirect("accounts:channels")
    return render(request, "accounts/channel_edit.html", {"form": form, "channel": channel})


@login_required
@require_POST
def channel_remove(request: HttpRequest, pk: int) -> HttpResponse:
    services.channel_remove(channel=_channel(request, pk))
    messages.success(request, _("The channel is removed."))
    return redirect("accounts:channels")


@login_required
@require_POST
def paperless(request: HttpRequest) -> HttpResponse:
    try:
        services.subscriber_set_paperless(
            subscriber=subscriber_or_404(request), paperless=request.POST.get("paperless") == "1"
        )
    except services.ChannelError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Your choice for paper bills is saved."))
    return redirect("accounts:channels")


def _isolated(address: str) -> str:
    """A phone number or e-mail inside a translated sentence: isolated (LRI…PDI) so
    an Arabic sentence does not move its "+" to the wrong end."""
    return f"\u2066{address}\u2069"
