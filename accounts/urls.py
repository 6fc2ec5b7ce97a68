from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.password_reset, name="password_reset"),
    path("password-reset/sent/", views.password_reset_done, name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("password-reset/done/", views.password_reset_complete, name="password_reset_complete"),
    path("contact/", views.channels, name="channels"),
    path("contact/paperless/", views.paperless, name="paperless"),
    path("contact/<int:pk>/verify/", views.channel_verify, name="channel_verify"),
    path("contact/<int:pk>/resend/", views.channel_resend, name="channel_resend"),
    path("contact/<int:pk>/edit/", views.channel_edit, name="channel_edit"),
    path("contact/<int:pk>/remove/", views.channel_remove, name="channel_remove"),
]
