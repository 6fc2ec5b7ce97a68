"""The provider for each channel, chosen in settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from accounts.models import ChannelKind

from .base import Transport


@cache
def _build(name: str) -> Transport:
    if name == "console":
        from .console import ConsoleTransport

        return ConsoleTransport()
    if name == "africastalking":
        from .africastalking import AfricasTalkingTransport

        return AfricasTalkingTransport()
    if name == "whatsapp_cloud":
        from .whatsapp_cloud import WhatsAppCloudTransport

        return WhatsAppCloudTransport()
    if name == "email":
        from .email import EmailTransport

        return EmailTransport()
    raise ValueError(f"Unknown notification provider {name!r}")


def transport_for(channel_kind: str) -> Transport:
    name = {
        ChannelKind.SMS: settings.SELFCARE_SMS_PROVIDER,
        ChannelKind.WHATSAPP: settings.SELFCARE_WHATSAPP_PROVIDER,
        ChannelKind.EMAIL: settings.SELFCARE_EMAIL_PROVIDER,
    }[channel_kind]
    return _build(name)


def reset() -> None:
    """Forget built transports and the HTTP pool (tests change the settings)."""
    from . import http

    _build.cache_clear()
    http.reset()
