"""The back office's admin site: a password alone is not enough for staff.

With `SELFCARE_STAFF_OTP_REQUIRED` (on unless DEBUG), a staff session reaches
no admin page (changelist, change page, autocomplete, index) until it is
verified by a TOTP code (django-otp). A staff user without a confirmed device
is taken to enrolment first: a QR code and the secret in text, confirmed by
one valid code. The subscriber pages are not concerned.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path, reverse

from . import staff_otp


class StaffAdminSite(admin.AdminSite):
    # No app list down the side of every page: at 1,280 px it took 300 px from each
    # list, pushing columns under the filter panel. The index and the breadcrumbs
    # lead to every list.
    enable_nav_sidebar = False

    def has_permission(self, request: HttpRequest) -> bool:
        # Every admin view (autocomplete included) is wrapped by admin_view, which asks this.
        return super().has_permission(request) and staff_otp.staff_is_verified(request)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Password given but no code yet: to the code (or enrolment) page, not the password form again.
        user = request.user
        if user.is_active and user.is_staff and not staff_otp.staff_is_verified(request):
            return redirect(self._otp_url(request))
        return super().login(request, extra_context)

    def _otp_url(self, request: HttpRequest) -> str:
        target = reverse(f"{self.name}:staff_otp", current_app=self.name)
        next_url = request.GET.get("next") or request.POST.get("next")
        return f"{target}?{urlencode({'next': next_url})}" if next_url else target

    def get_urls(self) -> list[URLPattern]:
        return [
            path("otp/", staff_otp.otp_step, {"site": self}, name="staff_otp"),
            *super().get_urls(),
        ]
