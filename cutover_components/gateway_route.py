"""The Gateway API HTTPRoute that weights traffic between the two colors' Services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from cutover_gates.contract import COLORS
from cutover_gates.markers import (
    ENDPOINT_REMOVAL_MARKER,
    GATEWAY_IDLE_TIMEOUT_MARKER,
    ROLLBACK_WINDOW_MARKER,
)

from cutover_components.stack import KubernetesConfig


@dataclass(frozen=True)
class WeightedRouteArgs:
    service_name: str  # the route's name, and the app label
    cluster: KubernetesConfig
    weights: dict[str, int]  # color -> weight
    services: dict[str, str]  # color -> Service name
    rollback_window_minutes: int
    stickiness_seconds: int = 0  # 0: no session persistence


def duration(seconds: int) -> str:
    """`seconds` as a Gateway API Duration (GEP-2257: at most 5 digits a unit)."""
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (rest, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


class WeightedRoute(pulumi.ComponentResource):
    """An HTTPRoute on the configured Gateway with one weighted backendRef per color; with
    stickiness, cookie session persistence bounded by `stickiness_seconds` (the Gateway API's
    experimental channel). Its annotations say what the stack declares of its Gateway."""

    def __init__(
        self, name: str, args: WeightedRouteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:WeightedRoute", name, None, opts)
        cluster, weights = args.cluster, args.weights
        self.route_name = args.service_name
        rule: dict[str, Any] = {
            "backendRefs": [
                {"name": args.services[c], "port": cluster.service_port, "weight": weights[c]}
                for c in COLORS
            ]
        }
        if args.stickiness_seconds > 0:
            rule["sessionPersistence"] = {
                "type": "Cookie",
                "absoluteTimeout": duration(args.stickiness_seconds),
            }
        spec: dict[str, Any] = {
            "parentRefs": [{"name": cluster.gateway_name, "namespace": cluster.gateway_namespace}],
            "rules": [rule],
        }
        annotations = {
            f"cutover/{ROLLBACK_WINDOW_MARKER}": str(args.rollback_window_minutes),
            f"cutover/{ENDPOINT_REMOVAL_MARKER}": str(cluster.endpoint_removal_seconds),
        }
        if cluster.gateway_idle_timeout_seconds is not None:
            annotations[f"cutover/{GATEWAY_IDLE_TIMEOUT_MARKER}"] = str(
                cluster.gateway_idle_timeout_seconds
            )
        # `cutover` writes the weights with JSON patches between updates, and the API server
        # then counts it a manager of spec.rules: without force, the provider's server-side
        # apply of any later update that changes the weights (`pulumi config set
        # cutover:activeColor ...; pulumi up`) fails with a field conflict. The stack config
        # follows what the helper serves, so what the update applies is the declared truth.
        annotations["pulumi.com/patchForce"] = "true"
        if cluster.hostnames:
            spec["hostnames"] = list(cluster.hostnames)
        self.route = k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata={
                "name": self.route_name,
                "namespace": cluster.namespace,
                "labels": {
                    "app.kubernetes.io/name": args.service_name,
                    "cutover/role": "production",
                },
                "annotations": annotations,
            },
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"route": self.route_name})
