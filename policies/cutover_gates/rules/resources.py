"""What every resource of a production stack must be: rolling updates that keep every task or pod
serving, images pinned by digest, probes declared; each check beside its declaration. What
drops requests in a flip is `draining.py`'s and `readiness.py`'s."""

from __future__ import annotations

from typing import Any

from cutover_gates.config_schema import PolicyConfig, declare
from cutover_gates.facts import (
    DEPLOYMENT,
    LOAD_BALANCER_TYPES,
    SERVICE,
    TASK_DEFINITION,
    Res,
    stack_of,
    task_images,
)
from cutover_gates.record import PINNED_IMAGE
from cutover_gates.rules.policy import About, Report, ResourcePolicy, Severity


def check_zero_downtime(res: Res, config: PolicyConfig, report: Report) -> None:
    """Settings without which a release rolls out with fewer healthy tasks or pods than it had,
    one rule per resource kind: ECS services, Deployments and production load balancers."""
    for rule in ZERO_DOWNTIME_RULES:
        rule(res, config, report)


def _ecs_rolling_settings(res: Res, config: PolicyConfig, report: Report) -> None:
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


def _deployment_rolling_settings(res: Res, config: PolicyConfig, report: Report) -> None:
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


def _deletion_protection(res: Res, config: PolicyConfig, report: Report) -> None:
    """A production stack's load balancer cannot be deleted by accident."""
    if res.type not in LOAD_BALANCER_TYPES:
        return
    stack, _ = stack_of(res.urn)
    if config.is_production(stack) and not res.props.get("enableDeletionProtection"):
        report(f"Deletion protection is off on a load balancer of production stack {stack}.")


ZERO_DOWNTIME_RULES = (
    _ecs_rolling_settings,
    _deployment_rolling_settings,
    _deletion_protection,
)


def _quantity(value: Any) -> float:
    """An int-or-percent field (`1`, `"25%"`; numbers arrive from the engine as floats)."""
    try:
        return float(str(value).removesuffix("%"))
    except ValueError:
        return float("nan")  # not a number: never equal to 0, so reported


def check_pinned(res: Res, config: PolicyConfig, report: Report) -> None:
    """On production stacks, every image of a task definition or Deployment is pinned by digest
    (`repo@sha256:...`), so the release the gates approved is the one that runs."""
    if res.type == TASK_DEFINITION:
        images = task_images(res)
    elif res.type == DEPLOYMENT:
        images = [str(c.get("image", "")) for c in res.containers()]
    else:
        return
    stack, _ = stack_of(res.urn)
    if not config.is_production(stack):
        return
    for image in images:
        if not PINNED_IMAGE.fullmatch(image):
            report(
                f"Image {image} is not pinned by digest on production stack {stack}; use repo@sha256:<digest>."
            )


def check_probes(res: Res, config: PolicyConfig, report: Report) -> None:
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


RESOURCES = [
    ResourcePolicy(
        name="zero-downtime-settings",
        check=check_zero_downtime,
        config=declare(PolicyConfig),
        about=About(
            "Zero-downtime settings",
            Severity.MEDIUM,
            "Roll updates at 100% healthy (circuit breaker on; maxUnavailable 0, never Recreate), and protect production load balancers from deletion.",
            ("availability",),
        ),
    ),
    ResourcePolicy(
        name="release-pinned",
        check=check_pinned,
        config=declare(PolicyConfig),
        about=About(
            "Release pinned",
            Severity.HIGH,
            "Reference every production image by digest (repo@sha256:...), so the release the gates approved is the one that runs.",
            ("supply-chain",),
        ),
    ),
    ResourcePolicy(
        name="probes-required",
        check=check_probes,
        config=declare(PolicyConfig),
        about=About(
            "Probes required",
            Severity.MEDIUM,
            "Declare a readiness and a liveness probe on every container of every Deployment.",
            ("availability", "kubernetes"),
        ),
    ),
]
