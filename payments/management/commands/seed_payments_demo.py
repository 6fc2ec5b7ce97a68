from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from payments.demo import SANDBOX_KEY_ID, SANDBOX_SECRET, sandbox_provider_ensure


class Command(BaseCommand):
    help = "Create the demo's sandbox bank, whose API secret is public (DEBUG only)."

    def handle(self, *args, **options) -> None:
        try:
            sandbox_provider_ensure()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f'Bank API (README "Bank and wallet API", docs at /api/docs/): '
            f"X-Provider-Key {SANDBOX_KEY_ID}, secret {SANDBOX_SECRET}"
        )
