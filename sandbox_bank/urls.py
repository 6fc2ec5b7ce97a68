from __future__ import annotations

from django.urls import path

from . import views

app_name = "sandbox_bank"

urlpatterns = [path("checkout/", views.checkout, name="checkout")]
