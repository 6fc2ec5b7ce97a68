"""Staff who open the portal (the admin's "view site") land in the back office."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from .selectors import NoSubscriberProfile


class StaffToBackOfficeMiddleware:
    """A staff user without a subscriber profile has no subscriber page to see:
    instead of a 404, the back office's index, in the page's language."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, NoSubscriberProfile) and getattr(getattr(request, "user", None), "is_staff", False):
            return HttpResponseRedirect(reverse("admin:index"))
        return None
