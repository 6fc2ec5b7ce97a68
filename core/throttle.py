"""One small rate limiter for everything that must not be repeated without end:
login failures per client address, password-reset mails, verification codes.

Counters live in the default cache (Redis in production, so every process
shares them) in fixed windows that start with the first event. Keys are hashed:
an address or a phone number is never written to the cache in clear.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache


def _key(scope: str, key: str) -> str:
    return f"throttle:{scope}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def throttle_count(*, scope: str, key: str) -> int:
    return int(cache.get(_key(scope, key)) or 0)


def throttle_exceeded(*, scope: str, key: str, limit: int) -> bool:
    """True once `limit` events were counted in the current window (nothing is counted)."""
    return throttle_count(scope=scope, key=key) >= limit


def throttle_hit(*, scope: str, key: str, limit: int, window: int) -> bool:
    """Count one event; True if it is within `limit` for the window of `window` seconds."""
    cache_key = _key(scope, key)
    cache.add(cache_key, 0, timeout=window)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.set(cache_key, 1, timeout=window)
        count = 1
    return count <= limit


def throttle_allow(*, limits: list[tuple[str, str, int, int]]) -> bool:
    """Several limits on one event (per address, per client…): refused if any is
    already reached; counted against all of them only when allowed, so a refused
    request does not use up the others."""
    if any(throttle_exceeded(scope=scope, key=key, limit=limit) for scope, key, limit, _w in limits):
        return False
    return all([throttle_hit(scope=scope, key=key, limit=limit, window=window) for scope, key, limit, window in limits])
