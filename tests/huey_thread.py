"""A real Huey consumer in worker threads of the test process, for tests that need the queue.

The tests' HUEY is a MemoryHuey in immediate mode; inside ``running_consumer()`` it
stops being immediate, so tasks really go through the queue (and scheduled retries
through the consumer's scheduler) to a worker thread, sharing the test's database and
Django's locmem outbox.
"""

import signal
import time
from contextlib import contextmanager


@contextmanager
def running_consumer(workers=2):
    from huey.contrib.djhuey import HUEY

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    HUEY.immediate = False
    consumer = HUEY.create_consumer(
        workers=workers, worker_type="thread", periodic=False, scheduler_interval=1
    )
    try:
        consumer.start()
        yield consumer
    finally:
        consumer.stop(graceful=True)
        HUEY.immediate = True
        # The consumer installs its own SIGINT/SIGTERM handlers; give pytest its own back.
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def wait_for(condition, timeout=20, what="the Huey consumer"):
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
