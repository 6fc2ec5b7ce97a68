from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from accounts.models import ContactChannel
        from accounts.signals import password_changed

        # Declares the code events in every process (the relay fills their codes in).
        from . import verification  # noqa: F401
        from .passwords import password_changed_notify
        from .services import channel_messages_cancel

        # Every password change (portal, SMS code, e-mail link) tells the subscriber,
        # in the transaction that changed it.
        password_changed.connect(
            lambda sender, user, **kwargs: password_changed_notify(user=user),
            weak=False, dispatch_uid="notifications.password_changed_notify",
        )  # fmt: skip

        # Any removal (the subscriber's page, the admin, a queryset delete) cancels what
        # was queued for the channel; the relay checks again before sending.
        pre_delete.connect(
            lambda sender, instance, **kwargs: channel_messages_cancel(channel=instance),
            sender=ContactChannel, weak=False, dispatch_uid="notifications.channel_messages_cancel",
        )  # fmt: skip
