from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Subscriber

from .models import Message
from .verification import VERIFICATION_CODE


def messages_of(*, subscriber: Subscriber) -> QuerySet[Message]:
    """What was sent to the subscriber, newest first; verification codes are not listed."""
    return (
        Message.objects.filter(subscriber=subscriber)
        .exclude(event=VERIFICATION_CODE.name)
        .order_by("-created_at", "-pk")
    )
