"""Time as the state machine, the lease and the watchdog see it, and the one way to wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Clock:
    """Wall time (leases, journal times), monotonic time (bakes, deadlines) and sleeping;
    the deterministic tests hand in one they move themselves."""

    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def every(self, seconds: Callable[[], float], tick: Callable[[], bool]) -> Callable[[], None]:
        """Call `tick` every `seconds()` in the background until it returns False or the
        returned stop function is called (a daemon thread)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(seconds()) and tick():
                pass

        threading.Thread(target=loop, daemon=True).start()
        return stop.set


def poll_until(
    probe: Callable[[], T | None], timeout: float, clock: Clock, every: float = 0.5
) -> T | None:
    """Call `probe` until it returns something other than None, at most `timeout` seconds
    (it is always called once, and once more at the deadline); that value, or None."""
    deadline = clock.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        left = deadline - clock.monotonic()
        if left <= 0:
            return None
        clock.sleep(min(every, left))
