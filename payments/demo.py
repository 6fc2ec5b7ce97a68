"""The demo's sandbox bank: a provider whose secret is published, so a bank's
engineer can try the API against `make run` with the README's snippet."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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
