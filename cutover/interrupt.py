"""SIGINT and SIGTERM during a shift: give the traffic back, never leave it split.

While traffic may be split, the first signal raises Interrupted in the main thread, where the
state machine turns it into a rollback. While the weights it found are being restored (or the
deployment's last records written), signals are held: a second Ctrl-C, or a CI runner's
SIGTERM after a cancel, cannot abort the restore half-way.
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
        self.pending: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, number: int, _: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self._shielded or self.pending:
            self.log(f"  ({name} received: giving traffic back first; it will not cut that short)")
            return
        self.pending = name
        raise Interrupted(name)

    def __enter__(self) -> Interrupts:
        for number in SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for number, handler in self._previous.items():
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
