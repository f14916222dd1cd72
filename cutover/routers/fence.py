"""What a router asks right before it writes (after any read the write is conditional on)."""

from __future__ import annotations

from collections.abc import Callable

# Raises to stop the write, e.g. when the writer's lease no longer covers it.
Fence = Callable[[], None]


def no_fence() -> None:
    """A write nobody else can undo or race (nothing to check)."""
