from __future__ import annotations

from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from accounts import views as account_views
from billing import views as billing_views

admin.site.site_header = "Selfcare"
admin.site.site_title = _("Selfcare back office")
admin.site.index_title = _("Agency back office")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says: off to the static icon
    (WhiteNoise serves it, cached), looked up per request as the manifest names it."""
    return HttpResponsePermanentRedirect(static("favicon.ico"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    # Language switch lives outside the prefixes so it can change the prefix.
    path("i18n/setlang/", account_views.set_language, name="set_language"),
    path("hooks/", include("notifications.hook_urls")),
    # The bank and wallet API (signed, JSON, no language prefix) and its docs.
    path("", include("payments.urls")),
    # The short link printed in SMS; it lands on the bill in the reader's language.
    path("b/<str:number>", billing_views.bill_short_link, name="bill_short_link"),
]

urlpatterns += i18n_patterns(
    path("", RedirectView.as_view(pattern_name="billing:dashboard"), name="home"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("billing.urls")),
    path("", include("notifications.urls")),
    path("", include("payments.page_urls")),
)
if settings.SANDBOX_BANK_ENABLED:
    # The demo's pretend bank: no language prefix, as a bank's site has its own.
    urlpatterns.insert(0, path("sandbox-bank/", include("sandbox_bank.urls")))
