from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.gateways.konnect_fake import KonnectFake


class Command(BaseCommand):
    help = "Serve the fake Konnect gateway on 127.0.0.1 for the demo (DEBUG only); `make run` starts it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8011)
        parser.add_argument("--api-key", default=None, help="the key it accepts (default: KONNECT_API_KEY)")
        parser.add_argument("--wallet-id", default=None, help="the wallet it accepts (default: KONNECT_WALLET_ID)")

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("The fake Konnect gateway takes any payment: it only runs with DEBUG=1.")
        api_key = options["api_key"] or settings.KONNECT_API_KEY
        if not api_key:
            raise CommandError("Give --api-key or set KONNECT_API_KEY: Selfcare sends it, the fake checks it.")
        try:
            fake = KonnectFake(
                api_key=api_key, wallet_id=options["wallet_id"] or settings.KONNECT_WALLET_ID, port=options["port"]
            )
        except OSError as exc:
            raise CommandError(f"Cannot listen on 127.0.0.1:{options['port']}: {exc}") from exc
        fake.verbose = options["verbosity"] > 1
        self.stdout.write(f"Fake Konnect gateway at {fake.url} (Selfcare's KONNECT_API_URL); no money moves.")
        try:
            fake.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            fake.stop()
