"""Reading the numbers a policy judges a stack's draining and readiness by: a value missing or
malformed is `Undecided`, which the policy says as a violation that fails closed, naming what
declares it (a value unknown during preview fails closed in plumbing.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from cutover_gates.facts import ColorFacts, Res
from cutover_gates.rules.policy import Report


class Undecided(Exception):
    """A value a check needs is missing or malformed: what is wrong, and what declares it."""

    def __init__(self, what: str, fix: str) -> None:
        super().__init__(what)
        self.what, self.fix = what, fix


def failing_closed(report: Report, urn: str | None = None) -> Callable[[Undecided], None]:
    def said(e: Undecided) -> None:
        message = f"Cannot be decided: {e.what}. Failing closed: {e.fix}."
        if urn:
            report(message, urn)
        else:
            report(message)

    return said


def seconds(value: Any, what: str, fix: str) -> float:
    """A non-negative number of seconds as the engine sends one (a float, or a marker's text)."""
    try:
        found = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        found = math.nan
    if not found >= 0:  # nan too
        raise Undecided(f"{what} is {value!r}, not a number of seconds", fix)
    return found


def declared(fleet: ColorFacts, marker: str, key: str) -> float:
    """The color's declared `marker` (contract.py), which the stack's `key` sets."""
    fix = f"declare cutover:{key} (the program marks every color resource with it)"
    text = fleet.declared(marker)
    if text is None:
        raise Undecided(f"{fleet.color} declares no {marker} (marker cutover:{marker})", fix)
    return seconds(text, f"{fleet.color}'s {marker}", fix)


def route_declared(route: Res, marker: str, key: str) -> float | None:
    text = route.marker(marker)
    if text is None:
        return None
    return seconds(text, f"the HTTPRoute's {marker}", f"set cutover:{key} to a number of seconds")
