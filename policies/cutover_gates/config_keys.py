"""Config keys declared once: each key of a config section is one `Key` row (its field, how it
is read, including its type and range, and its default), and `read` checks a section against
its table. What spans keys (one key's default or range set by another, a key required only on
some platforms) stays with the section's parser.

A malformed value is a `SettingError` naming the key's path, the value given and what is
expected. Pure: no I/O, no third-party imports. The stack's config (components/config.py) and
the analysis settings (analysis_config.py) are declared with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class SettingError(ValueError):
    """One key of a config section is malformed."""

    def __init__(self, key: str, given: Any, expected: str) -> None:
        super().__init__(f"{key}: got {given!r}; expected {expected}")
        self.key, self.given, self.expected = key, given, expected


Parse = Callable[[str, Any], Any]  # (the key's path, the value given) -> the value


def boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):  # a config string
        return value.lower() == "true"
    raise SettingError(key, value, "true or false")


def whole(low: int, high: int) -> Parse:
    """A whole number from `low` to `high` (a config string or a float output of one too)."""

    def parse(key: str, value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingError(key, value, f"a whole number from {low} to {high}")
        return value

    return parse


def number(low: float, high: float) -> Parse:
    def parse(key: str, value: Any) -> float:
        try:
            found = float(value)
        except (TypeError, ValueError):
            raise SettingError(key, value, f"a number from {low:g} to {high:g}") from None
        if isinstance(value, bool) or found != found or not low <= found <= high:
            raise SettingError(key, value, f"a number from {low:g} to {high:g}")
        return found

    return parse


def text(pattern: str, expected: str) -> Parse:
    """A string matching `pattern` whole."""
    compiled = re.compile(pattern)

    def parse(key: str, value: Any) -> str:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise SettingError(key, value, expected)
        return value

    return parse


def one_of(choices: Iterable[str], expected: str) -> Parse:
    allowed = tuple(choices)

    def parse(key: str, value: Any) -> str:
        if value not in allowed:
            raise SettingError(key, value, expected)
        return str(value)

    return parse


def optional(parse: Parse) -> Parse:
    """`parse`, or None where no value is given (a key whose absence means "none")."""

    def parse_optional(key: str, value: Any) -> Any:
        return None if value is None else parse(key, value)

    return parse_optional


def section(key: str, value: Any) -> dict[str, Any]:
    """A JSON object (Pulumi hands a program an object config value as its JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise SettingError(key, value, f"a JSON object ({e.msg})") from None
    if not isinstance(value, dict):
        raise SettingError(key, value, "an object")
    return value


REQUIRED: Any = object()  # the default of a key that must be given


@dataclass(frozen=True)
class Key:
    """One key of a section: its field, how it is read, and its default: a value, `REQUIRED`,
    or a function of the fields read before it (and the section's context) for a default set
    by another key."""

    field: str
    parse: Parse
    default: Any = REQUIRED


def read(
    found: Mapping[str, Any],
    keys: Mapping[str, Key],
    path: str = "",
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The fields of the section `found` (at `path`) by its table: unknown keys refused, each
    key parsed, in the table's order, from its value or default. SettingError otherwise."""
    prefix = f"{path}." if path else ""
    extra = sorted(set(found) - set(keys))
    if extra:
        raise SettingError(
            f"{prefix}{extra[0]}", found[extra[0]], f"one of the known keys {sorted(keys)}"
        )
    values: dict[str, Any] = dict(context or {})
    for name, key in keys.items():
        given = found.get(name, key.default)
        if callable(given) and name not in found:
            given = given(values)
        if given is REQUIRED:
            try:
                key.parse(prefix + name, None)
            except SettingError as e:
                raise SettingError(e.key, None, f"{e.expected} (required)") from None
        values[key.field] = key.parse(prefix + name, given)
    return {key.field: values[key.field] for key in keys.values()}
