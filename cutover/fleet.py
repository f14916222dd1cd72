"""A color's fleet: how many of its instances are ready, and scaling it back to full capacity.

ECS: tasks healthy in the color's target group, scaled through the ECS service. Kubernetes:
ready replicas of the color's Deployment, scaled through its scale subresource.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cutover_gates.contract import Color
from cutover_gates.output_shapes import EcsService, KubernetesService
from cutover_gates.stack_outputs import StackOutputs

from cutover.clock import Clock, poll_until
from cutover.errors import DeploymentFailed
from cutover.kube import timeout
from cutover.weights import format_weights


class Fleet(Protocol):
    unit: str  # what `ready` counts, for messages
    # instances of the target color that may be unready before the shift fails (None: no
    # such guard; ECS relies on its UnHealthyHostCount alarm)
    disruptions_allowed: int | None

    def ready(self, color: Color) -> int:
        """Instances of `color` ready to serve now."""
        ...

    def scale_up(self, color: Color, capacity: int) -> int | None:
        """Scale `color` to at least `capacity`; the count it had if it was lower, else None."""
        ...


class EcsFleet:
    unit = "healthy targets"
    disruptions_allowed: int | None = None

    def __init__(self, outputs: StackOutputs, elbv2: Any, ecs: Any) -> None:
        self.outputs = outputs
        self.elbv2, self.ecs = elbv2, ecs  # boto3 clients

    def ready(self, color: Color) -> int:
        """Targets reported healthy in the color's target group."""
        health = self.elbv2.describe_target_health(
            TargetGroupArn=self.outputs.target_group_arns[color]
        )
        return sum(
            1 for t in health["TargetHealthDescriptions"] if t["TargetHealth"]["State"] == "healthy"
        )

    def _service(self, color: Color) -> EcsService:
        found = self.outputs.services[color]
        assert isinstance(found, EcsService)  # an ECS stack's, as its outputs were parsed
        return found

    def scale_up(self, color: Color, capacity: int) -> int | None:
        service = self._service(color)
        found = self.ecs.describe_services(cluster=service.cluster, services=[service.service])
        desired = found["services"][0]["desiredCount"] if found["services"] else 0
        if desired >= capacity:
            return None
        self.ecs.update_service(
            cluster=service.cluster, service=service.service, desiredCount=capacity
        )
        return int(desired)


class KubernetesFleet:
    unit = "ready replicas"
    disruptions_allowed: int | None = 1  # the PodDisruptionBudget's maxUnavailable

    def __init__(self, outputs: StackOutputs, apps: Any) -> None:
        self.outputs = outputs
        self.apps = apps  # the AppsV1Api the Deployments are read and scaled through

    def _deployment(self, color: Color) -> tuple[str, str]:
        service = self.outputs.services[color]
        assert isinstance(service, KubernetesService)  # a Kubernetes stack's, as parsed
        return service.deployment, service.namespace

    def ready(self, color: Color) -> int:
        name, namespace = self._deployment(color)
        found = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=timeout())
        return int(found.status.ready_replicas or 0)

    def scale_up(self, color: Color, capacity: int) -> int | None:
        name, namespace = self._deployment(color)
        found = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=timeout())
        desired = int(found.spec.replicas or 0)
        if desired >= capacity:
            return None
        self.apps.patch_namespaced_deployment_scale(
            name, namespace, {"spec": {"replicas": capacity}}, _request_timeout=timeout()
        )
        return desired


def ready_needed(keeps: int, weight: int, total: int) -> int:
    """Ready instances a color needs before it is given `weight` of `total`: that share of
    the `keeps` instances it must keep ready to serve all the traffic, rounded up (a fraction
    of an instance is not warm), and at least one while it gets any (a color with weight and
    nothing ready turns its requests into 5xx: an empty target group's 503 on an ALB, a
    Gateway's 503 for a backend without ready endpoints). Integers only: 70% of 10 is 7."""
    if weight <= 0 or total <= 0:
        return 0
    return max(1, -(-keeps * weight // total))


def keeps_ready(outputs: StackOutputs, fleet: Fleet, color: Color) -> int:
    """What `color` keeps ready to serve all the traffic: its capacity, less what its disruption
    budget lets go (a Kubernetes PodDisruptionBudget; ECS has none), and at least one. The
    floor the ready guard holds the target to, and what a step's share is taken of."""
    return max(1, outputs.services[color].capacity - (fleet.disruptions_allowed or 0))


def short_for_step(
    outputs: StackOutputs,
    fleet: Fleet,
    color: Color,
    weights: Mapping[str, int],
    ready: int | None = None,
) -> str | None:
    """Why `color` cannot be given its weight in `weights` yet: fewer ready than the step's
    share of what it keeps ready for all the traffic (`ready_needed` of `keeps_ready`); None
    when it has enough. Reads the fleet once, unless the caller just read `ready`."""
    capacity, keeps = outputs.services[color].capacity, keeps_ready(outputs, fleet, color)
    total = sum(weights.values())
    need = ready_needed(keeps, weights[color], total)
    ready = fleet.ready(color) if ready is None else ready
    if ready >= need:
        return None
    of = (
        f"its capacity {capacity}"
        if keeps == capacity
        else f"the {keeps} of its capacity {capacity} its disruption budget keeps ready"
    )
    return (
        f"{outputs.name}: {color} has {ready} {fleet.unit}; {format_weights(weights)} needs "
        f"{need} ({100 * weights[color] / total:g}% of {of}, rounded up)"
    )


def ensure_full_capacity(
    outputs: StackOutputs,
    fleet: Fleet,
    color: Color,
    timeout: float,
    log: Callable[[str], None],
    poll: float = 5.0,
    clock: Clock | None = None,
) -> None:
    """Scale `color` back to its full capacity if it was scaled down, and wait (on `clock`)
    until that many are ready. Traffic never moves onto a color below its full capacity."""
    capacity = outputs.services[color].capacity
    before = fleet.scale_up(color, capacity)
    if before is not None:
        log(f"{outputs.name}: {color} runs {before} of {capacity}; scaling it back up first.")
    last = [0]

    def full() -> bool | None:
        last[0] = fleet.ready(color)
        return True if last[0] >= capacity else None

    if poll_until(full, timeout, clock or Clock(), poll) is None:
        raise DeploymentFailed(
            f"{outputs.name}: {color} has {last[0]} of {capacity} {fleet.unit} after "
            f"{timeout:g}s; traffic was not moved onto it"
        )
