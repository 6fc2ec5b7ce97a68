from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from .forms import LimitedPasswordResetForm, LoginForm
from .models import Subscriber
from .selectors import agency_cards
from .services import subscriber_set_language


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
    template_name="accounts/password_reset_confirm.html",
    success_url=reverse_lazy("accounts:password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="accounts/password_reset_complete.html"
)
