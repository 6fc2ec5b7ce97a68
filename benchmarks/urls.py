"""The app's URLs plus the baseline: a bare view that reads one row by primary key."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from accounts.models import Agency
from selfcare.urls import urlpatterns as app_urlpatterns


def bare(request: HttpRequest, pk: int) -> HttpResponse:
    agency = Agency.objects.get(pk=pk)
    return HttpResponse(agency.code, content_type="text/plain; charset=utf-8")


urlpatterns = [
    path("bare/<int:pk>/", bare, name="bench_bare"),
    *app_urlpatterns,
]
