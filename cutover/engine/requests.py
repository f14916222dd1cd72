"""What an operator asks of a running shift through the journal: promote or abort.

The journal keeps a request as text (`abort`, `promote-full`, `promote:<step>`; empty once
taken), so releases that wrote those words read each other's; the engine reads them as a
typed `Request` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    ABORT = "abort"
    PROMOTE = "promote"  # the pause before one step, and no other
    PROMOTE_FULL = "promote-full"  # every remaining pause and bake


@dataclass(frozen=True)
class Request:
    action: Action
    index: int | None = None  # the step a PROMOTE is for

    def text(self) -> str:
        """How the journal keeps it."""
        if self.action == Action.PROMOTE:
            return f"promote:{self.index}"
        return str(self.action)

    @classmethod
    def parse(cls, text: str | None) -> Request | None:
        """The request `text` says, or None (nothing requested, already taken, or a word
        this release does not know)."""
        if not text:
            return None
        if text.startswith("promote:") and text[8:].isdigit():
            return cls(Action.PROMOTE, int(text[8:]))
        if text in (Action.ABORT, Action.PROMOTE_FULL):
            return cls(Action(text))
        return None

    def promotes(self, pause_index: int | None) -> bool:
        """Whether it moves the shift on from the pause before step `pause_index` (None:
        not paused; only `promote-full` acts then)."""
        if self.action == Action.PROMOTE_FULL:
            return True
        return (
            self.action == Action.PROMOTE and pause_index is not None and self.index == pause_index
        )


ABORT = Request(Action.ABORT)
PROMOTE_FULL = Request(Action.PROMOTE_FULL)


def promote(index: int) -> Request:
    """The request that promotes the pause before step `index`."""
    return Request(Action.PROMOTE, index)
