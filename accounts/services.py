"""Writes for subscribers and staff."""

from __future__ import annotations

from .models import Language, Subscriber


def subscriber_set_language(*, subscriber: Subscriber, language: str) -> None:
    """Remember the page language, which later also picks the language of messages."""
    if language in Language.values and subscriber.preferred_language != language:
        subscriber.preferred_language = language
        subscriber.save(update_fields=["preferred_language"])
