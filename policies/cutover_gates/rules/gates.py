"""The entry gates: chairman approval, security sign-off and a tested rollback for every color
traffic moves onto, and the change freeze; each check beside its declaration."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pulumi_policy import (
    Severity,
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
    TRUSTED_KEYS_OF,
    Outcome,
    Status,
)
from cutover_gates.facts import (
    StackFacts,
)
from cutover_gates.freeze import active_window
from cutover_gates.gate import HOW_TO, NoTrustedKeys, judge_records
from cutover_gates.record import Expected, timestamp
from cutover_gates.rules.plumbing import (
    About,
    GatePolicy,
    Report,
    utc_now,
)


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
    config: Mapping[str, Any],
    report: Report,
    kind: str,
    colors: list[str],
) -> None:
    """Judge the `kind` records of each color (N of M); report what is missing or invalid."""
    for color in colors:
        fleet = facts.colors[color]
        version, digest = fleet.release(), fleet.digest()
        if not version or not digest:
            report(
                f"{color} will receive traffic but its release is not identifiable "
                f"(version {version!r}, image digest {digest!r}); pin the image by digest."
            )
            continue
        release = f"{color} release {version} ({digest[:19]}…)"
        documents = facts.records.get((color, kind), [])
        if not documents:
            report(
                f"{release} has no {kind} record. {HOW_TO[kind]} and list it in cutover:gateRecords."
            )
            continue
        rolled: Outcome | None = None
        if kind == APPROVAL:
            try:
                rolled = rolled_back(facts.outcomes.get(color), version, digest)
            except ValueError as e:
                report(f"{release} cannot be cleared: {e}.")
                continue
        after = datetime.fromtimestamp(rolled.at, UTC) if rolled else None
        expected = Expected(kind, facts.project, facts.stack, version, digest, color)
        try:
            judged = judge_records(kind, documents, expected, config, utc_now(), after)
        except NoTrustedKeys as e:
            report(f"Cannot pass: {e}.")
            return
        except ValueError as e:
            report(
                f"Cannot pass: {TRUSTED_KEYS_OF[kind]}.trustedKeys in the pack config is refused: {e}."
            )
            return
        if judged.passed:
            continue
        if rolled is not None:
            report(
                f"{release} was rolled back on this stack at "
                f"{timestamp(datetime.fromtimestamp(rolled.at, UTC))} (deployment "
                f"{rolled.deployment}: {rolled.reason or 'no reason given'}; {rolled.by}); it has "
                f"{judged.summary()} issued after that. Ask the chairman for a new approval with "
                "`cutover approve` once the cause is understood."
            )
        elif judged.required == 1 and len(judged.refused) == 1:
            report(
                f"The {kind} record for {release} is not valid: it {judged.refused[0]}. "
                f"{HOW_TO[kind]}."
            )
        else:
            why = "; ".join(f"a record {r}" for r in judged.refused)
            report(f"{release} has {judged.summary()}" + (f" ({why})" if why else "") +
                   f". {HOW_TO[kind]}.")  # fmt: skip


def _moved_since(outcomes: Mapping[str, Any], since: datetime) -> bool:
    """Whether the journal rolled traffic back after `since` (the previous update's last
    weight change), or cannot say."""
    for fact in outcomes.values():
        try:
            outcome = _outcome(fact)
        except ValueError:
            return True
        if outcome and outcome.status == Status.ROLLED_BACK and outcome.at > since.timestamp():
            return True
    return False


def _outcome(fact: Any) -> Outcome | None:
    """A published outcome; None for nothing published; ValueError when the journal could
    not be read or the fact is malformed."""
    if not fact:  # nothing published (a first update), or no shift towards this color yet
        return None
    if "unreadable" in fact:
        raise ValueError(
            "whether its latest deployment on this stack was rolled back is unknown, since the "
            f"stack's journal could not be read ({fact['unreadable']}); failing closed: run the "
            "update where the journal can be read"
        )
    try:
        return Outcome.from_json(fact)
    except (ValueError, KeyError, TypeError):
        raise ValueError("the journal's latest deployment of it is malformed") from None


def rolled_back(fact: Any, version: str, digest: str) -> Outcome | None:
    """The journal's rollback of exactly this release on this stack, if its latest shift
    towards the color was one (an approval must then be newer); ValueError when it cannot be
    told (fail closed)."""
    outcome = _outcome(fact)
    if outcome is None or outcome.status != Status.ROLLED_BACK:
        return None
    return outcome if (outcome.version, outcome.digest) == (version, digest) else None


def check_approval(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """Every color whose share of traffic or release changes in this update carries an
    `approval` record signed by a key in `trustedKeys`, unexpired and younger than
    `maxAgeHours`, bound to this project, stack, release version, image digest and
    color, and issued after that release's latest rollback on this stack (from its journal)."""
    _gate(facts, config, report, APPROVAL, moving_colors(facts))


def check_signoff(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """Every color whose share or release changes carries a `security-signoff` record signed by a
    trusted security key, younger than `maxAgeHours` and bound like an approval, whose findings
    stay within `maxFindings` (by default zero critical)."""
    _gate(facts, config, report, SECURITY_SIGNOFF, moving_colors(facts))


def check_drill(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """A color that reaches 100% of traffic in this update carries a `rollback-drill` record of
    its release on this stack, signed by the deploy key, within `maxAgeDays` (default 7). Not
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


def check_freeze(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """An update that moves traffic during a change-freeze window (`windows`) carries, for each
    color traffic moves onto, an `emergency` record of its release signed by a key in
    `trustedKeys` (the chairman's), younger than `maxAgeHours`."""
    colors = moving_colors(facts)
    if not colors:
        return
    try:
        window = active_window(config, utc_now())
    except ValueError as e:
        report(f"Cannot be decided: the change-freeze config is malformed ({e}). Failing closed.")
        return
    if window is None:
        return

    def during(message: str) -> None:
        report(f"This update moves traffic during the change freeze {window.describe()}: {message}")

    _gate(facts, config, during, EMERGENCY, colors)


GATES = [
    GatePolicy(
        CHAIRMAN_APPROVAL_POLICY,
        check_approval,
        About(
            "Chairman approval",
            Severity.CRITICAL,
            "Have the chairman sign an approval of this release for this stack and color with `cutover approve`, and list it in cutover:gateRecords (or the cutover-gates ConfigMap).",
            ("gate", "entry-gate"),
        ),
    ),
    GatePolicy(
        SECURITY_SIGNOFF_POLICY,
        check_signoff,
        About(
            "Security sign-off",
            Severity.CRITICAL,
            "Have security automation sign off this release with `cutover signoff --findings ...` after its scan, within the pack's maxFindings, and list the record in cutover:gateRecords.",
            ("gate", "entry-gate", "security"),
        ),
    ),
    GatePolicy(
        ROLLBACK_TESTED_POLICY,
        check_drill,
        About(
            "Rollback tested",
            Severity.HIGH,
            "Run `cutover drill` against this stack for the color's release (it signs a rollback-drill record), then list the record in cutover:gateRecords.",
            ("gate", "exit-gate"),
        ),
    ),
    GatePolicy(
        CHANGE_FREEZE_POLICY,
        check_freeze,
        About(
            "Change freeze",
            Severity.HIGH,
            "Wait until the freeze window ends, or have the chairman sign an emergency record of this release with `cutover approve --emergency --reason ...` and list it in cutover:gateRecords.",
            ("gate", "freeze"),
        ),
    ),
]
