"""What drops requests when traffic reaches a color, refused at preview: rules that do more than
forward, weight before health, and less capacity than the share; one policy per cause, each
beside its check and judged on every update."""

from __future__ import annotations

import math

from cutover_gates.config_schema import PolicyConfig, declare
from cutover_gates.facts import (
    DEPLOYMENT,
    LISTENER_RULE_TYPES,
    LISTENER_TYPES,
    SERVICE,
    TARGET_GROUP_TYPES,
    Res,
    StackFacts,
)
from cutover_gates.rules.policy import About, Report, ResourcePolicy, Severity, StackPolicy
from cutover_gates.rules.reading import Undecided, failing_closed

# What an ALB target group counts as healthy where its health check names no matcher.
HEALTH_CHECK_MATCHER = "200"


# -- forward-only listener rules ------------------------------------------------------------


def check_forward_only(res: Res, config: PolicyConfig, report: Report) -> None:
    """A listener or listener rule that forwards does nothing else: no rule mixes forward with
    other actions (authentication, a redirect, a fixed response). cutover moves traffic by
    rewriting the production listener's forward action whole and verifies the weights it
    serves; an action beside a forward answers requests whatever the weights, or is lost when
    they are written."""
    if res.type in LISTENER_TYPES:
        actions, what = res.props.get("defaultActions") or [], "listener's default actions"
    elif res.type in LISTENER_RULE_TYPES:
        actions, what = res.props.get("actions") or [], "listener rule's actions"
    else:
        return
    kinds = [str(a.get("type")) for a in actions]
    if "forward" in kinds and len(kinds) > 1:
        others = sorted({k for k in kinds if k != "forward"}) or ["a second forward"]
        report(
            f"The {what} mix forward with {', '.join(others)}: those answer requests whatever "
            "the weights, and cutover's weight writes replace the forward whole. Give the "
            "rule one forward action; authenticate or redirect on another listener or rule."
        )


# -- health before weight -------------------------------------------------------------------


def check_health(res: Res, config: PolicyConfig, report: Report) -> None:
    """A color is healthy before any weight reaches it: its target group checks health and
    counts no 5xx answer as healthy; the update that deploys an ECS service or a Deployment
    ends only once it serves (ECS `waitForSteadyState`; no `pulumi.com/skipAwait`), so the
    update or shift after it finds it healthy; and each container's readiness probe asks the
    application, not just whether its port is open. A color given weight before its targets
    are healthy answers 503, or the ALB fails open to targets that cannot serve."""
    color = res.marker("color")
    if color is None:
        return
    if res.type in TARGET_GROUP_TYPES:
        _target_group_health(color, res, report)
    elif res.type == SERVICE and res.props.get("waitForSteadyState") is not True:
        report(
            f"{color}'s ECS service does not wait for steady state: `pulumi up` ends before its "
            "tasks are healthy in the target group, and the shift after it can give them weight "
            "too early. Set wait_for_steady_state=True (cutover_components does)."
        )
    elif res.type == DEPLOYMENT:
        _deployment_health(color, res, report)


def _target_group_health(color: str, res: Res, report: Report) -> None:
    health = res.props.get("healthCheck") or {}
    if health.get("enabled") is False:
        report(
            f"{color}'s target group health checks are off: the ALB routes to targets that "
            "cannot serve. Turn them on (cutover_components does, on the color's healthCheckPath)."
        )
        return
    matcher = str(health.get("matcher", HEALTH_CHECK_MATCHER))
    codes = _codes(matcher)
    if codes is None:
        failing_closed(report)(
            Undecided(
                f"{color}'s health check matcher {matcher!r} is not codes or ranges (200-399)",
                "write it as codes and ranges",
            )
        )
    elif max(codes) >= 500:
        report(
            f"{color}'s target group health check counts {matcher} as healthy, server errors "
            "included: a color that answers 5xx is given weight. Match 200-399 at most."
        )


def _codes(matcher: str) -> list[int] | None:
    """The highest and lowest code of each part of an HTTP matcher ("200,202", "200-399")."""
    codes: list[int] = []
    for part in matcher.split(","):
        bounds = part.strip().split("-")
        if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
            return None
        codes += [int(b) for b in bounds]
    return codes


def _deployment_health(color: str, res: Res, report: Report) -> None:
    metadata = res.props.get("metadata") or {}
    if str((metadata.get("annotations") or {}).get("pulumi.com/skipAwait", "")).lower() == "true":
        report(
            f"{color}'s Deployment has pulumi.com/skipAwait: `pulumi up` ends before its pods "
            "are ready, and the shift after it can give them weight too early. Remove the "
            "annotation."
        )
    for container in res.containers():
        probe = container.get("readinessProbe")
        if (
            probe
            and probe.get("tcpSocket")
            and not (probe.get("httpGet") or probe.get("grpc") or probe.get("exec"))
        ):
            report(
                f"{color}'s container {container.get('name')} is ready as soon as its port "
                "opens (a tcpSocket readiness probe), before it can serve. Probe the "
                "application over HTTP (its healthCheckPath)."
            )


# -- warm capacity for the share ------------------------------------------------------------


def check_capacity(facts: StackFacts, config: PolicyConfig, report: Report) -> None:
    """Every color receiving traffic runs enough tasks or replicas for its share: at least its
    share of the full capacity the stack declares (the larger of the colors' `capacity`, which
    serves all the traffic), rounded up. A color given more traffic than its fleet can take
    drops what it cannot serve."""
    weights = facts.weights()
    total = sum(weights.values())
    fleets = {c: f for c, f in facts.colors.items() if f.fleet}
    missing = [c for c, f in fleets.items() if f.capacity() is None]
    if missing:
        failing_closed(report)(
            Undecided(
                f"{' and '.join(missing)} declare(s) no full capacity (marker cutover:capacity)",
                "declare cutover:colors.<color>.capacity (the program marks the fleet with it)",
            )
        )
        return
    full = max((f.capacity() or 0 for f in fleets.values()), default=0)
    for color in facts.receiving():
        desired = facts.colors[color].desired_count() or 0
        needed = math.ceil(weights[color] * full / total) if total else 0
        if desired < max(needed, 1):
            report(
                f"{color} receives {weights[color]} of {total} weight, a share that needs "
                f"{max(needed, 1)} of the {full} tasks or replicas serving all the traffic, "
                f"but runs {desired}. Scale it to its full capacity in an update before the "
                "one that moves traffic onto it (cutover:colors.<color>.capacity)."
            )


READINESS = [
    ResourcePolicy(
        name="forward-only-rules",
        check=check_forward_only,
        config=declare(PolicyConfig),
        about=About(
            "Forward-only rules",
            Severity.HIGH,
            "Give every listener rule that forwards one forward action and nothing else; authenticate, redirect or answer fixed responses on another listener or rule.",
            ("availability", "zero-downtime", "traffic"),
        ),
    ),
    ResourcePolicy(
        name="healthy-before-weight",
        check=check_health,
        config=declare(PolicyConfig),
        about=About(
            "Healthy before weight",
            Severity.HIGH,
            "Keep target group health checks on with a matcher of 200-399 at most, let each update wait until a color is healthy (ECS waitForSteadyState, no pulumi.com/skipAwait), and probe readiness over HTTP.",
            ("availability", "zero-downtime"),
        ),
    ),
    StackPolicy(
        name="warm-capacity",
        check=check_capacity,
        config=declare(PolicyConfig),
        about=About(
            "Warm capacity",
            Severity.HIGH,
            "Run every color receiving traffic at no less than its share of the full capacity (cutover:colors.<color>.capacity): scale it in one update, move traffic in the next.",
            ("availability", "zero-downtime", "traffic"),
        ),
    ),
]
