"""Judging gate records against the pack's config: the one decision the pack and the helper share.

`judge_gate` is every door's verdict on one gate for one color's release: the pack's gate
policies and each command that raises a color's weight call it, and say its text as it is.

A gate holds for one release and color when records of its kind from `required` distinct
trusted keys (default 1: N of M approvers) each verify: trusted signer of its algorithm within
its window, signature, kind, times, bindings; a security sign-off also names every severity
the pack limits, each within its limit. One signer counts once, however many records it signs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cutover_gates.config_schema import MAX_FINDINGS, FreezeConfig, GateConfig, SignoffConfig
from cutover_gates.contract import (
    APPROVAL,
    EMERGENCY,
    ROLLBACK_DRILL,
    SECURITY_SIGNOFF,
    TRUSTED_KEYS_OF,
    LatestOutcome,
    Outcome,
    OutcomeUnreadable,
    Status,
)
from cutover_gates.keys import TrustedKey
from cutover_gates.record import (
    SEVERITIES,
    Expected,
    RecordInvalid,
    findings,
    parse_time,
    timestamp,
    verify,
)

# What to do for a record of each kind, and whom to ask: `{who}` names the trusted keys that
# may still sign (a key's name and id, or the holder of its id).
ASK = {
    APPROVAL: "Ask {who} to sign with `cutover approve`",
    SECURITY_SIGNOFF: "Have {who} sign with `cutover signoff` after the scan",
    ROLLBACK_DRILL: "Run `cutover drill` against this stack, signing as {who} (it signs a "
    "rollback-drill record)",
    EMERGENCY: "Ask {who} for one with `cutover approve --emergency`",
}


class NoTrustedKeys(RecordInvalid):
    """The policy's config names no trusted keys: nothing can pass."""


def limits_of(config: Mapping[str, Any]) -> dict[str, int]:
    """The findings a sign-off may report under the security-signoff policy's `config` (as
    given, defaults or not), by severity: each one it must name."""
    return dict(MAX_FINDINGS.value(config))


def _keys(kind: str, config: GateConfig) -> dict[str, TrustedKey]:
    if not config.trusted_keys:
        raise NoTrustedKeys(
            f"no trusted keys for {kind} records in the policy pack's config: set `trustedKeys` "
            f"of {TRUSTED_KEYS_OF[kind]} in the pack config (never in the stack)"
        )
    return {k.id: k for k in config.trusted_keys}


def judge(
    kind: str, document: Any, expected: Expected, config: GateConfig, now: datetime
) -> dict[str, Any]:
    """The record body when `document` passes the `kind` gate under `config` (the config of
    the policy TRUSTED_KEYS_OF[kind]); RecordInvalid saying why otherwise."""
    body = verify(document, list(_keys(kind, config).values()), expected, now, config.max_age)
    if kind == SECURITY_SIGNOFF:
        if not isinstance(config, SignoffConfig):
            raise TypeError(f"a {kind} record is judged under the security-signoff config")
        _check_findings(body, dict(config.max_findings))
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
    wanted: tuple[str, ...]  # the trusted keys that do not count yet and may sign now

    @property
    def passed(self) -> bool:
        return len(self.signers) >= self.required

    @property
    def needed(self) -> int:
        return max(self.required - len(self.signers), 0)

    def summary(self) -> str:
        """e.g. `1 of 2 approval record(s) (chairman (1f2e...)); 1 more needed`."""
        who = f" ({', '.join(self.signers)})" if self.signers else ""
        said = f"{len(self.signers)} of {self.required} {self.kind} record(s){who}"
        return said + (f"; {self.needed} more needed" if self.needed else "")

    def ask(self) -> str:
        """Whom to ask for the records still needed, by name where the config names them."""
        if not self.wanted:
            return (
                f"No other key in {TRUSTED_KEYS_OF[self.kind]}.trustedKeys may sign now: "
                "trust one in the pack config"
            )
        names = list(self.wanted)
        who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        if self.needed > 1:
            who = f"{self.needed} of {who}"
        return ASK[self.kind].format(who=who)


def judge_records(
    kind: str,
    documents: Sequence[Any],
    expected: Expected,
    config: GateConfig,
    now: datetime,
    issued_after: datetime | None = None,
) -> Judged:
    """Every `kind` record for `expected`, judged together (N of M); NoTrustedKeys when the
    config trusts no key. `issued_after`: only records issued later count (e.g. after the
    release was rolled back)."""
    keys = _keys(kind, config)
    signers: list[str] = []
    seen: set[str] = set()
    refused: list[str] = []
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
    wanted = tuple(
        k.holder() for k in keys.values() if k.id not in seen and k.problem_at(now, now) is None
    )
    return Judged(kind, config.required, tuple(signers), tuple(refused), wanted)


def judge_gate(
    expected: Expected,
    documents: Sequence[Any],
    config: GateConfig,
    now: datetime,
    latest: LatestOutcome = None,
) -> str | None:
    """What stops traffic moving onto `expected`'s color and release under its kind's gate,
    None when nothing does: the one judgement of every door (the pack's policies, and each
    command that raises a color's weight).

    `documents`: the records of that kind and color; `config`: the config of the policy
    TRUSTED_KEYS_OF[kind] (for an emergency, the change freeze's: the gate applies only
    within one of its windows); `latest`: the color's latest outcome in the stack's journal,
    whose rollback of this very release an approval must be newer than (fail closed when it
    is unknown)."""
    kind, color, version, digest = expected.kind, expected.color, expected.version, expected.digest
    if not version or not digest:
        return (
            f"{color} will receive traffic but its release is not identifiable (version "
            f"{version!r}, image digest {digest!r}); pin the image by digest."
        )
    if kind == EMERGENCY:
        if not isinstance(config, FreezeConfig):
            raise TypeError(f"an {kind} record is judged under the change-freeze config")
        window = config.active_window(now)
        if window is None:
            return None
        problem = _records_problem(expected, documents, config, now, None)
        return problem and (
            f"This update moves traffic during the change freeze {window.describe()}: {problem}"
        )
    return _records_problem(expected, documents, config, now, latest)


def _records_problem(
    expected: Expected,
    documents: Sequence[Any],
    config: GateConfig,
    now: datetime,
    latest: LatestOutcome,
) -> str | None:
    """judge_gate once the release is known and the gate applies."""
    kind = expected.kind
    release = f"{expected.color} release {expected.version} ({expected.digest[:19]}…)"
    rolled: Outcome | None = None
    if kind == APPROVAL:
        if isinstance(latest, OutcomeUnreadable):
            return (
                f"{release} cannot be cleared: whether its latest deployment on this stack was "
                f"rolled back is unknown, since {latest.reason}; failing closed: run it where "
                "the journal can be read."
            )
        rolled = rolled_back(latest, expected)
    after = datetime.fromtimestamp(rolled.at, UTC) if rolled else None
    try:
        judged = judge_records(kind, documents, expected, config, now, after)
    except NoTrustedKeys as e:
        return f"{release} cannot pass: {e}."
    if judged.passed:
        return None
    if rolled is not None and after is not None:
        return (
            f"{release} was rolled back on this stack at {timestamp(after)} (deployment "
            f"{rolled.deployment}: {rolled.reason or 'no reason given'}; {rolled.by}); it has "
            f"{judged.summary()} issued after that. {judged.ask()}, once the cause is understood."
        )
    if not documents:
        return f"{release} has no {kind} record. {judged.ask()}."
    if judged.required == 1 and len(judged.refused) == 1:
        return f"{release} has no valid {kind} record: the record given {judged.refused[0]}. {judged.ask()}."
    why = "; ".join(f"a record {r}" for r in judged.refused)
    return f"{release} has {judged.summary()}" + (f" ({why})" if why else "") + f". {judged.ask()}."


def rolled_back(latest: LatestOutcome, expected: Expected) -> Outcome | None:
    """The journal's rollback of exactly `expected`'s release on this stack, if the latest
    shift towards its color was one: an approval must then be newer."""
    if not isinstance(latest, Outcome) or latest.status != Status.ROLLED_BACK:
        return None
    same = (latest.version, latest.digest) == (expected.version, expected.digest)
    return latest if same else None
