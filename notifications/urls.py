from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("messages/", views.message_list, name="messages"),
    path("contact/", views.channels, name="channels"),
    path("contact/paperless/", views.paperless, name="paperless"),
    path("contact/<int:pk>/verify/", views.channel_verify, name="channel_verify"),
    path("contact/<int:pk>/resend/", views.channel_resend, name="channel_resend"),
    path("contact/<int:pk>/edit/", views.channel_edit, name="channel_edit"),
    path("contact/<int:pk>/remove/", views.channel_remove, name="channel_remove"),
    # One path segment each: two would be taken for the e-mail link's <uidb64>/<token>/.
    path("password-reset/sms/", views.password_reset_sms, name="password_reset_sms"),
    path("password-reset/sms-code/", views.password_reset_sms_code, name="password_reset_sms_code"),
    path("password-reset/sms-resend/", views.password_reset_sms_resend, name="password_reset_sms_resend"),
]
