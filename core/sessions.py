"""Django's `cached_db` sessions, with the database read of a cache miss in one
plain statement.

A subscriber's first page after the cache lost their session (Redis restarted,
the key expired, their first visit of the day) reads the row from PostgreSQL;
building that ORM query cost more than reading the row. Everything else, the
cache, the writes, expiry, is Django's backend unchanged.
"""

from __future__ import annotations

from django.contrib.sessions.backends import cached_db
from django.contrib.sessions.models import Session
from django.utils import timezone

from .sql import columns, fetch_all, instance_from_row

_SESSION_SQL = (
    f"SELECT {columns(Session, 's')} FROM django_session s "  # noqa: S608 - column names from the model
    "WHERE s.session_key = %s AND s.expire_date > %s"
)


class SessionStore(cached_db.SessionStore):
    def _get_session_from_db(self) -> Session | None:
        rows = fetch_all(_SESSION_SQL, [self.session_key, timezone.now()])
        if not rows:
            self._session_key = None  # as Django's: an unknown or expired key starts a new session
            return None
        return instance_from_row(Session, rows[0])
