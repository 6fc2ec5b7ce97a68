from __future__ import annotations

from django.urls import path

from . import views

app_name = "payments"

# Inside the language prefixes (subscriber pages); the API is in payments/urls.py.
urlpatterns = [
    path("accounts/<account_number:number>/pay/", views.pay, name="pay"),
    path("accounts/<account_number:number>/payments/", views.history, name="history"),
    path("pay/orders/<str:reference>/", views.order_result, name="order_result"),
    path("receipts/<str:receipt_number>/", views.receipt, name="receipt"),
    path("receipts/<str:receipt_number>/print/", views.receipt_print, name="receipt_print"),
]
