"""Running test code in several threads at the same moment (PostgreSQL race tests)."""

import threading

from django.db import connections


def run_at_once(n: int, fn) -> list:
    """Start n threads that call fn(i) together; return each result or exception."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 (collected for the assertions)
            results[i] = e
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results
