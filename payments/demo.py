"""The demo's providers: the sandbox bank, whose secret is published so a bank's
engineer can try the API against `make run` with the README's snippet, and
"Konnect (sandbox)", the wallet checkout that `make run` points at the fake
Konnect gateway (`manage.py konnect_fake`)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .gateways.konnect import KEY_ID as KONNECT_KEY_ID
from .models import Provider
from .services import provider_create, provider_secret_set

SANDBOX_NAME = "Sandbox Bank"
SANDBOX_KEY_ID = "sandbox"
# Published in the README: never accepted outside DEBUG.
SANDBOX_SECRET = "sandbox-secret-change-me"  # noqa: S105 - public on purpose


def sandbox_provider_ensure() -> Provider:
    """Create (or reset to the published secret) the sandbox bank; DEBUG only."""
    if not settings.DEBUG:
        raise ImproperlyConfigured("The sandbox bank's secret is public: it is only created with DEBUG=1.")
    provider = Provider.objects.filter(key_id=SANDBOX_KEY_ID).first()
    if provider is None:
        provider, _ = provider_create(name=SANDBOX_NAME, kind=Provider.Kind.BANK, key_id=SANDBOX_KEY_ID)
    # Sealed under this server's key: the demo's key under var/ may have been remade.
    provider_secret_set(provider=provider, secret=SANDBOX_SECRET)
    return provider


KONNECT_NAME = "Konnect (sandbox)"


def konnect_provider_ensure() -> Provider:
    """Create the demo's Konnect provider (key id `konnect`) once; DEBUG only. It never
    signs the bank API (its secret is made and thrown away): Konnect is asked, not told."""
    if not settings.DEBUG:
        raise ImproperlyConfigured("The demo's Konnect provider is only created with DEBUG=1.")
    provider = Provider.objects.filter(key_id=KONNECT_KEY_ID).first()
    if provider is None:
        provider, _secret = provider_create(name=KONNECT_NAME, kind=Provider.Kind.MOBILE_MONEY, key_id=KONNECT_KEY_ID)
    return provider
