"""Retry work that a transient database error interrupted.

SQLite answers ``database is locked`` when another process holds the write
lock longer than the busy timeout (or at once, when a deferred transaction
tries to upgrade from reading to writing); PostgreSQL aborts one side of a
deadlock or a serialization conflict. None of these mean the work was wrong:
run it again. Each attempt runs in its own ``transaction.atomic()`` block, so a
failed attempt leaves nothing behind (its rows and its ``on_commit`` callbacks
are rolled back) and a retried one is done exactly once.

Retries do not nest: inside another ``retry_transient`` (an nginx callback that
ends a session) the inner work runs once and the outermost one retries the whole,
so attempts never multiply and a transaction is never retried from its middle.
"""

import contextvars
import functools
import logging
import time

from django.db import OperationalError, transaction

logger = logging.getLogger(__name__)

#: Attempts before the error is raised to the caller.
ATTEMPTS = 8
#: Seconds before the second attempt; doubled each time up to ``MAX_DELAY``.
FIRST_DELAY = 0.05
MAX_DELAY = 2.0

# SQLite's messages for a busy database (sqlite3.OperationalError carries no code).
_SQLITE_BUSY = ("database is locked", "database table is locked", "database schema has changed")
# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected, lock_not_available.
_PG_RETRY_CODES = {"40001", "40P01", "55P03"}

_retrying = contextvars.ContextVar("wagtail_live_retrying", default=False)


def is_transient(error):
    """True when ``error`` is a database error that a later attempt may not meet."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__ or error
    if getattr(cause, "sqlstate", None) in _PG_RETRY_CODES:  # psycopg 3
        return True
    if getattr(cause, "pgcode", None) in _PG_RETRY_CODES:  # psycopg 2
        return True
    message = str(error).lower()
    return any(text in message for text in _SQLITE_BUSY)


def in_retry():
    """True inside ``retry_transient``'s work: what follows may be rolled back and run again."""
    return _retrying.get()


def retry_transient(fn, *args, attempts=ATTEMPTS, **kwargs):
    """Return ``fn(*args, **kwargs)``, run in ``transaction.atomic()`` and retried on transient errors.

    ``fn`` must be safe to run again after a rolled-back attempt (anything it
    does outside the database must be idempotent or wait for ``on_commit``).
    Other exceptions propagate at once; a transient error that outlasts
    ``attempts`` tries propagates too (an ``OperationalError``).
    """
    if _retrying.get():
        with transaction.atomic():  # the enclosing retry_transient retries the whole
            return fn(*args, **kwargs)
    delay = FIRST_DELAY
    for attempt in range(1, attempts + 1):
        token = _retrying.set(True)
        try:
            with transaction.atomic():
                return fn(*args, **kwargs)
        except OperationalError as error:
            if not is_transient(error) or attempt == attempts:
                raise
            logger.warning(
                "%s: transient database error (attempt %s of %s), retrying: %s",
                getattr(fn, "__qualname__", fn),
                attempt,
                attempts,
                error,
            )
        finally:
            _retrying.reset(token)
        time.sleep(delay)
        delay = min(delay * 2, MAX_DELAY)
    raise AssertionError("unreachable")  # pragma: no cover


def retrying(fn):
    """Decorator form of :func:`retry_transient`."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        return retry_transient(fn, *args, **kwargs)

    return wrapped
