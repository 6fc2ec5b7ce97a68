"""Request-wide guards that no view has to remember."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.cache import add_never_cache_headers, patch_cache_control

from .hostile import text_is_storable

FORM_URLENCODED = "application/x-www-form-urlencoded"


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
