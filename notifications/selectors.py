from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Subscriber

from .models import Message


def messages_of(*, subscriber: Subscriber) -> QuerySet[Message]:
    """What was sent to the subscriber, newest first; verification codes are not listed."""
    return (
        Message.objects.filter(subscriber=subscriber)
        .exclude(event="verification_code")
        .select_related("account")
        .order_by("-created_at", "-pk")
    )
