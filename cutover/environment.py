"""The environment values the helper reads (`CUTOVER_*`, and `AWS_MAX_ATTEMPTS`, which bounds
its AWS calls), parsed in this one place.

A value that is not what its name says (`CUTOVER_LEASE_SECONDS=abc`, an empty one from a CI
variable that was never filled in, a timeout of a day) is one line naming the variable and
what it takes (ConfigError, exit 2), raised where the value is first read: before anything is
journaled, locked or moved. Unset means the default; set means it must be right.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from cutover.errors import ConfigError


class Bounds(NamedTuple):
    """What a number in the environment may be: above `least` (or equal, with `closed`), at
    most `most`, an `example` for the message."""

    least: float
    most: float
    example: str
    closed: bool = False


# Every number the helper reads from its environment, with the values that make sense.
NUMBERS = {
    "CUTOVER_LEASE_SECONDS": Bounds(0, 3600, "30"),
    "CUTOVER_AWS_CONNECT_TIMEOUT": Bounds(0, 300, "2"),
    "CUTOVER_AWS_READ_TIMEOUT": Bounds(0, 300, "4"),
    "CUTOVER_KUBE_CONNECT_TIMEOUT": Bounds(0, 300, "2"),
    "CUTOVER_KUBE_READ_TIMEOUT": Bounds(0, 300, "4"),
    "AWS_MAX_ATTEMPTS": Bounds(1, 20, "3", closed=True),
    "CUTOVER_KUBE_ATTEMPTS": Bounds(1, 20, "3", closed=True),
}
WHOLE = ("AWS_MAX_ATTEMPTS", "CUTOVER_KUBE_ATTEMPTS")


def number(name: str, default: float) -> float:
    """The number in $`name` (`default` when unset); ConfigError naming the variable when it
    is empty, not a number, or outside what it may be (NUMBERS)."""
    bounds = NUMBERS[name]
    text = os.environ.get(name)
    if text is None:
        return default
    kind = "a whole number" if name in WHOLE else "a number of seconds"
    expected = f"expected {kind}, e.g. {name}={bounds.example} (unset it for the default)"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not text.strip() or math.isnan(value) or (name in WHOLE and not value.is_integer()):
        raise ConfigError(f"{name}={text!r}; {expected}")
    low = value >= bounds.least if bounds.closed else value > bounds.least
    if not low or value > bounds.most:
        raise ConfigError(
            f"{name}={text}; expected {'at least' if bounds.closed else 'more than'} "
            f"{bounds.least:g} and at most {bounds.most:g}"
        )
    return value


def check_numbers() -> None:
    """Every number the environment sets, parsed once before a command does anything (each is
    read again where it is used, by `number`): ConfigError naming the first that is wrong."""
    for name in NUMBERS:
        number(name, 0.0)


def whole(name: str, default: int) -> int:
    """`number` for a count (attempts)."""
    return int(number(name, default))


def text(name: str) -> str | None:
    """The text in $`name` (None when unset); ConfigError when it is set but empty, as a CI
    variable whose secret is missing is: that is never taken for "not given"."""
    value = os.environ.get(name)
    if value is not None and not value.strip():
        raise ConfigError(f"{name} is set but empty; give it a value, or unset it")
    return value
