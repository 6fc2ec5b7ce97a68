"""Tasks the benchmark worker imports (celery worker -I benchmarks.tasks)."""

from __future__ import annotations

import os

import redis
from celery import shared_task

_redis = redis.Redis.from_url(os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9"))


@shared_task(ignore_result=True)
def tick() -> None:
    """As close to nothing as a task can be while still being counted."""
    _redis.incr("bench:ticks")
