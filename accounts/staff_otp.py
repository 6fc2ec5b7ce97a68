"""Staff's second factor: TOTP enrolment on first login, then a code at every login.

The admin site (adminsite.py) sends an unverified staff session here. Wrong
codes are throttled by django-otp's TOTPDevice itself (growing delays), which
`django_otp.verify_token` applies under a row lock.
"""

from __future__ import annotations

from base64 import b32encode

import django_otp
import segno
from django import forms
from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import User
from .services import staff_device_confirm, staff_device_for_enrolment


def staff_is_verified(request: HttpRequest) -> bool:
    """True when the session passed the second factor, or none is required."""
    if not settings.SELFCARE_STAFF_OTP_REQUIRED:
        return True
    is_verified = getattr(request.user, "is_verified", None)
    return bool(is_verified and is_verified())


class StaffCodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=8,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "dir": "ltr", "autofocus": True}
        ),
    )


def otp_step(request: HttpRequest, site: AdminSite) -> HttpResponse:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return redirect(reverse(f"{site.name}:login", current_app=site.name))
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = ""
    next_url = next_url or reverse(f"{site.name}:index", current_app=site.name)
    if staff_is_verified(request):
        return redirect(next_url)

    assert isinstance(user, User)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    enrolling = device is None
    if enrolling:
        device = staff_device_for_enrolment(user=user)
    form = StaffCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        verified = django_otp.verify_token(user, device.persistent_id, form.cleaned_data["code"].strip())
        if verified is not None:
            if enrolling:
                staff_device_confirm(device=verified)
            django_otp.login(request, verified)
            return redirect(next_url)
        form.add_error("code", _("This code is not right, or too many wrong codes were typed: wait and try again."))
    context = {
        **site.each_context(request),
        "title": _("Set up your second factor") if enrolling else _("Second factor"),
        "form": form,
        "next": next_url,
        "enrolling": enrolling,
    }
    if enrolling:
        context["qr_code"] = segno.make(device.config_url, error="m").svg_data_uri(scale=4, border=2)
        context["secret"] = b32encode(device.bin_key).decode()
    return render(request, "accounts/staff_otp.html", context)
