"""Judging gate records against the pack's config: the one decision the pack and the helper share.

A gate holds for one release and color when records of its kind from `required` distinct
trusted keys (default 1: N of M approvers) each verify: trusted signer of its algorithm within
its window, signature, kind, times, bindings; a security sign-off also names every severity
the pack limits, each within its limit. One signer counts once, however many records it signs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cutover_gates.config_schema import default_of
from cutover_gates.contract import (
    APPROVAL,
    EMERGENCY,
    ROLLBACK_DRILL,
    SECURITY_SIGNOFF,
    STAGE_EXIT,
    TRUSTED_KEYS_OF,
)
from cutover_gates.keys import trusted_keys
from cutover_gates.record import (
    SEVERITIES,
    Expected,
    RecordInvalid,
    findings,
    parse_time,
    timestamp,
    verify,
)

HOW_TO = {
    APPROVAL: "Ask the chairman to sign one with `cutover approve`",
    SECURITY_SIGNOFF: "Have security automation sign one with `cutover signoff`",
    ROLLBACK_DRILL: "Run `cutover drill` against this stack (it signs a rollback-drill record)",
    EMERGENCY: "Ask the chairman for one with `cutover approve --emergency`",
}
# What a sign-off is held to when the pack config says nothing.
DEFAULT_MAX_FINDINGS = {"critical": 0}


class NoTrustedKeys(RecordInvalid):
    """The policy's config names no trusted keys: nothing can pass."""


def max_age(kind: str, config: Mapping[str, Any]) -> timedelta:
    """The age bound of `kind` records under `config` (its policy's): every kind has one."""
    policy = TRUSTED_KEYS_OF[kind]
    if kind in (ROLLBACK_DRILL, STAGE_EXIT):  # both the deploy key's, judged by rollback-tested
        return timedelta(days=float(config.get("maxAgeDays", default_of(policy, "maxAgeDays"))))
    return timedelta(hours=float(config.get("maxAgeHours", default_of(policy, "maxAgeHours"))))


def limits_of(config: Mapping[str, Any]) -> dict[str, int]:
    """The findings a sign-off may report, by severity (each one it must name)."""
    return {**DEFAULT_MAX_FINDINGS, **dict(config.get("maxFindings") or {})}


def _keys(kind: str, config: Mapping[str, Any]) -> list[Any]:
    keys = list(config.get("trustedKeys") or [])
    if not keys:
        raise NoTrustedKeys(
            f"no trusted keys for {kind} records in the policy pack's config: set `trustedKeys` "
            f"of {TRUSTED_KEYS_OF[kind]} in the pack config (never in the stack)"
        )
    return keys


def judge(
    kind: str, document: Any, expected: Expected, config: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The record body when `document` passes the `kind` gate under `config` (the config of
    the policy TRUSTED_KEYS_OF[kind]); RecordInvalid saying why otherwise."""
    keys = _keys(kind, config)
    try:
        body = verify(document, keys, expected, now, max_age(kind, config))
    except ValueError as e:
        if isinstance(e, RecordInvalid):
            raise
        raise RecordInvalid(
            f"cannot be checked: the pack's {TRUSTED_KEYS_OF[kind]}.trustedKeys are refused ({e})"
        ) from None
    if kind == SECURITY_SIGNOFF:
        _check_findings(body, limits_of(config))
    return body


def _check_findings(body: dict[str, Any], limits: dict[str, int]) -> None:
    """Every severity the pack limits is named, and within its limit: a scan that reports
    nothing is not a clean scan."""
    reported = body.get("details", {}).get("findings", {})
    named = set(reported) if isinstance(reported, dict) else set()
    missing = [s for s in SEVERITIES if s in limits and s not in named]
    if missing:
        raise RecordInvalid(
            f"does not report its {', '.join(missing)} findings, which the pack limits "
            f"({', '.join(f'{s} <= {limits[s]}' for s in SEVERITIES if s in limits)}); a scan "
            "that names none is not a clean scan"
        )
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


@dataclass(frozen=True)
class Judged:
    """A gate over every record of its kind for one release and color."""

    kind: str
    required: int
    signers: tuple[str, ...]  # the distinct trusted keys whose records count
    refused: tuple[str, ...]  # why each other record does not
    bodies: tuple[dict[str, Any], ...]

    @property
    def passed(self) -> bool:
        return len(self.signers) >= self.required

    def summary(self) -> str:
        """e.g. `1 of 2 approvals (chairman (1f2e...)); 1 more needed`."""
        who = f" ({', '.join(self.signers)})" if self.signers else ""
        said = f"{len(self.signers)} of {self.required} {self.kind} record(s){who}"
        if not self.passed:
            said += f"; {self.required - len(self.signers)} more needed from other trusted keys"
        return said


def required_of(config: Mapping[str, Any]) -> int:
    return int(config.get("required", 1))


def judge_records(
    kind: str,
    documents: list[Any],
    expected: Expected,
    config: Mapping[str, Any],
    now: datetime,
    issued_after: datetime | None = None,
) -> Judged:
    """Every `kind` record for `expected`, judged together (N of M); NoTrustedKeys when the
    config trusts no key. `issued_after`: only records issued later count (e.g. after the
    release was rolled back)."""
    keys = {k.id: k for k in trusted_keys({"trustedKeys": _keys(kind, config)})}
    signers: list[str] = []
    seen: set[str] = set()
    refused: list[str] = []
    bodies: list[dict[str, Any]] = []
    for document in documents:
        try:
            body = judge(kind, document, expected, config, now)
        except NoTrustedKeys:
            raise
        except RecordInvalid as e:
            refused.append(str(e))
            continue
        signer = keys[body["keyId"]]
        issued = parse_time(body["issuedAt"], "issuedAt")
        if issued_after is not None and issued <= issued_after:
            refused.append(f"was issued {timestamp(issued)}, before {timestamp(issued_after)}")
            continue
        if signer.id in seen:
            refused.append(f"is another record by {signer.describe()}; one signer counts once")
            continue
        seen.add(signer.id)
        signers.append(signer.describe())
        bodies.append(body)
    return Judged(kind, required_of(config), tuple(signers), tuple(refused), tuple(bodies))
