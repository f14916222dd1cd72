"""The pack config a policy accepts, declared once: each key its JSON Schema (its default
included) and how the pack reads it into the policy's typed, frozen config.

The engine validates `--policy-pack-config` against these schemas and fills in their
defaults; `cutover shift`, `drill` and `records verify` validate `--gates-config` against the
same schemas, and read it with the same parsers, without starting the pack. A default is
written in its schema only: a value the engine did not fill in (a config the helper reads, a
direct call) is read from there. Each policy composes its keys with its declaration
(`rules/`). Pure: no I/O, no pulumi imports.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from cutover_gates.freeze import WINDOW_SCHEMA, Window, parse_window
from cutover_gates.keys import ALGORITHMS, TrustedKey, parse_trusted_keys
from cutover_gates.record import SEVERITIES


def _as_given(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Setting:
    """One key of a policy's config: its name, its JSON Schema, which must name a default (the
    engine fills it in), the field of the typed config it sets, and how its value is read
    (ValueError saying what is wrong)."""

    key: str
    field: str
    schema: Mapping[str, Any]
    read: Callable[[Any], Any] = _as_given

    def __post_init__(self) -> None:
        if "default" not in self.schema:
            raise TypeError(f"the setting {self.key} declares no default in its schema")

    def value(self, config: Mapping[str, Any]) -> Any:
        """Its value in `config`, or the schema's default; ValueError naming the key."""
        try:
            return self.read(config[self.key] if self.key in config else self.schema["default"])
        except (ValueError, TypeError) as e:
            raise ValueError(f"{self.key}: {e}") from None


@dataclass(frozen=True)
class PolicyConfig:
    """What every policy's config holds: which stacks are production (mandatory there)."""

    production_stacks: tuple[str, ...]

    def is_production(self, stack: str | None) -> bool:
        """True on a production stack; an unknown stack counts as one (fail closed)."""
        return not stack or any(fnmatch.fnmatchcase(stack, p) for p in self.production_stacks)


@dataclass(frozen=True)
class GateConfig(PolicyConfig):
    """A gate's: the keys whose records count, how many distinct ones (N of M), and how old
    a record may be."""

    trusted_keys: tuple[TrustedKey, ...]
    required: int
    max_age: timedelta


@dataclass(frozen=True)
class SignoffConfig(GateConfig):
    """The security sign-off's: also the findings allowed, by severity (each one limited must
    be named by a sign-off)."""

    max_findings: Mapping[str, int]


@dataclass(frozen=True)
class FreezeConfig(GateConfig):
    """The change freeze's: also the windows in which traffic moves only with an emergency."""

    windows: tuple[Window, ...]

    def active_window(self, now: datetime) -> Window | None:
        """The freeze window `now` falls in, if any."""
        return next((w for w in self.windows if w.contains(now)), None)


C = TypeVar("C", bound=PolicyConfig)


@dataclass(frozen=True)
class ConfigDeclaration(Generic[C]):
    """A policy's config: its keys (every policy's `productionStacks` first) and its shape."""

    shape: type[C]
    settings: tuple[Setting, ...]

    def __post_init__(self) -> None:
        wanted = sorted(f.name for f in fields(self.shape))
        given = sorted(s.field for s in self.settings)
        if wanted != given:
            raise TypeError(f"{self.shape.__name__} has fields {wanted}; its keys set {given}")

    def properties(self) -> dict[str, Any]:
        """The JSON Schema properties the pack reports for the policy."""
        return {s.key: dict(s.schema) for s in self.settings}

    def parse(self, config: Mapping[str, Any]) -> C:
        """The typed config from `config` (the policy's, defaults filled in or not); ValueError
        naming the key when a value cannot be read."""
        return self.shape(**{s.field: s.value(config) for s in self.settings})


def declare(shape: type[C], *settings: Setting) -> ConfigDeclaration[C]:
    """`shape`'s config from its own keys and the one every policy accepts."""
    return ConfigDeclaration(shape, (PRODUCTION_STACKS, *settings))


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


PRODUCTION_STACKS = Setting(
    "productionStacks",
    "production_stacks",
    {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "description": "Stack name patterns (fnmatch) treated as production: the policy is "
        "mandatory on them and advisory elsewhere, unless enforcementLevel names a level.",
        "default": ["prod", "prod-*", "production", "production-*", "*-prod"],
    },
    _texts,
)
_TIME = {"type": "string", "format": "date-time"}
_KEY = {
    "oneOf": [
        {"type": "string", "pattern": "^[A-Za-z0-9+/]{43}=$"},
        {
            "type": "object",
            "properties": {
                "algorithm": {"enum": list(ALGORITHMS)},
                "publicKey": {"type": "string", "minLength": 1},
                "name": {"type": "string"},
                "kms": {"type": "string"},
                "notBefore": _TIME,
                "notAfter": _TIME,
                "revoked": _TIME,
            },
            "required": ["algorithm", "publicKey"],
            "additionalProperties": False,
        },
    ]
}
TRUSTED_KEYS = Setting(
    "trustedKeys",
    "trusted_keys",
    {
        "type": "array",
        "items": _KEY,
        "description": "Trusted public keys: base64 of a raw Ed25519 key, or {algorithm, "
        "publicKey, name, kms, notBefore, notAfter, revoked} (`cutover keys new` and `cutover "
        "keys show --kms-key` print them); each key once.",
        "default": [],
    },
    lambda entries: tuple(parse_trusted_keys(list(entries))),
)
REQUIRED = Setting(
    "required",
    "required",
    {
        "type": "integer",
        "minimum": 1,
        "description": "Records from this many distinct trusted keys (N of M).",
        "default": 1,
    },
    int,
)


def max_age_hours(default: float, what: str) -> Setting:
    """The age bound of a policy's records: every kind has one, so a record signed long ago
    (or back-dated by whoever holds a key) does not count for ever."""
    schema = {"type": "number", "minimum": 1, "default": default,
              "description": f"The oldest {what} record that counts, in hours since its issue."}  # fmt: skip
    return Setting("maxAgeHours", "max_age", schema, lambda h: timedelta(hours=float(h)))


def max_age_days(default: float, what: str) -> Setting:
    schema = {"type": "number", "minimum": 0.01, "default": default,
              "description": f"The oldest {what} record that counts, in days since its issue."}  # fmt: skip
    return Setting("maxAgeDays", "max_age", schema, lambda d: timedelta(days=float(d)))


def gate_settings(max_age: Setting) -> tuple[Setting, ...]:
    """What every gate's config holds: its trusted keys, N of M, its records' age bound."""
    return TRUSTED_KEYS, REQUIRED, max_age


# Allowed findings by severity: a critical one never, unless the config says otherwise.
_FINDINGS: dict[str, dict[str, Any]] = {
    s: {"type": "integer", "minimum": 0, **({"default": 0} if s == "critical" else {})}
    for s in SEVERITIES
}


def _limits(value: Any) -> dict[str, int]:
    """The findings a sign-off may report, by severity: those given, and each severity whose
    schema has a default (so zero critical unless the config allows some)."""
    given = dict(value)
    return {
        s: int(given[s] if s in given else _FINDINGS[s]["default"])
        for s in SEVERITIES
        if s in given or "default" in _FINDINGS[s]
    }


MAX_FINDINGS = Setting(
    "maxFindings",
    "max_findings",
    {
        "type": "object",
        "properties": _FINDINGS,
        "additionalProperties": False,
        "description": "The findings a security sign-off may report, by severity; each one "
        "limited must be named by the sign-off (critical is limited to 0 unless given).",
        "default": {},
    },
    _limits,
)
WINDOWS = Setting(
    "windows",
    "windows",
    {"type": "array", "items": WINDOW_SCHEMA, "default": []},
    lambda entries: tuple(parse_window(e) for e in entries),
)
