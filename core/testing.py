"""Helpers for tests that need real concurrency against PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def run_in_threads(target: Callable[[], object], count: int) -> list[BaseException]:
    """Start `count` threads that call `target` at the same instant (a barrier),
    each on its own database connection; returns the exceptions they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def run_at_once(targets: list[Callable[[], object]], *, timeout: float = 120) -> list[object]:
    """Call each target in its own thread, all released at the same instant (a
    barrier), each on its own database connection; returns, in order, what each
    returned or the exception it raised."""
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = targets[index]()
        except BaseException as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(targets))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results
