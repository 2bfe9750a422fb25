"""One retry policy for every worker: exponential back-off with jitter, capped at 10 s, never giving up.

A transient error (the database or the broker went away, a socket broke, a timeout) is retried; anything
else is a bug and propagates. The first failure of a run of failures is logged as a warning with its
cause, the recovery once with how long it took and how many attempts failed; the attempts in between
only at debug level (one line per outage, not one per attempt).

Users: the ingest store process (connecting, and each batch after a lost connection), the engine's rounds
and the alert publisher. The MQTT clients' reconnects stay paho's own (``reconnect_delay_set``): paho
runs them in its network thread and re-sends what is unacknowledged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,  # connection refused / lost, server shutting down, admin shutdown
    psycopg.InterfaceError,  # the connection object is closed
    OSError,  # sockets (includes ConnectionError)
    TimeoutError,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.25  # each delay is drawn within ± this share, so workers do not retry in lockstep

    def delay_s(self, failures: int, rng: random.Random) -> float:
        """The wait after the ``failures``-th failure in a row (1, 2, …)."""
        base = min(self.first_delay_s * self.factor ** max(failures - 1, 0), self.max_delay_s)
        return min(base * (1.0 + rng.uniform(-self.jitter, self.jitter)), self.max_delay_s)


DEFAULT_POLICY = RetryPolicy()


class Backoff:
    """The failure state of one loop: ``failed`` returns how long to wait, ``succeeded`` ends an outage."""

    def __init__(
        self, what: str, policy: RetryPolicy = DEFAULT_POLICY, *, logger: logging.Logger | None = None
    ) -> None:
        self.what = what
        self.policy = policy
        self.failures = 0
        self._log = logger or log
        self._since = 0.0
        self._rng = random.Random()

    def failed(self, error: BaseException) -> float:
        self.failures += 1
        delay_s = self.policy.delay_s(self.failures, self._rng)
        cause = f"{type(error).__name__}: {str(error).strip()[:300]}"
        if self.failures == 1:
            self._since = time.monotonic()
            self._log.warning(
                "%s failing (%s); retrying with back-off (at most %.0f s apart)",
                self.what,
                cause,
                self.policy.max_delay_s,
            )
        else:
            self._log.debug(
                "%s failed again (attempt %d, %s); next in %.1f s", self.what, self.failures, cause, delay_s
            )
        return delay_s

    def succeeded(self) -> None:
        if self.failures:
            self._log.info(
                "%s works again after %d failed attempts (%.1f s)",
                self.what,
                self.failures,
                time.monotonic() - self._since,
            )
            self.failures = 0


def retry(
    action: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    on_failure: Callable[[BaseException], None] | None = None,
    stop: threading.Event | None = None,
    logger: logging.Logger | None = None,
) -> T:
    """``action()`` until it returns, waiting by the policy after each transient error (``on_failure``
    is called with it first, e.g. to drop a broken connection). With ``stop``: raises
    ``RetryStoppedError`` when it is set during a wait."""
    backoff = Backoff(what, policy, logger=logger)
    while True:
        try:
            result = action()
        except TRANSIENT as error:
            delay_s = backoff.failed(error)
            if on_failure is not None:
                on_failure(error)
            if stop is None:
                time.sleep(delay_s)
            elif stop.wait(delay_s):
                raise RetryStoppedError(what) from error
            continue
        backoff.succeeded()
        return result


class RetryStoppedError(Exception):
    """A retried action was abandoned because its worker was told to stop."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: stopped while retrying")
        self.what = what
