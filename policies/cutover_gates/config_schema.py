"""The pack config each policy accepts (JSON Schema properties), in one place.

The pack declares its policies with these schemas; `cutover preview` validates
`--policy-pack-config` against what the running pack reports, and `cutover shift`, `drill` and
`records verify` validate `--gates-config` against the same schemas without starting the pack.
Pure: no I/O, no pulumi imports.
"""

from __future__ import annotations

from typing import Any

from cutover_gates.contract import (
    CHAIRMAN_APPROVAL_POLICY,
    CHANGE_FREEZE_POLICY,
    ROLLBACK_TESTED_POLICY,
    SECURITY_SIGNOFF_POLICY,
)
from cutover_gates.keys import ALGORITHMS
from cutover_gates.record import SEVERITIES

DEFAULT_PRODUCTION_STACKS = ["prod", "prod-*", "production", "production-*", "*-prod"]
DEFAULT_METRICS = ["HTTPCode_Target_5XX_Count", "TargetResponseTime", "UnHealthyHostCount"]

# Every policy accepts these.
PRODUCTION = {
    "productionStacks": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "description": "Stack name patterns (fnmatch) treated as production: the policy is "
        "mandatory on them and advisory elsewhere, unless enforcementLevel names a level.",
        "default": DEFAULT_PRODUCTION_STACKS,
    }
}
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
_KEYS = {
    "trustedKeys": {
        "type": "array",
        "items": _KEY,
        "description": "Trusted public keys: base64 of a raw Ed25519 key, or {algorithm, "
        "publicKey, name, kms, notBefore, notAfter, revoked} (`cutover keys new` and `cutover "
        "keys show --kms-key` print them).",
        "default": [],
    },
    "required": {
        "type": "integer",
        "minimum": 1,
        "description": "Records from this many distinct trusted keys (N of M).",
        "default": 1,
    },
}


def _max_age_hours(default: float, what: str) -> dict[str, Any]:
    """The age bound of a policy's records: every kind has one, so a record signed long ago
    (or back-dated by whoever holds a key) does not count for ever."""
    return {
        "maxAgeHours": {
            "type": "number",
            "minimum": 1,
            "description": f"The oldest {what} record that counts, in hours since its issue.",
            "default": default,
        }
    }


_WINDOW = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"start": _TIME, "end": _TIME, "reason": {"type": "string"}},
            "required": ["start", "end"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "weekly": {
                    "type": "object",
                    "properties": {
                        "days": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "from": {"type": "string", "pattern": "^([01][0-9]|2[0-4]):[0-5][0-9]$"},
                        "to": {"type": "string", "pattern": "^([01][0-9]|2[0-4]):[0-5][0-9]$"},
                    },
                    "required": ["days", "from", "to"],
                    "additionalProperties": False,
                },
                "timeZone": {"type": "string"},
                "reason": {"type": "string"},
            },
            "required": ["weekly"],
            "additionalProperties": False,
        },
    ]
}

CONFIG_SCHEMAS: dict[str, dict[str, Any]] = {
    CHAIRMAN_APPROVAL_POLICY: {**_KEYS, **_max_age_hours(168, "approval")},
    SECURITY_SIGNOFF_POLICY: {
        **_KEYS,
        **_max_age_hours(168, "security-signoff"),
        "maxFindings": {
            "type": "object",
            "properties": {s: {"type": "integer", "minimum": 0} for s in SEVERITIES},
            "additionalProperties": False,
        },
    },
    ROLLBACK_TESTED_POLICY: {
        **_KEYS,
        "maxAgeDays": {
            "type": "number",
            "minimum": 0.01,
            "description": "The oldest rollback-drill (or stage-exit) record that counts, in "
            "days since its issue.",
            "default": 7,
        },
    },
    CHANGE_FREEZE_POLICY: {
        **_KEYS,
        **_max_age_hours(24, "emergency"),
        "windows": {"type": "array", "items": _WINDOW, "default": []},
    },
    "rollback-ready": {
        "rollbackWindowMinutes": {"type": "integer", "minimum": 0, "default": 60},
    },
    "monitoring-active": {
        "requiredMetrics": {
            "type": "array",
            "items": {"type": "string"},
            "default": DEFAULT_METRICS,
        },
    },
    "weights-valid": {},
    "watchdog-active": {},
    "zero-downtime-settings": {
        "minDeregistrationDelaySeconds": {"type": "integer", "minimum": 0, "default": 5},
        "maxDeregistrationDelaySeconds": {"type": "integer", "maximum": 3600, "default": 300},
    },
    "release-pinned": {},
    "probes-required": {},
}


def properties_of(policy: str) -> dict[str, Any]:
    """The full config schema properties of `policy` (what every policy accepts included)."""
    return {**PRODUCTION, **CONFIG_SCHEMAS[policy]}


def default_of(policy: str, key: str) -> Any:
    """The default of `key` in `policy`'s config, as the schema declares it (the engine fills
    it in; a config read without the engine, as the helper's --gates-config, is not)."""
    return properties_of(policy)[key]["default"]
