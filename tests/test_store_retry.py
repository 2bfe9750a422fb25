"""The one retry policy: exponential back-off with jitter capped at 10 s, transient errors retried forever
(logged once when failing starts and once when it ends), anything else raised at once."""

from __future__ import annotations

import logging
import random
import threading

import psycopg
import pytest

from store.retry import RetryPolicy, RetryStoppedError, retry

FAST = RetryPolicy(first_delay_s=0.001, max_delay_s=0.004)


def test_delays_grow_exponentially_within_the_jitter_and_stop_at_the_cap() -> None:
    policy, rng = RetryPolicy(), random.Random(1)
    for failures, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0)]:
        delays = [policy.delay_s(failures, rng) for _ in range(200)]
        assert min(delays) >= base * (1 - policy.jitter) and max(delays) <= base * (1 + policy.jitter)
        assert len(set(delays)) > 100, "jittered, not in lockstep"
    assert all(policy.delay_s(n, rng) <= 10.0 for n in range(6, 60))
    assert max(policy.delay_s(40, rng) for _ in range(200)) == pytest.approx(10.0, abs=1e-9)


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.InterfaceError("the connection is closed"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
    ],
)
def test_transient_errors_are_retried_until_the_action_succeeds(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="store.retry")
    calls = [0]
    seen: list[BaseException] = []

    def flaky() -> str:
        calls[0] += 1
        if calls[0] <= 5:
            raise error
        return "done"

    assert retry(flaky, what="test action", policy=FAST, on_failure=seen.append) == "done"
    assert calls[0] == 6 and seen == [error] * 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "test action failing" in warnings[0].getMessage()
    recovered = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(recovered) == 1 and recovered[0].startswith("test action works again after 5 failed attempts")


def test_other_errors_are_not_retried() -> None:
    calls = [0]

    def broken() -> None:
        calls[0] += 1
        raise psycopg.errors.UniqueViolation("duplicate key")

    with pytest.raises(psycopg.errors.UniqueViolation):
        retry(broken, what="test action", policy=FAST)
    assert calls[0] == 1


def test_a_stop_ends_the_retries() -> None:
    stop = threading.Event()

    def down() -> None:
        stop.set()
        raise psycopg.OperationalError("connection refused")

    with pytest.raises(RetryStoppedError, match="test action"):
        retry(down, what="test action", policy=FAST, stop=stop)
