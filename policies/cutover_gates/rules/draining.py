"""What drops requests when a color stops or traffic leaves it, refused at preview: how long each
side keeps a request, a connection or a stopping container (AWS and Gateway API
documentation), one policy per cause, each beside its check and judged on every update (the
helper shifts and rolls back between updates).

What only the application and its Gateway know (the longest request, the keep-alive timeout,
how long a Gateway keeps sending to a removed endpoint, its idle timeout) the stack declares in
its config and the program publishes as markers (markers.py); one missing or malformed fails
closed, saying which key declares it (reading.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cutover_gates.config_schema import PolicyConfig, Setting, declare
from cutover_gates.facts import LISTENER_RULE_TYPES, TARGET_GROUP_TYPES, Res, StackFacts
from cutover_gates.markers import (
    ENDPOINT_REMOVAL_MARKER,
    GATEWAY_IDLE_TIMEOUT_MARKER,
    KEEP_ALIVE_MARKER,
    LONGEST_REQUEST_MARKER,
    ROLLBACK_WINDOW_MARKER,
)
from cutover_gates.rules.policy import About, Report, ResourcePolicy, Severity, StackPolicy
from cutover_gates.rules.reading import Undecided, declared, failing_closed, route_declared, seconds

# What AWS and Kubernetes use where a property is not set.
TARGET_GROUP_DEREGISTRATION_DELAY = 300
ALB_IDLE_TIMEOUT = 60
ECS_STOP_TIMEOUT = 30
TERMINATION_GRACE_PERIOD = 30
# A Gateway API Duration (GEP-2257): 1h, 30m, 1h30m, 10s, 500ms.
_DURATION = re.compile(r"([0-9]{1,5})(h|m|s|ms)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# `sleep N` in a preStop exec command, alone or in a shell line.
_SLEEP = re.compile(r"(?:^|[\s/;&|])sleep\s+(\d+(?:\.\d+)?)(?:\s|$|;|&|\|)")


def _delay(target_group: Res) -> float:
    value = target_group.props.get("deregistrationDelay", TARGET_GROUP_DEREGISTRATION_DELAY)
    return seconds(value, "the target group's deregistrationDelay", "set it in seconds")


# -- deregistration delay >= the longest request -------------------------------------------


@dataclass(frozen=True)
class DeregistrationConfig(PolicyConfig):
    max_deregistration_delay_seconds: int


def check_deregistration(res: Res, config: DeregistrationConfig, report: Report) -> None:
    """Each color's target group keeps a leaving target for at least the longest request the
    stack declares (`cutover:service.longestRequestSeconds`), so a request in flight when its
    color stops or scales in finishes, and for at most `maxDeregistrationDelaySeconds`, so a
    rollout does not wait on every leaving target for long."""
    color = res.marker("color")
    if res.type not in TARGET_GROUP_TYPES or color is None:
        return
    try:
        delay = _delay(res)
        fix = "declare cutover:service.longestRequestSeconds (the program tags color resources)"
        longest = res.marker(LONGEST_REQUEST_MARKER)
        if longest is None:
            raise Undecided(f"{color}'s target group declares no longest request", fix)
        longest_seconds = seconds(longest, f"{color}'s {LONGEST_REQUEST_MARKER}", fix)
    except Undecided as e:
        failing_closed(report)(e)
        return
    if delay < longest_seconds:
        report(
            f"{color}'s target group deregistration delay {delay:g}s is shorter than the longest "
            f"request the stack declares ({longest_seconds:g}s): a request in flight when "
            f"{color} stops or scales in is cut off. Set cutover:deregistrationDelaySeconds to "
            f"at least {longest_seconds:g}."
        )
    high = config.max_deregistration_delay_seconds
    if delay > high:
        report(
            f"{color}'s target group deregistration delay {delay:g}s is above {high}s "
            "(maxDeregistrationDelaySeconds): every target that leaves holds its rollout that "
            "long. Lower cutover:deregistrationDelaySeconds, or raise the bound if requests "
            "really last that long."
        )


# -- application keep-alive > the load balancer's idle timeout ------------------------------


def check_keep_alive(facts: StackFacts, config: PolicyConfig, report: Report) -> None:
    """The application keeps an idle connection open longer than the load balancer in front of
    it (`cutover:service.keepAliveSeconds` above the ALB's idle timeout, or above the Gateway's
    where the stack declares one), so the load balancer, never the application, closes an idle
    connection: otherwise a request sent as the application closes it gets a 502."""
    fronts: list[tuple[Res, str, Any, str]] = []
    if facts.routing == "gateway" and facts.route is not None:
        value = facts.route.marker(GATEWAY_IDLE_TIMEOUT_MARKER)
        if value is not None:  # a Gateway with no idle timeout declared has none to outlast
            fronts.append(
                (facts.route, "the Gateway's idle timeout", value,
                 "or lower the Gateway's (cutover:kubernetes.gateway.idleTimeoutSeconds)")
            )  # fmt: skip
    elif facts.routing == "alb":
        for lb in facts.load_balancers:
            value = lb.props.get("idleTimeout", ALB_IDLE_TIMEOUT)
            fronts.append(
                (lb, "the load balancer's idle timeout", value,
                 "or lower the ALB's (cutover:idleTimeoutSeconds)")
            )  # fmt: skip
    for res, what, value, lower in fronts:
        said = failing_closed(report, res.urn)
        try:
            idle = seconds(value, what, "set it in seconds")
        except Undecided as e:
            said(e)
            continue
        for color, fleet in facts.colors.items():
            if not fleet.fleet:
                continue
            try:
                keep_alive = declared(fleet, KEEP_ALIVE_MARKER, "service.keepAliveSeconds")
            except Undecided as e:
                said(e)
                continue
            if keep_alive <= idle:
                report(
                    f"{color}'s application keeps idle connections open for {keep_alive:g}s "
                    f"(cutover:service.keepAliveSeconds), no longer than {what} ({idle:g}s): the "
                    "application can close a connection as a request is sent on it, which gets "
                    f"a 502. Set the application's keep-alive timeout above {idle:g}s and declare "
                    f"it, {lower}.",
                    res.urn,
                )


# -- stop timeout >= deregistration delay; a preStop that outlasts endpoint removal ---------


def check_stop(facts: StackFacts, config: PolicyConfig, report: Report) -> None:
    """A color's containers outlive its draining. On ECS each container's `stopTimeout` is at
    least its target group's deregistration delay. On Kubernetes each container has a preStop
    hook lasting until its endpoint is gone (the target group's deregistration delay with alb
    routing, the endpoint removal time the stack declares for its Gateway), and the pod's
    `terminationGracePeriodSeconds` covers that hook and then the longest request the stack
    declares. A container killed while requests still reach it drops them."""
    for color, fleet in facts.colors.items():
        said = failing_closed(report)
        delays: list[float] = []
        try:
            delays = [_delay(tg) for tg in fleet.target_groups]
            for task in fleet.task_definitions:
                _check_task(color, task, max(delays, default=None), report)
            if fleet.deployments:
                drain = _drain(facts, color, delays)
                longest = declared(fleet, LONGEST_REQUEST_MARKER, "service.longestRequestSeconds")
                for deployment in fleet.deployments:
                    _check_pod(color, deployment, drain, longest, report)
        except Undecided as e:
            said(e)


def _check_task(color: str, task: Res, drain: float | None, report: Report) -> None:
    if drain is None:  # no target group: nothing drains (rollback-ready names what is missing)
        return
    for container in json.loads(task.props["containerDefinitions"]):
        name = container.get("name")
        stop = seconds(
            container.get("stopTimeout", ECS_STOP_TIMEOUT),
            f"{color}'s container {name} stopTimeout",
            "set cutover:service.stopTimeoutSeconds",
        )
        if stop < drain:
            report(
                f"{color}'s container {name} has stopTimeout {stop:g}s, shorter than its target "
                f"group's deregistration delay ({drain:g}s): a task stopped as it leaves the "
                "target group is killed while requests still drain to it. Set "
                f"cutover:service.stopTimeoutSeconds to at least {drain:g} (Fargate allows up "
                "to 120s; beyond that lower cutover:deregistrationDelaySeconds)."
            )


def _drain(facts: StackFacts, color: str, delays: list[float]) -> tuple[float, str] | None:
    """How long a pod of `color` may still be sent requests once told to stop, and what says
    so; None when nothing routes to it through a target group or a route."""
    if facts.routing == "alb":
        if not delays:
            return None
        return max(delays), "its target group's deregistration delay"
    if facts.route is None:
        return None
    removal = route_declared(
        facts.route, ENDPOINT_REMOVAL_MARKER, "kubernetes.gateway.endpointRemovalSeconds"
    )
    if removal is None:
        raise Undecided(
            "the HTTPRoute declares no endpoint removal time for its Gateway (marker "
            f"cutover/{ENDPOINT_REMOVAL_MARKER})",
            "declare cutover:kubernetes.gateway.endpointRemovalSeconds",
        )
    return (
        removal,
        "the Gateway's endpoint removal (cutover:kubernetes.gateway.endpointRemovalSeconds)",
    )


def _check_pod(
    color: str,
    deployment: Res,
    drain: tuple[float, str] | None,
    longest: float,
    report: Report,
) -> None:
    pod = ((deployment.props.get("spec") or {}).get("template") or {}).get("spec") or {}
    grace = seconds(
        pod.get("terminationGracePeriodSeconds", TERMINATION_GRACE_PERIOD),
        f"{color}'s terminationGracePeriodSeconds",
        "set cutover:service.stopTimeoutSeconds",
    )
    for container in pod.get("containers") or []:
        name = container.get("name")
        hook = (container.get("lifecycle") or {}).get("preStop")
        hold = _pre_stop_seconds(hook)
        if drain is not None and (hold is None or hold < drain[0]):
            lasting = (
                f"its preStop lasts {hold:g}s"
                if hold is not None
                else "it has no preStop hook that says how long it lasts (a sleep action, or "
                "exec `sleep N`)"
            )
            report(
                f"{color}'s container {name} is sent SIGTERM as its endpoint is removed, and "
                f"{lasting}, less than {drain[1]} ({drain[0]:g}s): requests still routed to it "
                f"fail. Set cutover:kubernetes.preStopSeconds to at least {drain[0]:g}."
            )
        if grace < (hold or 0) + longest:
            report(
                f"{color}'s terminationGracePeriodSeconds {grace:g}s does not cover container "
                f"{name}'s preStop ({hold or 0:g}s) and then the longest request the stack "
                f"declares ({longest:g}s): the pod is killed with requests in flight. Set "
                f"cutover:service.stopTimeoutSeconds to at least {longest:g} (the grace period is "
                "kubernetes.preStopSeconds + service.stopTimeoutSeconds)."
            )


def _pre_stop_seconds(hook: Any) -> float | None:
    """How long a preStop hook lasts: its sleep action's seconds, or the N of a `sleep N` its
    exec command runs; None when it says no duration (or there is no hook)."""
    if not hook:
        return None
    sleep = hook.get("sleep")
    if sleep:
        return seconds(sleep.get("seconds"), "the preStop sleep", "set its seconds")
    command = (hook.get("exec") or {}).get("command") or []
    found = _SLEEP.search(" ".join(str(part) for part in command))
    return float(found.group(1)) if found else None


# -- stickiness off, or within the rollback window ----------------------------------------


def check_stickiness(facts: StackFacts, config: PolicyConfig, report: Report) -> None:
    """Stickiness is off on the production route, or lasts no longer than the rollback window
    the stack declares (`cutover:rollbackWindowMinutes`). On an ALB stickiness takes precedence
    over weight: a client stuck to a color keeps reaching it after that color's weight drops
    to 0, for as long as its cookie lasts, and that color keeps its full capacity only for the
    rollback window."""
    anchor = facts.listener or facts.route
    if anchor is None:  # no production route: weights-valid says so
        return
    sticky = list(_sticky(facts))
    if not sticky:
        return
    said = failing_closed(report, anchor.urn)
    key = "cutover:rollbackWindowMinutes (the program marks the production route with it)"
    window = anchor.marker(ROLLBACK_WINDOW_MARKER)
    if window is None:
        said(Undecided("the production route declares no rollback window", f"declare {key}"))
        return
    try:
        minutes = seconds(window, "the production route's rollback window", f"declare {key}")
        for where, lasting in sticky:
            if lasting is None or lasting > minutes * 60:
                how = f"lasts {lasting:g}s" if lasting is not None else "has no absoluteTimeout"
                report(
                    f"Stickiness on {where} {how}, longer than the rollback window the stack "
                    f"declares ({minutes:g} min): a client stuck to a color keeps reaching it "
                    "after its weight drops to 0, and after the window that color is scaled "
                    "down. Turn stickiness off (cutover:stickinessSeconds 0), keep it within "
                    f"{minutes * 60:g}s, or lengthen cutover:rollbackWindowMinutes.",
                    anchor.urn,
                )
    except Undecided as e:
        said(e)


def _sticky(facts: StackFacts) -> Iterator[tuple[str, float | None]]:
    """(where, how long) of each stickiness on the production route and the stack's listener
    rules; None for one with no bound."""
    if facts.listener is not None:
        rules = [r for r in facts.resources if r.type in LISTENER_RULE_TYPES]
        for where, res, field in [("the production listener", facts.listener, "defaultActions"),
                                  *[(f"listener rule {r.urn.rsplit('::', 1)[-1]}", r, "actions")
                                    for r in rules]]:  # fmt: skip
            for action in res.props.get(field) or []:
                stickiness = (action.get("forward") or {}).get("stickiness") or {}
                if stickiness.get("enabled"):
                    yield where, seconds(
                        stickiness.get("duration"), f"the stickiness duration of {where}",
                        "set cutover:stickinessSeconds",
                    )  # fmt: skip
    elif facts.route is not None:
        for rule in (facts.route.props.get("spec") or {}).get("rules") or []:
            persistence = rule.get("sessionPersistence")
            if persistence:
                timeout = persistence.get("absoluteTimeout")
                yield "the HTTPRoute", _duration(timeout) if timeout is not None else None


def _duration(text: Any) -> float:
    """A Gateway API Duration in seconds."""
    parts = _DURATION.findall(str(text))
    if not parts or "".join(n + u for n, u in parts) != str(text):
        raise Undecided(
            f"the HTTPRoute's sessionPersistence.absoluteTimeout is {text!r}, not a Gateway API "
            "duration (1h30m, 10s)",
            "set cutover:stickinessSeconds",
        )
    return sum(int(n) * _UNITS[u] for n, u in parts)


MAX_DEREGISTRATION_DELAY = Setting(
    "maxDeregistrationDelaySeconds",
    "max_deregistration_delay_seconds",
    {
        "type": "integer",
        "minimum": 0,
        "maximum": 3600,
        "description": "The longest deregistration delay allowed: each leaving target holds a "
        "rollout that long.",
        "default": 300,
    },
    int,
)

DRAINING = [
    ResourcePolicy(
        name="deregistration-covers-requests",
        check=check_deregistration,
        config=declare(DeregistrationConfig, MAX_DEREGISTRATION_DELAY),
        about=About(
            "Deregistration covers requests",
            Severity.HIGH,
            "Declare the longest request the service serves (cutover:service.longestRequestSeconds) and keep cutover:deregistrationDelaySeconds at least that long, and within maxDeregistrationDelaySeconds.",
            ("availability", "zero-downtime"),
        ),
    ),
    StackPolicy(
        name="keep-alive-outlasts-idle-timeout",
        check=check_keep_alive,
        config=declare(PolicyConfig),
        about=About(
            "Keep-alive outlasts idle timeout",
            Severity.HIGH,
            "Set the application's keep-alive timeout above the load balancer's idle timeout and declare it (cutover:service.keepAliveSeconds above cutover:idleTimeoutSeconds, or above cutover:kubernetes.gateway.idleTimeoutSeconds).",
            ("availability", "zero-downtime"),
        ),
    ),
    StackPolicy(
        name="stop-outlasts-draining",
        check=check_stop,
        config=declare(PolicyConfig),
        about=About(
            "Stop outlasts draining",
            Severity.HIGH,
            "Keep cutover:service.stopTimeoutSeconds at least the deregistration delay on ECS; on Kubernetes keep cutover:kubernetes.preStopSeconds at least the deregistration delay (alb routing) or the Gateway's endpoint removal time, and cutover:service.stopTimeoutSeconds at least the longest request.",
            ("availability", "zero-downtime"),
        ),
    ),
    StackPolicy(
        name="stickiness-within-rollback-window",
        check=check_stickiness,
        config=declare(PolicyConfig),
        about=About(
            "Stickiness within the rollback window",
            Severity.HIGH,
            "Leave stickiness off (cutover:stickinessSeconds 0), or keep it no longer than cutover:rollbackWindowMinutes, with an absoluteTimeout on a Gateway's sessionPersistence.",
            ("availability", "zero-downtime", "rollback"),
        ),
    ),
]
