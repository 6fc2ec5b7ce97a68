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
]
