"""SIGINT, SIGTERM, SIGHUP and a closed output during a command that may move traffic: never
leave it split.

The handlers are installed before anything starts (the smoke test, preflight), whatever
disposition the process inherited: a shift started with SIGINT ignored (a background job, a
runner that ignores it) still stops on Ctrl-C. The first signal raises Interrupted in the main
thread, where the state machine turns it into a rollback (before any traffic moved: nothing
to give back). While the weights it found are being restored, or the deployment's last
records written, signals are held: a second Ctrl-C, or a CI runner's SIGTERM after a cancel,
cannot cut the restore short. Entering again (the shift inside the command) is a no-op.

A terminal that closes sends SIGHUP; an output stream that closes (`cutover shift | head -2`,
a CI log collector gone) is noticed at the next line written (`output_closed`), which stops
the shift the same way, and nothing more is written to it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CLOSED_OUTPUT = "a closed output"


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A signal asked the shift to stop; `name` is the signal's (SIGINT, SIGTERM)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Interrupts:
    """Installs the handlers for as long as it is entered; `shielded()` holds signals."""

    entered: Interrupts | None = None  # the one this process is inside, for `output_closed`

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self._shielded = 0
        self._depth = 0
        self.pending: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, number: int, _: FrameType | None) -> None:
        self.interrupt(signal.Signals(number).name)

    def interrupt(self, name: str) -> None:
        """Stop what runs (Interrupted), or once the restore in progress is done."""
        if self._shielded or self.pending:
            if name != CLOSED_OUTPUT:
                self.log(
                    f"  ({name} received: giving traffic back first; it will not cut that short)"
                )
            self.pending = self.pending or name
            return
        self.pending = name
        raise Interrupted(name)

    def __enter__(self) -> Interrupts:
        self._depth += 1
        if self._depth == 1:
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
            Interrupts.entered = self
        return self

    def __exit__(self, *_: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            Interrupts.entered = None
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


def output_closed() -> None:
    """The output stream closed under a running command: stop it as a signal would (a
    shift gives traffic back), or note it where nothing needs stopping."""
    if Interrupts.entered is not None:
        Interrupts.entered.interrupt(CLOSED_OUTPUT)
