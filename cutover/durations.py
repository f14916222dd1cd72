"""Durations on the command line: `90s`, `5m`, `1h30m`, `2d`, or plain seconds."""

from __future__ import annotations

import re
from collections.abc import Callable

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError naming the expected form."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {text!r}; expected e.g. 30s, 5m, 1h30m or seconds")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """`seconds` the way they are given: 90 -> 1m30s, 86400 -> 1d (whole seconds but for
    under one)."""
    if seconds < 1:
        return f"{seconds:g}s"
    left, said = round(seconds), ""
    for unit in ("d", "h", "m", "s"):
        count, left = divmod(left, int(_UNITS[unit]))
        said += f"{count}{unit}" if count else ""
    return said


def duration_of(most: str, allow_zero: bool = False) -> Callable[[str], float]:
    """A parser of durations up to `most` (a bake of years is a typo, and a number that large
    stops meaning anything), longer than zero unless `allow_zero`; ValueError saying why."""
    ceiling = parse_duration(most)

    def parse(text: str) -> float:
        seconds = parse_duration(text)
        if seconds <= 0 and not allow_zero:
            raise ValueError(f"{text!r} must be longer than zero")
        if seconds > ceiling:
            raise ValueError(f"{text!r} is longer than {most}, the most it may be")
        return seconds

    return parse
