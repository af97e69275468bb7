"""The retry policy alone (no database): which failures are retried, how many attempts, the
backoff between them, the log line of each retry and the error that ends the loop."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from app.batch import Attempts, ConcurrentChange, MigrationError


class Failing:
    """Fails with the errors given, one a call, then returns "done"; remembers the attempts."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.attempts: list[int] = []

    def __call__(self, attempt: int) -> str:
        self.attempts.append(attempt)
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def pg(sqlstate: str) -> OperationalError:
    """An error as the driver raises it, with its SQLSTATE."""
    return OperationalError("UPDATE t SET x = 1", {}, PgError(sqlstate))


def policy(limit: int = 5, base_s: float = 0.2, cap_s: float = 30.0, **kw) -> tuple[Attempts, list[float]]:
    slept: list[float] = []
    return Attempts(limit, base_s, cap_s, sleep=slept.append, **kw), slept


def test_retryable_failures_are_retried_with_a_capped_doubling_jittered_backoff():
    attempts, slept = policy(limit=8, base_s=0.2, cap_s=1.0)
    fn = Failing(*(ConcurrentChange("a row changed") for _ in range(6)))
    assert attempts.call("copying", fn) == "done"
    assert fn.attempts == [1, 2, 3, 4, 5, 6, 7]
    assert attempts.retries == 6
    # 0.2 s doubling (half to all of it), never more than the cap
    for k, delay in enumerate(slept, start=1):
        full = min(1.0, 0.2 * 2 ** (k - 1))
        assert full / 2 <= delay <= full, (k, delay)


def test_deadlocks_timeouts_lost_connections_and_concurrent_inserts_are_retried():
    attempts, slept = policy(limit=6)
    fn = Failing(pg("40P01"), pg("55P03"), pg("57014"), pg("08006"), pg("23505"))
    assert attempts.call("copying", fn) == "done"
    assert fn.attempts == [1, 2, 3, 4, 5, 6] and len(slept) == 5


def test_an_error_no_retry_cures_is_raised_itself_at_once():
    attempts, slept = policy()
    seen = []
    fn = Failing(pg("23502"))  # a not-null violation: the same again next time
    with pytest.raises(OperationalError) as raised:
        attempts.call("copying", fn, failed=lambda exc, n, last: seen.append((n, last)))
    assert raised.value.orig.sqlstate == "23502"
    assert fn.attempts == [1] and seen == [(1, True)] and slept == []


def test_the_last_attempt_ends_in_one_line_that_the_run_records():
    recorded = []
    attempts, slept = policy(limit=3, label="toy upgrade", one_line=True, give_up=recorded.append)
    fn = Failing(*(pg("40P01") for _ in range(3)))
    with pytest.raises(MigrationError) as raised:
        attempts.call("claiming a batch", fn)
    message = str(raised.value)
    assert message.startswith("toy upgrade: claiming a batch failed after 3 attempt(s): ")
    assert message.endswith("Nothing was lost; run the same command again to resume")
    assert "\n" not in message and recorded == [message]
    assert fn.attempts == [1, 2, 3] and len(slept) == 2


def test_each_retry_is_one_log_line_naming_the_work_the_error_and_the_attempt(caplog):
    attempts, slept = policy(limit=4, label="toy upgrade")
    with caplog.at_level(logging.WARNING, logger="app.batch"):
        attempts.call(lambda n: f"batch 1..{100 // n}", Failing(ConcurrentChange("a row changed")))
    [line] = [r.getMessage() for r in caplog.records]
    assert line == f"toy upgrade: batch 1..100: a row changed; retrying in {slept[0]:.1f}s (retry 1, attempt 2 of 4)"


def test_a_place_can_end_in_its_own_error_and_clean_up_after_every_attempt():
    attempts, _ = policy(limit=2)
    cleaned = []

    def final(what, exc, n):
        raise RuntimeError(f"{what}: gave up after {n}")

    with pytest.raises(RuntimeError, match="^login: gave up after 2$"):
        attempts.call("login", Failing(pg("40P01"), pg("40P01")), final=final,
                      failed=lambda exc, n, last: cleaned.append((n, last)))
    assert cleaned == [(1, False), (2, True)]


def test_errors_that_pass_are_raised_untouched_and_not_counted():
    attempts, slept = policy()
    cleaned = []
    with pytest.raises(MigrationError, match="paused"):
        attempts.call("phase", Failing(MigrationError("paused")), passes=(MigrationError,),
                      failed=lambda *a: cleaned.append(a))
    assert cleaned == [] and slept == [] and attempts.retries == 0


def test_a_failure_the_policy_does_not_pause_for_is_retried_at_once():
    attempts, slept = policy(pause=lambda exc: exc.orig.sqlstate == "40P01")
    assert attempts.call("login", Failing(pg("23505"), pg("40P01"), pg("23505"))) == "done"
    assert len(slept) == 1 and attempts.retries == 3


def test_the_batch_policy_comes_from_the_settings():
    s = SimpleNamespace(max_batch_attempts=2, backoff_base_ms=100, backoff_cap_ms=150)
    attempts = Attempts.of(s, sleep=lambda _: None)
    assert (attempts.limit, attempts.base_s, attempts.cap_s) == (2, 0.1, 0.15)
    with pytest.raises(ConcurrentChange):
        attempts.call("copying", Failing(ConcurrentChange("1"), ConcurrentChange("2")))
