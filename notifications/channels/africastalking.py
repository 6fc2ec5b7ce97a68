"""SMS through Africa's Talking's HTTP API.

POST form fields `username`, `to`, `message`, `from` (sender id) with the
`apiKey` header; the JSON reply lists one recipient per number with its
`status`, `statusCode` and `messageId`. Delivery reports come back to our
callback as form fields `id` and `status`.
"""

from __future__ import annotations

import json

from django.conf import settings

from ..models import Message
from .base import PermanentError, SendResult, TransientError
from .http import post

# statusCode values of a recipient: 100-102 accepted; 401-409 the number or the
# account is refused; 500+ the gateway's trouble.
ACCEPTED = {100, 101, 102}
RETRYABLE = {500, 501, 502}


class AfricasTalkingTransport:
    name = "africastalking"

    def send(self, message: Message) -> SendResult:
        data = {
            "username": settings.AFRICASTALKING_USERNAME,
            "to": message.address,
            "message": message.body,
            # Carried so a gateway that honours a client reference drops a repeat.
            "clientReference": message.dedupe_key,
        }
        if settings.AFRICASTALKING_SENDER_ID:
            data["from"] = settings.AFRICASTALKING_SENDER_ID
        text = post(
            settings.AFRICASTALKING_URL,
            name="SMS gateway",
            fields=data,
            encode_multipart=False,
            headers={"apiKey": settings.AFRICASTALKING_API_KEY, "Accept": "application/json"},
        )
        try:
            recipient = json.loads(text)["SMSMessageData"]["Recipients"][0]
            code = int(recipient.get("statusCode", 0))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TransientError(f"unreadable gateway reply: {text[:200]}") from exc
        if code in ACCEPTED:
            return SendResult(provider_message_id=recipient.get("messageId") or None)
        if code in RETRYABLE:
            raise TransientError(f"gateway status {code} {recipient.get('status')}")
        raise PermanentError(f"gateway status {code} {recipient.get('status')}")


# Africa's Talking delivery-report statuses, on our ladder.
REPORT_STATUS = {
    "Success": Message.Status.DELIVERED,
    "Sent": Message.Status.SENT,
    "Buffered": Message.Status.SENT,
    "Submitted": Message.Status.SENT,
    "Rejected": Message.Status.FAILED,
    "Failed": Message.Status.FAILED,
    "Expired": Message.Status.FAILED,
}
