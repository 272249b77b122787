"""The gunicorn worker the registry is served with: gthread, but a busy worker leaves new
connections to an idle one.

A gthread worker accepts a connection whenever its listening socket is readable, whether or not
a thread is free to serve it, and keeps the connection for its whole life. Clients that keep
their connections open (MLflow's pooled session, a proxy's keep-alive upstream) connect at
about the same moment, and whichever worker wakes first takes most of them: with 8 clients and
2 workers, all 8 connections landed on one worker in 3 trials of 5, whose single core then did
all the work while the other worker idled (bench/README.md has the numbers). This worker stops
listening while every one of its threads is busy, so a connection arriving then goes to a
worker that can serve it at once, and connections end up spread over the workers.

Written against gunicorn 27's ThreadWorker, whose internals it relies on: ``enqueue_req``,
``finish_request`` and ``set_accept_enabled`` (all run on the worker's main thread),
``nr_conns``, ``worker_connections`` and ``alive``. pyproject.toml pins gunicorn below 28 for
that reason; check these against a new major before lifting the pin
(tests/registry_site/test_gunicorn_workers.py runs the worker).
"""

from gunicorn.workers.gthread import ThreadWorker


class BalancedThreadWorker(ThreadWorker):
    in_flight = 0  # requests handed to the thread pool and not yet finished

    def enqueue_req(self, conn):
        self.in_flight += 1
        super().enqueue_req(conn)
        self._listen_if_free()

    def finish_request(self, conn, fs):
        self.in_flight -= 1
        super().finish_request(conn, fs)  # may hand the connection's next request over again
        self._listen_if_free()

    def _listen_if_free(self):
        self.set_accept_enabled(self.nr_conns < self.worker_connections)

    def set_accept_enabled(self, enabled):
        # The run loop asks for True whenever the worker holds fewer connections than its
        # limit; a busy or stopping worker still leaves the listener alone.
        super().set_accept_enabled(enabled and self.alive and self.in_flight < self.cfg.threads)
