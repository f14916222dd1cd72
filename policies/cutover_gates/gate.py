"""Judging a gate record against the pack's config: the one decision the pack and the helper share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cutover_gates.contract import (
    APPROVAL,
    ROLLBACK_DRILL,
    SECURITY_SIGNOFF,
    TRUSTED_KEYS_OF,
)
from cutover_gates.record import SEVERITIES, Expected, RecordInvalid, findings, verify

HOW_TO = {
    APPROVAL: "Ask the chairman to sign one with `cutover approve`",
    SECURITY_SIGNOFF: "Have security automation sign one with `cutover signoff`",
    ROLLBACK_DRILL: "Run `cutover drill` against this stack (it signs a rollback-drill record)",
}


class NoTrustedKeys(RecordInvalid):
    """The policy's config names no trusted keys: nothing can pass."""


def max_age(kind: str, config: Mapping[str, Any]) -> timedelta | None:
    if kind == "rollback-drill":
        return timedelta(days=float(config.get("maxAgeDays", 7)))
    hours = config.get("maxAgeHours")
    return timedelta(hours=float(hours)) if hours is not None else None


def judge(
    kind: str, document: Any, expected: Expected, config: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The record body when `document` passes the `kind` gate under `config` (the config of
    the policy TRUSTED_KEYS_OF[kind]); RecordInvalid saying why otherwise."""
    keys = list(config.get("trustedKeys") or [])
    if not keys:
        raise NoTrustedKeys(
            f"no trusted keys for {kind} records in the policy pack's config: set `trustedKeys` "
            f"of {TRUSTED_KEYS_OF[kind]} in the pack config (never in the stack)"
        )
    try:
        body = verify(document, keys, expected, now, max_age(kind, config))
    except ValueError as e:
        if isinstance(e, RecordInvalid):
            raise
        raise RecordInvalid(
            f"cannot be checked: the pack's trustedKeys are malformed ({e})"
        ) from None
    if kind == SECURITY_SIGNOFF:
        limits = {"critical": 0, **dict(config.get("maxFindings") or {})}
        counts = findings(body)
        over = [
            f"{counts[s]} {s} (allowed {limits[s]})"
            for s in SEVERITIES
            if s in limits and counts[s] > int(limits[s])
        ]
        if over:
            scanner = body.get("details", {}).get("scanner", "the scanner")
            raise RecordInvalid(
                f"reports {', '.join(over)} found by {scanner}; fix them and sign off again"
            )
    return body
