"""One color on Kubernetes: a Deployment, its PodDisruptionBudget and its Service; with alb
routing, also the TargetGroupBinding that registers the Service's pods in the color's ALB
target group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from cutover_gates.markers import KEEP_ALIVE_MARKER, LONGEST_REQUEST_MARKER

from cutover_components.stack import ColorConfig, KubernetesConfig, ServiceConfig

COLOR_LABEL = "cutover/color"
RELEASE_LABEL = "cutover/release"
CAPACITY_ANNOTATION = "cutover/capacity"


def color_labels(service: ServiceConfig, color: ColorConfig) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": service.name,
        COLOR_LABEL: color.color,
        RELEASE_LABEL: color.release,
    }


@dataclass(frozen=True)
class KubernetesColorArgs:
    service: ServiceConfig
    cluster: KubernetesConfig
    color: ColorConfig
    replicas: pulumi.Input[int]
    # alb routing: the color's target group and the ALB's security group
    target_group_arn: pulumi.Input[str] | None = None
    load_balancer_security_group_id: pulumi.Input[str] | None = None


class KubernetesColor(pulumi.ComponentResource):
    """A color's pods, never fewer ready than its replicas while they roll (maxUnavailable 0).

    A stopping pod keeps serving for `kubernetes.preStopSeconds` (a preStop sleep, until the ALB
    or the Gateway has stopped sending to it), then has `service.stopTimeoutSeconds` after
    SIGTERM to finish what is in flight: its terminationGracePeriodSeconds is the two together.
    """

    def __init__(
        self, name: str, args: KubernetesColorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:KubernetesColor", name, None, opts)
        service, cluster, fleet = args.service, args.cluster, args.color
        child = pulumi.ResourceOptions(parent=self)
        labels = color_labels(service, fleet)
        selector = {k: labels[k] for k in ("app.kubernetes.io/name", COLOR_LABEL)}
        self.resource_name = f"{service.name}-{fleet.color}"
        metadata: dict[str, Any] = {
            "name": self.resource_name,
            "namespace": cluster.namespace,
            "labels": labels,
            "annotations": {
                CAPACITY_ANNOTATION: str(fleet.capacity),
                f"cutover/{LONGEST_REQUEST_MARKER}": str(service.longest_request_seconds),
                f"cutover/{KEEP_ALIVE_MARKER}": str(service.keep_alive_seconds),
            },
        }
        probe: dict[str, Any] = {
            "httpGet": {"path": fleet.health_check_path, "port": fleet.container_port},
            "periodSeconds": 5,
            "failureThreshold": 3,
        }
        resources: dict[str, Any] = {"cpu": cluster.cpu, "memory": cluster.memory}
        container: dict[str, Any] = {
            "name": service.container_name,
            "image": fleet.image,
            "ports": [{"containerPort": fleet.container_port}],
            "readinessProbe": probe,
            "livenessProbe": {**probe, "initialDelaySeconds": 10},
            "resources": {"requests": resources, "limits": resources},
            "env": [
                {"name": "CUTOVER_COLOR", "value": fleet.color},
                {"name": "CUTOVER_RELEASE", "value": fleet.release},
            ],
        }
        if cluster.pre_stop_seconds > 0:
            container["lifecycle"] = {"preStop": {"sleep": {"seconds": cluster.pre_stop_seconds}}}
        pod: dict[str, Any] = {
            "containers": [container],
            "terminationGracePeriodSeconds": cluster.pre_stop_seconds
            + service.stop_timeout_seconds,
        }
        deployment: dict[str, Any] = {
            "replicas": args.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": {"metadata": {"labels": labels}, "spec": pod},
        }
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=metadata, spec=deployment, opts=child
        )
        plain: dict[str, Any] = {**metadata, "annotations": {}}
        budget: dict[str, Any] = {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=plain, spec=budget, opts=child
        )
        ports = [{"port": cluster.service_port, "targetPort": fleet.container_port}]
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=plain,
            spec={"selector": selector, "ports": ports},
            opts=child,
        )
        self.binding = None
        if args.target_group_arn is not None:
            self.binding = k8s.apiextensions.CustomResource(
                f"{name}-binding",
                api_version="elbv2.k8s.aws/v1beta1",
                kind="TargetGroupBinding",
                metadata=plain,
                spec={
                    "serviceRef": {"name": self.resource_name, "port": cluster.service_port},
                    "targetGroupARN": args.target_group_arn,
                    "targetType": "ip",
                    # the controller opens the pods' port to the ALB, and nothing else
                    "networking": {
                        "ingress": [
                            {
                                "from": [
                                    {
                                        "securityGroup": {
                                            "groupID": args.load_balancer_security_group_id
                                        }
                                    }
                                ],
                                "ports": [{"protocol": "TCP", "port": fleet.container_port}],
                            }
                        ]
                    },
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service]),
            )
        self.register_outputs({"deployment": self.resource_name})
