"""The `cutover-gates` policies.

Gates (approval, sign-off, drill) apply to updates that move traffic: when a color's weight
changes, or a color receiving traffic changes release, compared with the stack's previous
update (its `traffic` output, read through the program's self StackReference). Each message
says what is wrong and what to do. Anything that cannot be decided because a value is unknown
during preview fails closed with a violation saying so.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from cutover_gates.config_schema import DEFAULT_METRICS, DEFAULT_PRODUCTION_STACKS, properties_of
from cutover_gates.contract import (
    APPROVAL,
    CHAIRMAN_APPROVAL_POLICY,
    CHANGE_FREEZE_POLICY,
    EMERGENCY,
    MAX_WEIGHT,
    ROLLBACK_DRILL,
    ROLLBACK_TESTED_POLICY,
    SECURITY_SIGNOFF,
    SECURITY_SIGNOFF_POLICY,
    WATCHDOG_CRON_JOB,
    Outcome,
    Status,
)
from cutover_gates.facts import (
    ALARM,
    CRON_JOB_TYPES,
    DEPLOYMENT,
    EVENT_RULE,
    EVENT_TARGET,
    FUNCTION,
    LOAD_BALANCER_TYPES,
    SERVICE,
    TARGET_GROUP_TYPES,
    TASK_DEFINITION,
    ColorFacts,
    Res,
    StackFacts,
    collect,
    stack_of,
    task_images,
)
from cutover_gates.freeze import active_window
from cutover_gates.gate import HOW_TO, NoTrustedKeys, judge_records
from cutover_gates.record import PINNED_IMAGE, Expected, timestamp
from cutover_gates.rollback_window import keeps_full_capacity


def _website() -> str | None:
    """PulumiPolicy.yaml `website`: where reviewers read about each policy (README anchors)."""
    import yaml

    try:
        found = yaml.safe_load(
            (Path(__file__).resolve().parents[1] / "PulumiPolicy.yaml").read_text()
        )
    except (OSError, yaml.YAMLError):
        return None
    website = found.get("website") if isinstance(found, dict) else None
    return str(website).rstrip("/") if website else None


WEBSITE = _website()

# report(message) or report(message, urn): the SDK's ReportViolation, urn optional.
Report = Callable[..., None]


def is_production(stack: str | None, patterns: list[str] | None = None) -> bool:
    """True for production stacks; an unknown stack counts as production (fail closed)."""
    if not stack:
        return True
    return any(fnmatch.fnmatchcase(stack, p) for p in (patterns or DEFAULT_PRODUCTION_STACKS))


class _EnforcedByStack:
    """Mandatory on production stacks, advisory elsewhere, unless the pack's config says otherwise.

    The engine names the stack in PULUMI_STACK; the pack config's `enforcementLevel` for a
    policy overrides this (the SDK consults config first).
    """

    _explicit: EnforcementLevel | None = None

    @property
    def enforcement_level(self) -> EnforcementLevel:
        if self._explicit is not None:
            return self._explicit
        production = is_production(os.environ.get("PULUMI_STACK"))
        return EnforcementLevel.MANDATORY if production else EnforcementLevel.ADVISORY

    @enforcement_level.setter
    def enforcement_level(self, value: EnforcementLevel | None) -> None:
        self._explicit = value


def _fail_closed(report: Report, error: UnknownValueError) -> None:
    report(
        f"Cannot be decided during preview: {error.message} Failing closed: this gate does "
        "not pass on values it cannot see. Run the preview against a stack whose resources "
        "exist, or `cutover preview`, which fills computed values."
    )


@dataclass(frozen=True)
class About:
    """What a reviewer in Pulumi Cloud sees of a policy besides its description."""

    display_name: str
    severity: Severity
    remediation: str  # the generic fix; violations say what is wrong in this update
    tags: tuple[str, ...]

    def metadata(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "display_name": self.display_name,
            "severity": self.severity,
            "remediation_steps": self.remediation,
            "tags": ["cutover", *self.tags],
        }
        if WEBSITE:  # PulumiPolicy.yaml `website`: where the README's policy sections are
            found["url"] = f"{WEBSITE}#policy-{name}"
        return found


class GatePolicy(_EnforcedByStack, StackValidationPolicy):  # type: ignore[misc]
    """A stack policy over StackFacts. A violation names the production listener or
    HTTPRoute unless it names a resource of its own."""

    def __init__(
        self,
        name: str,
        description: str,
        check: Callable[[StackFacts, Mapping[str, Any], Report], None],
        about: About,
    ) -> None:
        def validate(args: StackValidationArgs, report: Report) -> None:
            resources = [Res(r.resource_type, r.urn, r.props) for r in args.resources]
            if not resources:
                return
            facts = collect(resources)
            anchor = facts.listener or facts.route

            def on_route(message: str, urn: str | None = None) -> None:
                report(message, urn or (anchor.urn if anchor else None))

            try:
                check(facts, args.get_config() or {}, on_route)
            except UnknownValueError as e:
                _fail_closed(on_route, e)
            except ValueError as e:  # the listener is not a blue/green split: nothing to judge by
                on_route(f"Cannot be decided: {e}. Failing closed (see weights-valid).")

        super().__init__(
            name,
            description,
            validate,
            config_schema=PolicyConfigSchema(properties_of(name)),
            **about.metadata(name),
        )


class ResourceGate(_EnforcedByStack, ResourceValidationPolicy):  # type: ignore[misc]
    """A resource policy over (type, urn, props)."""

    def __init__(
        self,
        name: str,
        description: str,
        check: Callable[[Res, Mapping[str, Any], Report], None],
        about: About,
    ) -> None:
        def validate(args: ResourceValidationArgs, report: Report) -> None:
            try:
                check(
                    Res(args.resource_type, args.urn, args.props), args.get_config() or {}, report
                )
            except UnknownValueError as e:
                _fail_closed(report, e)

        super().__init__(
            name,
            description,
            validate,
            config_schema=PolicyConfigSchema(properties_of(name)),
            **about.metadata(name),
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _moving(facts: StackFacts) -> list[str]:
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
            judged = judge_records(kind, documents, expected, config, _now(), after)
        except NoTrustedKeys as e:
            report(f"Cannot pass: {e}.")
            return
        except ValueError as e:
            report(f"Cannot pass: the pack's trustedKeys for {kind} records are malformed ({e}).")
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
    `approval` record signed by a key in `trustedKeys`, unexpired (and younger than
    `maxAgeHours` if set), bound to this project, stack, release version, image digest and
    color, and issued after that release's latest rollback on this stack (from its journal)."""
    _gate(facts, config, report, APPROVAL, _moving(facts))


def check_signoff(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """Every color whose share or release changes carries a `security-signoff` record signed by a
    trusted security key, bound like an approval, whose findings stay within `maxFindings` (by
    default zero critical)."""
    _gate(facts, config, report, SECURITY_SIGNOFF, _moving(facts))


def check_drill(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """A color that reaches 100% of traffic in this update carries a `rollback-drill` record of
    its release on this stack, signed by the deploy key, within `maxAgeDays` (default 7). Not
    the first update of a new stack: nothing can be rolled back to yet (its first shift after
    needs one)."""
    if facts.first_update:
        return
    weights = facts.weights()
    total = sum(weights.values())
    _gate(facts, config, report, ROLLBACK_DRILL, [c for c in _moving(facts) if weights[c] == total])


def check_freeze(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """An update that moves traffic during a change-freeze window (`windows`) carries, for each
    color traffic moves onto, an `emergency` record of its release signed by a key in
    `trustedKeys` (the chairman's)."""
    colors = _moving(facts)
    if not colors:
        return
    try:
        window = active_window(config, _now())
    except ValueError as e:
        report(f"Cannot be decided: the change-freeze config is malformed ({e}). Failing closed.")
        return
    if window is None:
        return

    def during(message: str) -> None:
        report(f"This update moves traffic during the change freeze {window.describe()}: {message}")

    _gate(facts, config, during, EMERGENCY, colors)


def check_rollback_ready(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """The color that served traffic (in this update, the previous one, or within
    `rollbackWindowMinutes`) keeps its fleet, what routes to it, and its full capacity, so
    traffic can be given back to it at once."""
    weights = facts.weights()
    window = int(config.get("rollbackWindowMinutes", 60))
    now = _now()
    for color, fleet in facts.colors.items():
        if not keeps_full_capacity(color, weights, facts.previous, window, now):
            continue
        missing = _missing(fleet, facts.routing)
        if missing:
            report(
                f"{color} is the rollback target (it served traffic, or did within "
                f"{window} min) but this update removes its {missing}. Keep it until the "
                "rollback window has passed."
            )
            continue
        capacity, desired = fleet.capacity(), fleet.desired_count()
        if capacity is None or desired is None or desired < capacity:
            report(
                f"{color} is the rollback target but this update scales it to {desired} of its "
                f"capacity {capacity}. Keep it at full capacity in the update that moves traffic "
                f"away from it and for {window} min after; scale it down in a later update."
            )


def _missing(fleet: ColorFacts, routing: str) -> str | None:
    """What the color lacks to take traffic back: its fleet, or what routes to it."""
    if not fleet.fleet:
        return "service or Deployment"
    if routing == "alb" and not fleet.target_groups:
        return "target group"
    if routing == "alb" and fleet.deployments and not fleet.bindings:
        return "TargetGroupBinding (its pods would leave the target group)"
    if routing == "gateway" and not fleet.kubernetes_services:
        return "Service"
    return None


def check_monitoring(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """Every color receiving traffic is watched: behind the ALB, alarms with actions on its own
    target group for each of `requiredMetrics`; behind a Gateway, readiness probes on every
    container (ready replicas are the guard there)."""
    if facts.routing == "gateway":
        _check_readiness(facts, report)
        return
    required = list(config.get("requiredMetrics") or DEFAULT_METRICS)
    lb_suffixes = {lb.props["arnSuffix"] for lb in facts.load_balancers}
    for color in facts.receiving():
        fleet = facts.colors[color]
        tg_suffixes = {tg.props["arnSuffix"] for tg in fleet.target_groups}
        watched: set[str] = set()
        for alarm in fleet.alarms:
            if not alarm.props.get("alarmActions"):
                continue
            for metric, dims in _alarm_metrics(alarm.props):
                if (
                    dims.get("TargetGroup") in tg_suffixes
                    and dims.get("LoadBalancer") in lb_suffixes
                ):
                    watched.add(metric)
        missing = [m for m in required if m not in watched]
        if missing:
            report(
                f"{color} will receive traffic but has no alarm with actions on its own target "
                f"group for {', '.join(missing)}. Declare them (components/monitoring.py)."
            )


def _check_readiness(facts: StackFacts, report: Report) -> None:
    """Behind a Gateway, the helper's guard is the receiving color's ready replicas: without a
    readiness probe on every container, "ready" means only "started"."""
    for color in facts.receiving():
        deployments = facts.colors[color].deployments
        unprobed = [
            str(c.get("name"))
            for d in deployments
            for c in d.containers()
            if not c.get("readinessProbe")
        ]
        if not deployments or unprobed:
            report(
                f"{color} will receive traffic but nothing watches it: "
                + (
                    f"container(s) {', '.join(unprobed)} have no readiness probe"
                    if unprobed
                    else "it has no Deployment"
                )
                + ". Ready replicas are the rollback guard behind a Gateway; declare readiness "
                "probes (components/kubernetes_color.py)."
            )


def _alarm_metrics(props: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    if props.get("metricName"):
        return [(str(props["metricName"]), props.get("dimensions") or {})]
    out = []
    for query in props.get("metricQueries") or []:
        metric = query.get("metric")
        if metric:
            out.append((str(metric.get("metricName")), metric.get("dimensions") or {}))
    return out


def check_weights(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """The production listener or HTTPRoute splits traffic between exactly the two colors, each
    weight in range, some traffic flowing, and moves traffic only onto a color that already ran
    this release at full capacity before the update (deploy, then shift)."""
    try:
        weights = facts.weights()
    except ValueError as e:
        report(f"The production route is not a blue/green split: {e}.")
        return
    for color, weight in weights.items():
        if not 0 <= weight <= MAX_WEIGHT:
            report(f"{color} weight {weight} is out of range; expected 0-{MAX_WEIGHT}.")
    total = sum(weights.values())
    if total <= 0:
        report("Weights sum to zero: no traffic would be served. Give one color weight.")
        return
    previous = facts.previous
    for color in facts.receiving():
        fleet = facts.colors[color]
        desired = fleet.desired_count()
        if not desired:
            report(f"{color} receives {weights[color]} of {total} weight but runs no tasks.")
            continue
        if facts.routing == "alb" and fleet.deployments and not fleet.bindings:
            report(
                f"{color} receives {weights[color]} of {total} weight but no TargetGroupBinding "
                "registers its pods in its target group."
            )
            continue
        if previous is None:
            continue
        before = previous.weights.get(color, 0) / (sum(previous.weights.values()) or 1)
        if weights[color] / total <= before:
            continue
        capacity = fleet.capacity() or 0
        warm = (
            previous.releases.get(color) == fleet.release()
            and previous.desired_counts.get(color, 0) >= capacity
        )
        if not warm:
            report(
                f"Traffic moves onto {color}, which was not already running release "
                f"{fleet.release()} at full capacity ({capacity}) before this update. Deploy "
                f"and scale {color} in one update, smoke-test it on the test listener, then "
                "move traffic in the next."
            )


def check_zero_downtime(res: Res, config: Mapping[str, Any], report: Report) -> None:
    """Settings without which a release or rollback drops requests, one rule per resource kind:
    target groups, ECS services, Deployments and production load balancers."""
    for rule in ZERO_DOWNTIME_RULES:
        rule(res, config, report)


def _target_group_settings(res: Res, config: Mapping[str, Any], report: Report) -> None:
    """Health checks on; deregistration delay within the configured bounds."""
    if res.type not in TARGET_GROUP_TYPES:
        return
    health = res.props.get("healthCheck") or {}
    if health.get("enabled") is False:
        report("Target group health checks are off; the ALB would route to dead targets.")
    low = int(config.get("minDeregistrationDelaySeconds", 5))
    high = int(config.get("maxDeregistrationDelaySeconds", 300))
    delay = int(res.props.get("deregistrationDelay", 300))
    if not low <= delay <= high:
        report(
            f"Deregistration delay {delay}s is outside {low}-{high}s: too short drops "
            "in-flight requests, too long stalls every rollout."
        )


def _ecs_rolling_settings(res: Res, config: Mapping[str, Any], report: Report) -> None:
    """Rolling updates at 100% healthy, the circuit breaker on, the ECS controller (ECS's own
    blue/green would move weights itself and fight cutover)."""
    if res.type != SERVICE:
        return
    minimum = int(res.props.get("deploymentMinimumHealthyPercent", 100))
    if minimum < 100:
        report(f"Rolling updates may drop to {minimum}% healthy; set 100.")
    breaker = res.props.get("deploymentCircuitBreaker") or {}
    if not breaker.get("enable"):
        report("The ECS deployment circuit breaker is off; turn it on with rollback.")
    controller = (res.props.get("deploymentController") or {}).get("type", "ECS")
    if controller != "ECS":
        report(
            f"Deployment controller {controller} moves traffic itself and would fight cutover; use ECS."
        )


def _deployment_rolling_settings(res: Res, config: Mapping[str, Any], report: Report) -> None:
    """RollingUpdate with maxUnavailable 0: no pod leaves service before its replacement is ready."""
    if res.type != DEPLOYMENT:
        return
    strategy = (res.props.get("spec") or {}).get("strategy") or {}
    kind = strategy.get("type", "RollingUpdate")
    unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if kind != "RollingUpdate":
        report(
            f"Deployment strategy {kind} stops every pod before starting new ones; use RollingUpdate."
        )
    elif _quantity(unavailable) != 0:
        report(
            f"Rolling updates may take {_quantity(unavailable):g}"
            f"{'%' if str(unavailable).endswith('%') else ''} of the pods out of service; set "
            "strategy.rollingUpdate.maxUnavailable to 0."
        )


def _deletion_protection(res: Res, config: Mapping[str, Any], report: Report) -> None:
    """A production stack's load balancer cannot be deleted by accident."""
    if res.type not in LOAD_BALANCER_TYPES:
        return
    stack, _ = stack_of(res.urn)
    if is_production(stack, config.get("productionStacks")) and not res.props.get(
        "enableDeletionProtection"
    ):
        report(f"Deletion protection is off on a load balancer of production stack {stack}.")


ZERO_DOWNTIME_RULES = (
    _target_group_settings,
    _ecs_rolling_settings,
    _deployment_rolling_settings,
    _deletion_protection,
)


def check_watchdog(facts: StackFacts, config: Mapping[str, Any], report: Report) -> None:
    """An update that moves traffic happens only on a stack whose own watchdog runs: on AWS an
    enabled schedule targeting the watchdog function, and an alarm with actions on its errors;
    on a Gateway stack the CronJob `cutover-watchdog`, not suspended. Without it, a shift whose
    process dies leaves traffic split until a person notices."""
    if not _moving(facts):
        return
    how = "Set cutover:watchdog (enabled: true) and deploy it before moving traffic."
    if facts.routing == "gateway":
        jobs = facts.of_watchdog(*CRON_JOB_TYPES)
        if not jobs:
            report(
                f"This update moves traffic but the stack has no CronJob {WATCHDOG_CRON_JOB}. {how}"
            )
        elif any((j.props.get("spec") or {}).get("suspend") for j in jobs):
            report(f"The watchdog CronJob {WATCHDOG_CRON_JOB} is suspended. Unsuspend it. {how}")
        return
    rules = [
        r
        for r in facts.of_watchdog(EVENT_RULE)
        if r.props.get("state", "ENABLED") == "ENABLED"
        and r.props.get("isEnabled", True) is not False
    ]
    functions = {str(f.props.get("arn")) for f in facts.of_watchdog(FUNCTION)}
    rule_names = {str(r.props.get("name")) for r in rules}
    targeted = [
        t
        for t in facts.of_watchdog(EVENT_TARGET)
        if str(t.props.get("rule")) in rule_names and str(t.props.get("arn")) in functions
    ]
    alarms = [a for a in facts.of_watchdog(ALARM) if a.props.get("alarmActions")]
    missing = [
        what
        for what, found in (
            ("an enabled schedule", rules),
            ("a schedule target on the watchdog function", targeted),
            ("an alarm with actions on the watchdog's errors", alarms),
        )
        if not found
    ]
    if missing:
        report(
            f"This update moves traffic but the stack's watchdog lacks {', '.join(missing)}. {how}"
        )


def _quantity(value: Any) -> float:
    """An int-or-percent field (`1`, `"25%"`; numbers arrive from the engine as floats)."""
    try:
        return float(str(value).removesuffix("%"))
    except ValueError:
        return float("nan")  # not a number: never equal to 0, so reported


def check_pinned(res: Res, config: Mapping[str, Any], report: Report) -> None:
    """On production stacks, every image of a task definition or Deployment is pinned by digest
    (`repo@sha256:...`), so the release the gates approved is the one that runs."""
    if res.type == TASK_DEFINITION:
        images = task_images(res)
    elif res.type == DEPLOYMENT:
        images = [str(c.get("image", "")) for c in res.containers()]
    else:
        return
    stack, _ = stack_of(res.urn)
    if not is_production(stack, config.get("productionStacks")):
        return
    for image in images:
        if not PINNED_IMAGE.fullmatch(image):
            report(
                f"Image {image} is not pinned by digest on production stack {stack}; use repo@sha256:<digest>."
            )


def check_probes(res: Res, config: Mapping[str, Any], report: Report) -> None:
    """Every container of a Deployment declares a readiness and a liveness probe."""
    if res.type != DEPLOYMENT:
        return
    pod = ((res.props.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod.get("containers") or []:
        missing = [p for p in ("readinessProbe", "livenessProbe") if not container.get(p)]
        if missing:
            report(
                f"Container {container.get('name')} has no {' or '.join(missing)}: without a "
                "readiness probe pods take traffic before they can serve it, and without a "
                "liveness probe a hung pod keeps its share. Declare both."
            )


POLICIES = [
    GatePolicy(
        CHAIRMAN_APPROVAL_POLICY,
        "Every color that traffic moves onto runs a release the chairman approved: signed by a "
        "trusted key, unexpired, for this project, stack, release digest and color.",
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
        "Every color that traffic moves onto has a valid security sign-off with findings "
        "within thresholds (by default zero critical).",
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
        "Before a color reaches 100% of traffic, a rollback drill of its release on this stack "
        "succeeded recently.",
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
        "During a change-freeze window, traffic moves only onto a release with the chairman's "
        "emergency record.",
        check_freeze,
        About(
            "Change freeze",
            Severity.HIGH,
            "Wait until the freeze window ends, or have the chairman sign an emergency record of this release with `cutover approve --emergency --reason ...` and list it in cutover:gateRecords.",
            ("gate", "freeze"),
        ),
    ),
    GatePolicy(
        "rollback-ready",
        "The color losing traffic keeps what routes to it (target group or Service) and its "
        "full capacity in the same update and for the rollback window.",
        check_rollback_ready,
        About(
            "Rollback ready",
            Severity.HIGH,
            "Keep the color traffic moves away from, and what routes to it, at full capacity in this update and for rollbackWindowMinutes; scale it down in a later update.",
            ("rollback",),
        ),
    ),
    GatePolicy(
        "monitoring-active",
        "Every color receiving traffic is watched: alarms with actions on its own target group "
        "behind the ALB, readiness probes behind a Gateway.",
        check_monitoring,
        About(
            "Monitoring active",
            Severity.HIGH,
            "Declare, per color, alarms with actions on its own target group for each required metric (components/monitoring.py), or readiness probes behind a Gateway.",
            ("exit-gate", "monitoring"),
        ),
    ),
    GatePolicy(
        "weights-valid",
        "The listener or HTTPRoute splits traffic between exactly the two colors, in range, "
        "with traffic flowing, only onto colors already running at full capacity.",
        check_weights,
        About(
            "Weights valid",
            Severity.CRITICAL,
            f"Split traffic between exactly the two colors with weights 0-{MAX_WEIGHT} and some traffic flowing; deploy and scale a color in one update, then move traffic onto it in the next.",
            ("traffic",),
        ),
    ),
    GatePolicy(
        "watchdog-active",
        "Traffic moves only on a stack whose own watchdog runs (a scheduled Lambda function "
        "with an alarm on its errors, or a CronJob), so a shift whose process dies is given "
        "back within a lease, a schedule period and a restore.",
        check_watchdog,
        About(
            "Watchdog active",
            Severity.HIGH,
            "Set cutover:watchdog.enabled (the default on production) and deploy it before moving traffic; keep its schedule enabled and its error alarm with actions.",
            ("rollback", "monitoring"),
        ),
    ),
    ResourceGate(
        "zero-downtime-settings",
        "Health checks on, deregistration delay within bounds, rolling updates at 100% "
        "healthy (ECS circuit breaker on; Deployments maxUnavailable 0), deletion protection "
        "on production load balancers.",
        check_zero_downtime,
        About(
            "Zero-downtime settings",
            Severity.MEDIUM,
            "Turn health checks on, keep the deregistration delay within bounds, roll updates at 100% healthy (circuit breaker on; maxUnavailable 0, never Recreate), and protect production load balancers from deletion.",
            ("availability",),
        ),
    ),
    ResourceGate(
        "release-pinned",
        "Production images are pinned by digest.",
        check_pinned,
        About(
            "Release pinned",
            Severity.HIGH,
            "Reference every production image by digest (repo@sha256:...), so the release the gates approved is the one that runs.",
            ("supply-chain",),
        ),
    ),
    ResourceGate(
        "probes-required",
        "Every Deployment's containers declare readiness and liveness probes.",
        check_probes,
        About(
            "Probes required",
            Severity.MEDIUM,
            "Declare a readiness and a liveness probe on every container of every Deployment.",
            ("availability", "kubernetes"),
        ),
    ),
]
