"""A service of a release: its stack outputs, its traffic router and its fleet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cutover_gates.contract import COLORS
from cutover_gates.stack_outputs import StackOutputs

from cutover import kube
from cutover.aws import Client
from cutover.deployment import Deployment
from cutover.errors import ConfigError
from cutover.fleet import EcsFleet, Fleet, KubernetesFleet
from cutover.outputs import parse_outputs
from cutover.routers import TrafficRouter
from cutover.routers.alb import AlbRouter
from cutover.routers.gateway import GatewayRouter


@dataclass
class Service:
    outputs: StackOutputs
    router: TrafficRouter
    fleet: Fleet

    @property
    def key(self) -> str:
        """What the journal and the lock know this service's routing by."""
        return self.outputs.route_key


def services_of(all_outputs: list[StackOutputs]) -> list[Service]:
    """One Service per stack's outputs; the same listener or route twice is refused."""
    keys = [o.route_key for o in all_outputs]
    if len(set(keys)) != len(keys):
        raise ConfigError("two --outputs name the same listener or route; give each service once")
    return [service_of(o) for o in all_outputs]


def service_of(outputs: StackOutputs) -> Service:
    """A stack's service: its router (the ALB listener, or the Gateway's HTTPRoute) and its
    fleet (ECS tasks, or a Kubernetes Deployment's replicas), each handed the clients it calls."""
    router: TrafficRouter
    if outputs.route is not None:  # a Gateway stack
        route, api = outputs.route, kube.Api("CustomObjectsApi")
        services: dict[str, str] = {c: outputs.services[c].service for c in COLORS}
        router = GatewayRouter(route.namespace, route.name, services, outputs.name, api)
    else:
        elbv2 = Client("elbv2")
        router = AlbRouter(outputs.listener_arn, outputs.target_group_arns, outputs.name, elbv2)
    if outputs.platform == "kubernetes":
        return Service(outputs, router, KubernetesFleet(outputs, kube.Api("AppsV1Api")))
    return Service(outputs, router, EcsFleet(outputs, Client("elbv2"), Client("ecs")))


# Services rebuilt from the outputs a deployment journaled (a release train's other stacks).
Rebuild = Callable[[list[dict[str, Any]]], list[Service]]


def rebuild_services(journaled: list[dict[str, Any]]) -> list[Service]:
    return services_of(
        [parse_outputs(o, "the outputs its deployment journaled") for o in journaled]
    )


def services_of_deployment(
    deployment: Deployment, own: list[Service], rebuild: Rebuild = rebuild_services
) -> list[Service] | None:
    """Every service a deployment moves, in its order: those of the stacks at hand, the
    others (a release train's) rebuilt from the outputs it journaled; None when one is
    neither (journaled by an earlier release)."""
    by_key = {s.key: s for s in own}
    missing = [k for k in deployment.listeners if k not in by_key]
    if any(k not in deployment.stack_outputs for k in missing):
        return None
    rebuilt = rebuild([deployment.stack_outputs[k] for k in missing]) if missing else []
    found = {**by_key, **{s.key: s for s in rebuilt}}
    return [found[k] for k in deployment.listeners]
