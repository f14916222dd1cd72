"""The Gateway API HTTPRoute that weights traffic between the two colors' Services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from cutover_gates.contract import COLORS

from components.config import StackConfig


@dataclass(frozen=True)
class WeightedRouteArgs:
    config: StackConfig
    services: dict[str, str]  # color -> Service name


class WeightedRoute(pulumi.ComponentResource):
    """An HTTPRoute on the configured Gateway with one weighted backendRef per color."""

    def __init__(
        self, name: str, args: WeightedRouteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:WeightedRoute", name, None, opts)
        config = args.config
        cluster = config.kubernetes
        assert cluster is not None
        self.route_name = config.service.name
        weights = config.weights
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
                    "app.kubernetes.io/name": config.service.name,
                    "cutover/role": "production",
                },
            },
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"route": self.route_name})
