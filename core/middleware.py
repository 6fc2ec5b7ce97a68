"""Request-wide guards that no view has to remember."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

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
