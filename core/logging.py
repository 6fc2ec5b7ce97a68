"""Secrets that travel in URLs are masked before any log line is written.

Africa's Talking signs nothing, so its callback URL holds the credential
(/hooks/sms/africastalking/<token>/). django.request ("Not Found: /hooks/…"),
runserver's access lines and gunicorn's all print the path: this filter, set
on them in settings.LOGGING (and on gunicorn's loggers in CoreConfig.ready),
rewrites the line with the token replaced by ***.
"""

from __future__ import annotations

import logging
import re

SECRET_IN_PATH = re.compile(r"(/hooks/sms/africastalking/)[^/\s\"?]+")


def mask(text: str) -> str:
    return SECRET_IN_PATH.sub(r"\1***", text)


class MaskSecretsInPaths(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = mask(message)
        if masked != message:
            # The formatted line replaces msg and args (runserver passes its status in `extra`).
            record.msg, record.args = masked, ()
        return True
