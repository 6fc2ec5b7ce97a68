"""Provider callbacks: outside the language prefixes, no session, no CSRF."""

from django.urls import path

from . import webhooks

urlpatterns = [
    path("sms/africastalking/<str:token>/", webhooks.africastalking_report, name="hook_africastalking"),
    path("whatsapp/", webhooks.whatsapp_webhook, name="hook_whatsapp"),
]
