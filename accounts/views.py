from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import password_validators_help_texts
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from .forms import EmailResetSetPasswordForm, LimitedPasswordResetForm, LoginForm, PasswordChangeForm
from .models import Subscriber
from .selectors import agency_cards, subscriber_or_404, user_login_details
from .services import PasswordError, subscriber_set_language, user_password_change


class LoginView(auth_views.LoginView):
    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


def agency_list(request: HttpRequest) -> HttpResponse:
    """Our agencies: addresses, hours (reduced ones while they apply), phones and
    map links, for everybody, logged in or not."""
    today = timezone.localdate()  # the operator's day: a reduction starts at its midnight
    return render(request, "accounts/agency_list.html", {"agencies": agency_cards(today=today), "today": today})


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
    form_class=LimitedPasswordResetForm,
    template_name="accounts/password_reset_form.html",
    email_template_name="accounts/password_reset_email.txt",
    subject_template_name="accounts/password_reset_subject.txt",
    success_url=reverse_lazy("accounts:password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    form_class=EmailResetSetPasswordForm,
    template_name="accounts/password_reset_confirm.html",
    success_url=reverse_lazy("accounts:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html"
)


@login_required
def login_details(request: HttpRequest) -> HttpResponse:
    """How the subscriber logs in (e-mail, phone), and the way to a new password."""
    subscriber_or_404(request)  # staff: the back office, where their login lives
    return render(request, "accounts/login_details.html", {"details": user_login_details(user=request.user)})


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@login_required
def password_change(request: HttpRequest) -> HttpResponse:
    subscriber_or_404(request)
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user_password_change(
                user=request.user,
                current_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password1"],
            )
        except PasswordError as exc:
            form.add_error("old_password", exc.message)
        else:
            # This session goes on; the subscriber's other sessions end (their hash is stale).
            update_session_auth_hash(request, request.user)
            messages.success(request, _("Your password is changed. Your other devices are logged out."))
            return redirect("accounts:login_details")
    return render(
        request, "accounts/password_change.html", {"form": form, "password_rules": password_validators_help_texts()}
    )
