"""The entry gates: chairman approval, security sign-off and a tested rollback for every color
traffic moves onto, and the change freeze; each check beside its declaration."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from cutover_gates.config_schema import (
    MAX_FINDINGS,
    WINDOWS,
    FreezeConfig,
    GateConfig,
    SignoffConfig,
    declare,
    gate_settings,
    max_age_days,
    max_age_hours,
)
from cutover_gates.contract import (
    APPROVAL,
    CHAIRMAN_APPROVAL_POLICY,
    CHANGE_FREEZE_POLICY,
    EMERGENCY,
    ROLLBACK_DRILL,
    ROLLBACK_TESTED_POLICY,
    SECURITY_SIGNOFF,
    SECURITY_SIGNOFF_POLICY,
    STAGE_EXIT,
    LatestOutcome,
    OutcomeUnreadable,
    Status,
)
from cutover_gates.facts import StackFacts
from cutover_gates.gate import judge_gate
from cutover_gates.record import Expected
from cutover_gates.rules.policy import About, Report, Severity, StackPolicy, utc_now


def moving_colors(facts: StackFacts) -> list[str]:
    """Colors receiving traffic whose share or release changed since the previous update.

    With no previous update known, or when the journal says traffic was rolled back since it
    (or cannot be read), the previous weights are not what is served: every receiving color
    counts as moving (fail closed).
    """
    weights = facts.weights()
    total = sum(weights.values())
    previous = facts.previous
    stale = previous is not None and _moved_since(facts.outcomes, previous.changed_at)
    moving = []
    for color in facts.receiving():
        if previous is None or stale:
            moving.append(color)
            continue
        before_total = sum(previous.weights.values()) or 1
        share_changed = weights[color] / total != previous.weights.get(color, 0) / before_total
        release_changed = facts.colors[color].release() != previous.releases.get(color)
        if share_changed or release_changed:
            moving.append(color)
    return moving


def _gate(
    facts: StackFacts,
    config: GateConfig,
    report: Report,
    kind: str,
    colors: list[str],
) -> None:
    """Judge the `kind` records of each color (N of M); report each problem once (a config
    that trusts no key says so once, not once a color)."""
    problems: list[str] = []
    for color in colors:
        fleet = facts.colors[color]
        expected = Expected(kind, facts.project, facts.stack, fleet.release() or "",
                            fleet.digest() or "", color)  # fmt: skip
        documents = facts.records.get((color, kind), [])
        problem = judge_gate(expected, documents, config, utc_now(), facts.outcomes.get(color))
        if problem is not None and problem not in problems:
            problems.append(problem)
    for problem in problems:
        report(problem)


def _moved_since(outcomes: Mapping[str, LatestOutcome], since: datetime) -> bool:
    """Whether the journal rolled traffic back after `since` (the previous update's last
    weight change), or cannot say."""
    for outcome in outcomes.values():
        if isinstance(outcome, OutcomeUnreadable):
            return True
        if outcome and outcome.status == Status.ROLLED_BACK and outcome.at > since.timestamp():
            return True
    return False


def check_approval(facts: StackFacts, config: GateConfig, report: Report) -> None:
    """Every color whose share of traffic or release changes in this update carries an
    `approval` record signed by a key in `trustedKeys`, unexpired and younger than
    `maxAgeHours`, bound to this project, stack, release version, image digest and
    color, and issued after that release's latest rollback on this stack (from its journal)."""
    _gate(facts, config, report, APPROVAL, moving_colors(facts))


def check_signoff(facts: StackFacts, config: SignoffConfig, report: Report) -> None:
    """Every color whose share or release changes carries a `security-signoff` record signed by a
    trusted security key, younger than `maxAgeHours` and bound like an approval, whose findings
    stay within `maxFindings` (by default zero critical)."""
    _gate(facts, config, report, SECURITY_SIGNOFF, moving_colors(facts))


def check_drill(facts: StackFacts, config: GateConfig, report: Report) -> None:
    """A color that reaches 100% of traffic in this update carries a `rollback-drill` record of
    its release on this stack, signed by the deploy key, younger than `maxAgeDays`. Not
    the first update of a new stack: nothing can be rolled back to yet (its first shift after
    needs one)."""
    if facts.first_update:
        return
    weights = facts.weights()
    total = sum(weights.values())
    _gate(
        facts,
        config,
        report,
        ROLLBACK_DRILL,
        [c for c in moving_colors(facts) if weights[c] == total],
    )


def check_freeze(facts: StackFacts, config: FreezeConfig, report: Report) -> None:
    """An update that moves traffic during a change-freeze window (`windows`) carries, for each
    color traffic moves onto, an `emergency` record of its release signed by a key in
    `trustedKeys` (the chairman's), younger than `maxAgeHours`."""
    _gate(facts, config, report, EMERGENCY, moving_colors(facts))


GATES = [
    StackPolicy(
        name=CHAIRMAN_APPROVAL_POLICY,
        check=check_approval,
        config=declare(GateConfig, *gate_settings(max_age_hours(168, APPROVAL))),
        about=About(
            "Chairman approval",
            Severity.CRITICAL,
            "Have the chairman sign an approval of this release for this stack and color with `cutover approve`, and list it in cutover:gateRecords (or the cutover-gates ConfigMap).",
            ("gate", "entry-gate"),
        ),
    ),
    StackPolicy(
        name=SECURITY_SIGNOFF_POLICY,
        check=check_signoff,
        config=declare(
            SignoffConfig, *gate_settings(max_age_hours(168, SECURITY_SIGNOFF)), MAX_FINDINGS
        ),
        about=About(
            "Security sign-off",
            Severity.CRITICAL,
            "Have security automation sign off this release with `cutover signoff --findings ...` after its scan, within the pack's maxFindings, and list the record in cutover:gateRecords.",
            ("gate", "entry-gate", "security"),
        ),
    ),
    StackPolicy(
        name=ROLLBACK_TESTED_POLICY,
        check=check_drill,
        config=declare(
            GateConfig, *gate_settings(max_age_days(7, f"{ROLLBACK_DRILL} (or {STAGE_EXIT})"))
        ),
        about=About(
            "Rollback tested",
            Severity.HIGH,
            "Run `cutover drill` against this stack for the color's release (it signs a rollback-drill record), then list the record in cutover:gateRecords.",
            ("gate", "exit-gate"),
        ),
    ),
    StackPolicy(
        name=CHANGE_FREEZE_POLICY,
        check=check_freeze,
        config=declare(FreezeConfig, *gate_settings(max_age_hours(24, EMERGENCY)), WINDOWS),
        about=About(
            "Change freeze",
            Severity.HIGH,
            "Wait until the freeze window ends, or have the chairman sign an emergency record of this release with `cutover approve --emergency --reason ...` and list it in cutover:gateRecords.",
            ("gate", "freeze"),
        ),
    ),
]
