"""Request-wide guards that no view has to remember."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.middleware.locale import LocaleMiddleware
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django_otp.middleware import OTPMiddleware

from .exceptions import error_body
from .hostile import text_is_storable

FORM_URLENCODED = "application/x-www-form-urlencoded"
# Everything under it answers JSON (payments/urls.py), a refusal here included.
API_PREFIX = "/api/"


class RefuseUnstorableInputMiddleware:
    """A 400 for a NUL byte (or a lone surrogate) in the path, the query string,
    a cookie or a urlencoded form body.

    Any of those used to travel on into a lookup (`/bills/%00/`, `?q=%00` in the
    admin, a session cookie) where PostgreSQL refused it with a 500. Forms
    already refuse NUL field by field; this covers what views, the admin and
    the session read straight from the request. Multipart bodies are left to
    the forms: parsing one here would consume the stream a view may read.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self._storable(request):
            if request.path_info.startswith(API_PREFIX):
                # The bank API's errors are always JSON in its one shape (README "Bank and wallet API").
                return JsonResponse(
                    error_body(code="validation_error", message="The request holds a character that cannot be stored."),
                    status=400,
                )
            return HttpResponseBadRequest(b"Bad request: the request holds a character that cannot be stored.")
        return self.get_response(request)

    @staticmethod
    def _storable(request: HttpRequest) -> bool:
        texts: list[str] = [request.path]
        for key, values in request.GET.lists():
            texts += [key, *values]
        for key, value in request.COOKIES.items():
            texts += [key, value]
        if request.method == "POST" and request.content_type == FORM_URLENCODED:
            for key, values in request.POST.lists():
                texts += [key, *values]
        return all(text_is_storable(text) for text in texts)


class NoStoreForPrivatePagesMiddleware:
    """`Cache-Control: no-store` on what shows a subscriber's data or the back
    office: any response to a logged-in user, and every admin page.

    A shared computer's browser cache or a proxy must not keep a bill or a
    customer file. A view that set its own Cache-Control keeps it; the public
    login page and static files (served before this runs) stay cacheable.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.has_header("Cache-Control"):
            return response
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or _is_admin_path(request.path_info):
            add_never_cache_headers(response)
            patch_cache_control(response, no_store=True, private=True)
        return response


def _is_admin_path(path: str) -> bool:
    # /<language>/admin/…, as i18n_patterns writes it.
    parts = path.split("/", 3)
    return len(parts) > 2 and parts[2] == "admin"


# --- The signed bank API skips what only people's pages need -----------------

# Signed JSON endpoints (payments/urls.py): no cookie, session, login, CSRF token,
# language or flash message means anything there; the signature is the caller's
# identity. The API's docs and schema (/api/docs/, /api/schema/) are pages and
# keep the whole chain.
SIGNED_API_PREFIX = "/api/v1/"


def _not_for_signed_api(middleware: type) -> type:
    """`middleware`, passed by for a request under SIGNED_API_PREFIX.

    Measured: these six cost a payment through the API as much CPU as its
    signature check, inbox and allocations together. The guards that matter to
    the API stay in the chain for every path: SecurityMiddleware, the refusal of
    unstorable input, CommonMiddleware, no-store, the audit context (the client
    address), X-Frame-Options and the CSP header.
    """

    # A subclass, so that the checks that look for it (admin, axes) still find it.
    class NotForSignedApi(middleware):  # type: ignore[valid-type,misc]
        def __call__(self, request: HttpRequest) -> HttpResponse:
            if request.path_info.startswith(SIGNED_API_PREFIX):
                return self.get_response(request)
            return super().__call__(request)

    if hasattr(middleware, "process_view"):  # CSRF

        def process_view(self: Any, request: HttpRequest, view: Callable, args: Any, kwargs: Any) -> Any:
            if request.path_info.startswith(SIGNED_API_PREFIX):
                return None
            return middleware.process_view(self, request, view, args, kwargs)

        NotForSignedApi.process_view = process_view

    NotForSignedApi.__name__ = NotForSignedApi.__qualname__ = f"NotForSignedApi[{middleware.__name__}]"
    return NotForSignedApi


SessionMiddlewareNotForApi = _not_for_signed_api(SessionMiddleware)
LocaleMiddlewareNotForApi = _not_for_signed_api(LocaleMiddleware)
AuthenticationMiddlewareNotForApi = _not_for_signed_api(AuthenticationMiddleware)
OTPMiddlewareNotForApi = _not_for_signed_api(OTPMiddleware)
MessageMiddlewareNotForApi = _not_for_signed_api(MessageMiddleware)
