"""WhatsApp through Meta's Cloud API: template messages, and status webhooks.

Business-initiated messages must use a pre-approved template:
POST {graph}/{phone_number_id}/messages with a bearer token and
{"messaging_product": "whatsapp", "to": ..., "type": "template", "template": {...}}.
Status webhooks are signed: X-Hub-Signature-256 = "sha256=" + HMAC-SHA256(app secret, raw body).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings

from ..models import Message
from .base import SendResult, TransientError
from .http import post

# One approved template per event; its body parameters are the message's.
TEMPLATE_LANGUAGE = {"ar": "ar", "fr": "fr", "en": "en"}


class WhatsAppCloudTransport:
    name = "whatsapp_cloud"

    def send(self, message: Message) -> SendResult:
        url = f"{settings.WHATSAPP_GRAPH_URL.rstrip('/')}/{settings.WHATSAPP_PHONE_NUMBER_ID}/messages"
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.address.lstrip("+"),
            "type": "template",
            "biz_opaque_callback_data": message.dedupe_key,
            "template": {
                "name": message.template_name or f"selfcare_{message.event}",
                "language": {"code": TEMPLATE_LANGUAGE.get(message.language, "en")},
                "components": [
                    {
                        "type": "body",
                        "parameters": [{"type": "text", "text": str(p)} for p in message.template_params],
                    }
                ],
            },
        }
        text = post(
            url,
            name="Graph API",
            body=json.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {settings.WHATSAPP_ACCESS_TOKEN}", "Content-Type": "application/json"},
        )
        try:
            return SendResult(provider_message_id=json.loads(text)["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TransientError(f"unreadable Graph API reply: {text[:200]}") from exc


STATUS = {
    "sent": Message.Status.SENT,
    "delivered": Message.Status.DELIVERED,
    "read": Message.Status.READ,
    "failed": Message.Status.FAILED,
}


def signature_valid(raw_body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256=") or not settings.WHATSAPP_APP_SECRET:
        return False
    try:
        # Compared as bytes: compare_digest refuses a str with non-ASCII
        # characters (a header is latin-1), which used to answer 500.
        given = header.removeprefix("sha256=").encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = hmac.new(settings.WHATSAPP_APP_SECRET.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), given)
