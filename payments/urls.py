from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView

from . import apis, webhooks
from .apidoc import ApiDocsView

# Outside the language prefixes: a bank signs the exact path it calls.
urlpatterns = [
    path("api/v1/accounts/<str:account_number>/due", apis.AccountDueApi.as_view(), name="api_account_due"),
    path("api/v1/payments", apis.PaymentCreateApi.as_view(), name="api_payment_create"),
    path("api/v1/payments/<str:reference>", apis.PaymentDetailApi.as_view(), name="api_payment_detail"),
    path("api/v1/payments/<str:reference>/reversal", apis.PaymentReversalApi.as_view(), name="api_payment_reversal"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="api_schema"), name="api_docs"),
    re_path(r"^api/", apis.api_not_found),
    # Wallets' callbacks, at the address given to them when a checkout opens.
    path("payments/konnect/webhook", webhooks.konnect_webhook, name="konnect_webhook"),
]
