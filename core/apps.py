from __future__ import annotations

import logging

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self) -> None:
        from .logging import MaskSecretsInPaths

        # gunicorn sets up its own loggers (settings.LOGGING must not replace their
        # handlers): its access and error lines get the same mask.
        for name in ("gunicorn.access", "gunicorn.error"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, MaskSecretsInPaths) for f in logger.filters):
                logger.addFilter(MaskSecretsInPaths())
