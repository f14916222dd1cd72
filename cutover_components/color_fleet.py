"""One color's fleet: an ECS Fargate service running one pinned release."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from cutover_components.stack import ColorConfig, StackConfig
from cutover_components.tags import color_tags


@dataclass(frozen=True)
class ColorFleetArgs:
    config: StackConfig
    color: ColorConfig
    cluster_arn: pulumi.Input[str]
    execution_role_arn: pulumi.Input[str]
    log_group_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    desired_count: pulumi.Input[int]


class ColorFleet(pulumi.ComponentResource):
    """A color's task definition (image pinned by digest) and ECS service.

    Rolling updates never drop below 100% healthy, the deployment circuit breaker rolls a bad
    task definition back, and ECS's own deployment controller is used: ECS's BLUE_GREEN
    strategy would move listener weights itself and fight cutover's.
    """

    def __init__(
        self, name: str, args: ColorFleetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:ColorFleet", name, None, opts)
        config, fleet = args.config, args.color
        tags = color_tags(config, fleet)
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region_output().region

        container = pulumi.Output.all(args.log_group_name, region).apply(
            lambda v: json.dumps(
                [
                    {
                        "name": config.service.container_name,
                        "image": fleet.image,
                        "essential": True,
                        # after SIGTERM: at least as long as its target group drains it
                        "stopTimeout": config.service.stop_timeout_seconds,
                        "portMappings": [
                            {"containerPort": fleet.container_port, "protocol": "tcp"}
                        ],
                        "environment": [
                            {"name": "CUTOVER_COLOR", "value": fleet.color},
                            {"name": "CUTOVER_RELEASE", "value": fleet.release},
                        ],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": v[0],
                                "awslogs-region": v[1],
                                "awslogs-stream-prefix": fleet.color,
                            },
                        },
                    }
                ]
            )
        )
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=f"{config.service.name}-{fleet.color}",
            cpu=str(config.service.cpu),
            memory=str(config.service.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=args.execution_role_arn,
            container_definitions=container,
            tags=tags,
            opts=child,
        )
        self.service = aws.ecs.Service(
            f"{name}-service",
            name=f"{config.service.name}-{fleet.color}",
            cluster=args.cluster_arn,
            task_definition=self.task_definition.arn,
            desired_count=args.desired_count,
            launch_type="FARGATE",
            deployment_controller={"type": "ECS"},
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            health_check_grace_period_seconds=60,
            network_configuration={
                "subnets": list(config.vpc.private_subnet_ids),
                "security_groups": [args.security_group_id],
                "assign_public_ip": False,
            },
            load_balancers=[
                {
                    "target_group_arn": args.target_group_arn,
                    "container_name": config.service.container_name,
                    "container_port": fleet.container_port,
                }
            ],
            propagate_tags="SERVICE",
            wait_for_steady_state=True,
            tags=tags,
            opts=child,
        )
        self.register_outputs({"serviceName": self.service.name})
