"""The Gateway API HTTPRoute that weights traffic between the two colors' Services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from cutover_gates.contract import COLORS

from cutover_components.stack import KubernetesConfig


@dataclass(frozen=True)
class WeightedRouteArgs:
    service_name: str  # the route's name, and the app label
    cluster: KubernetesConfig
    weights: dict[str, int]  # color -> weight
    services: dict[str, str]  # color -> Service name


class WeightedRoute(pulumi.ComponentResource):
    """An HTTPRoute on the configured Gateway with one weighted backendRef per color."""

    def __init__(
        self, name: str, args: WeightedRouteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:WeightedRoute", name, None, opts)
        cluster, weights = args.cluster, args.weights
        self.route_name = args.service_name
        spec: dict = {
            "parentRefs": [{"name": cluster.gateway_name, "namespace": cluster.gateway_namespace}],
            "rules": [
                {
                    "backendRefs": [
                        {
                            "name": args.services[c],
                            "port": cluster.service_port,
                            "weight": weights[c],
                        }
                        for c in COLORS
                    ]
                }
            ],
        }
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
            },
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"route": self.route_name})
