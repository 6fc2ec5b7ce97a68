from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from accounts.models import ContactChannel

        # Declares the verification code event in every process (the relay fills its code in).
        from . import verification  # noqa: F401
        from .services import channel_messages_cancel

        # Any removal (the subscriber's page, the admin, a queryset delete) cancels what
        # was queued for the channel; the relay checks again before sending.
        pre_delete.connect(
            lambda sender, instance, **kwargs: channel_messages_cancel(channel=instance),
            sender=ContactChannel, weak=False, dispatch_uid="notifications.channel_messages_cancel",
        )  # fmt: skip
