"""SIGINT and SIGTERM during a command that may move traffic: never leave it split.

The handlers are installed before anything starts (the smoke test, preflight), whatever
disposition the process inherited: a shift started with SIGINT ignored (a background job, a
runner that ignores it) still stops on Ctrl-C. The first signal raises Interrupted in the main
thread, where the state machine turns it into a rollback (before any traffic moved: nothing
to give back). While the weights it found are being restored, or the deployment's last
records written, signals are held: a second Ctrl-C, or a CI runner's SIGTERM after a cancel,
cannot cut the restore short. Entering again (the shift inside the command) is a no-op.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A signal asked the shift to stop; `name` is the signal's (SIGINT, SIGTERM)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Interrupts:
    """Installs the handlers for as long as it is entered; `shielded()` holds signals."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self._shielded = 0
        self._depth = 0
        self.pending: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, number: int, _: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self._shielded or self.pending:
            self.log(f"  ({name} received: giving traffic back first; it will not cut that short)")
            self.pending = self.pending or name
            return
        self.pending = name
        raise Interrupted(name)

    def __enter__(self) -> Interrupts:
        self._depth += 1
        if self._depth == 1:
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for number, handler in self._previous.items():
                # an inherited SIG_IGN for SIGINT is not put back: Ctrl-C stops what follows
                if number == signal.SIGINT and handler == signal.SIG_IGN:
                    handler = signal.default_int_handler
                signal.signal(number, handler)

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1


class NoInterrupts(Interrupts):
    """For a state machine run off the main thread (signals cannot be handled there)."""

    def __init__(self) -> None:
        super().__init__(lambda _: None)

    def __enter__(self) -> Interrupts:
        return self

    def __exit__(self, *_: object) -> None:
        return None
