"""Reads about subscribers that views of several apps share."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from .models import Subscriber


def subscriber_or_404(request: HttpRequest) -> Subscriber:
    """The logged-in subscriber; staff without a subscriber profile get 404, not 500."""
    try:
        return request.user.subscriber  # type: ignore[union-attr]
    except Subscriber.DoesNotExist:
        raise Http404("No subscriber profile") from None
