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


def provider_name(channel_kind: str) -> str:
    return {
        ChannelKind.SMS: settings.SELFCARE_SMS_PROVIDER,
        ChannelKind.WHATSAPP: settings.SELFCARE_WHATSAPP_PROVIDER,
        ChannelKind.EMAIL: settings.SELFCARE_EMAIL_PROVIDER,
    }[channel_kind]


def transport_for(channel_kind: str) -> Transport:
    return _build(provider_name(channel_kind))


# Channels that ring a phone: their non-urgent messages wait out quiet hours.
PHONE_CHANNELS = frozenset({ChannelKind.SMS, ChannelKind.WHATSAPP})


def quiet_channel_kinds() -> frozenset[str]:
    """The channel kinds whose non-urgent messages wait out quiet hours.

    Quiet hours spare a person's phone at night. The console provider (the demo's,
    `make run`) prints to a terminal and wakes nobody, and `make run` runs no beat
    that would send what waits: holding its messages until 08:00 would leave them
    pending for good. With a real provider a channel waits, whatever the hour.
    """
    return frozenset(kind for kind in PHONE_CHANNELS if provider_name(kind) != "console")


def reset() -> None:
    """Forget built transports and the HTTP pool (tests change the settings)."""
    from . import http

    _build.cache_clear()
    http.reset()
