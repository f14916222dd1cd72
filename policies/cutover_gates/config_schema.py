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
    ROLLBACK_TESTED_POLICY,
    SECURITY_SIGNOFF_POLICY,
)
from cutover_gates.record import SEVERITIES

DEFAULT_PRODUCTION_STACKS = ["prod", "prod-*", "production", "production-*", "*-prod"]
DEFAULT_METRICS = ["HTTPCode_Target_5XX_Count", "TargetResponseTime", "UnHealthyHostCount"]

# Every policy accepts these.
PRODUCTION = {
    "productionStacks": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "description": "Stack name patterns (fnmatch) treated as production.",
        "default": DEFAULT_PRODUCTION_STACKS,
    }
}
_KEYS = {
    "trustedKeys": {
        "type": "array",
        "items": {"type": "string", "pattern": "^[A-Za-z0-9+/]{43}=$"},
        "description": "Trusted Ed25519 public keys (base64 of 32 bytes; `cutover keys new` prints them).",
        "default": [],
    }
}
_MAX_AGE_HOURS = {"maxAgeHours": {"type": "number", "minimum": 1}}

CONFIG_SCHEMAS: dict[str, dict[str, Any]] = {
    CHAIRMAN_APPROVAL_POLICY: {**_KEYS, **_MAX_AGE_HOURS},
    SECURITY_SIGNOFF_POLICY: {
        **_KEYS,
        **_MAX_AGE_HOURS,
        "maxFindings": {
            "type": "object",
            "properties": {s: {"type": "integer", "minimum": 0} for s in SEVERITIES},
            "additionalProperties": False,
        },
    },
    ROLLBACK_TESTED_POLICY: {
        **_KEYS,
        "maxAgeDays": {"type": "number", "minimum": 0.01, "default": 7},
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
