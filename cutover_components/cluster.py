"""The ECS cluster both colors run in, the tasks' execution role and their log group."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

import cutover_components.iam as iam


@dataclass(frozen=True)
class ServiceClusterArgs:
    service_name: str
    tags: dict[str, str]


class ServiceCluster(pulumi.ComponentResource):
    """An ECS cluster with Container Insights, a task execution role and a log group."""

    def __init__(
        self, name: str, args: ServiceClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:ServiceCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[{"name": "containerInsights", "value": "enabled"}],
            tags=args.tags,
            opts=child,
        )
        self.execution_role = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=iam.assumed_by("ecs-tasks.amazonaws.com"),
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-execution-policy",
            role=self.execution_role.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            opts=child,
        )
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/cutover/{args.service_name}",
            retention_in_days=30,
            tags=args.tags,
            opts=child,
        )
        self.register_outputs(
            {"clusterArn": self.cluster.arn, "executionRoleArn": self.execution_role.arn}
        )
