"""The weighted Application Load Balancer in front of both colors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from cutover_gates.contract import COLORS, Color
from cutover_gates.markers import ROLLBACK_WINDOW_MARKER

from cutover_components.stack import StackConfig
from cutover_components.tags import color_tags, stack_tags

# The current AWS policy: TLS 1.3 with TLS 1.2 fallback and forward-secret ciphers only.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class WeightedLoadBalancerArgs:
    config: StackConfig


def forward_action(
    arns: Mapping[Color, pulumi.Input[str]], weights: Mapping[str, int], stickiness_seconds: int = 0
) -> aws.lb.ListenerDefaultActionArgsDict:
    """A listener default action forwarding to both colors with `weights`, sticky for
    `stickiness_seconds` (0: not sticky)."""
    sticky = stickiness_seconds > 0
    return {
        "type": "forward",
        "forward": {
            "target_groups": [{"arn": arns[c], "weight": weights[c]} for c in COLORS],
            "stickiness": {"enabled": sticky, "duration": stickiness_seconds if sticky else 1},
        },
    }


class WeightedLoadBalancer(pulumi.ComponentResource):
    """An ALB whose HTTPS listener splits traffic between the blue and green target groups.

    Each color's target group is declared here, before the listeners, so AWS's create order
    holds (target group, then a listener that uses it, then the ECS service registering into
    it). The test listener always forwards to the inactive color, for smoke tests.
    """

    def __init__(
        self,
        name: str,
        args: WeightedLoadBalancerArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cutover:index:WeightedLoadBalancer", name, None, opts)
        config = args.config
        tags = stack_tags(config)
        child = pulumi.ResourceOptions(parent=self)
        public_ports = sorted({80, 443, config.test_listener_port})

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-alb-sg",
            description=f"{config.service.name} load balancer: HTTP(S) from the internet",
            vpc_id=config.vpc.vpc_id,
            ingress=[
                {"protocol": "tcp", "from_port": p, "to_port": p, "cidr_blocks": ["0.0.0.0/0"]}
                for p in public_ports
            ],
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
            tags=tags,
            opts=child,
        )
        # ECS tasks get a security group open only to the ALB; on Kubernetes the
        # TargetGroupBindings open the pods' port to the ALB instead
        self.service_security_group: aws.ec2.SecurityGroup | None = None
        if config.platform == "ecs":
            container_ports = sorted({config.color(c).container_port for c in COLORS})
            self.service_security_group = aws.ec2.SecurityGroup(
                f"{name}-service-sg",
                description=f"{config.service.name} tasks: only from the load balancer",
                vpc_id=config.vpc.vpc_id,
                ingress=[
                    {
                        "protocol": "tcp",
                        "from_port": p,
                        "to_port": p,
                        "security_groups": [self.security_group.id],
                    }
                    for p in container_ports
                ],
                egress=[
                    {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}
                ],
                tags=tags,
                opts=child,
            )
        self.load_balancer = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            subnets=list(config.vpc.public_subnet_ids),
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            enable_deletion_protection=config.production,
            idle_timeout=config.idle_timeout_seconds,
            tags=tags,
            opts=child,
        )
        self.target_groups: dict[Color, aws.lb.TargetGroup] = {}
        for color in COLORS:
            fleet = config.color(color)
            self.target_groups[color] = aws.lb.TargetGroup(
                f"{name}-{color}-tg",
                port=fleet.container_port,
                protocol="HTTP",
                target_type="ip",
                vpc_id=config.vpc.vpc_id,
                deregistration_delay=config.deregistration_delay_seconds,
                slow_start=config.slow_start_seconds,
                health_check={
                    "enabled": True,
                    "path": fleet.health_check_path,
                    "matcher": "200-399",
                    "interval": 10,
                    "timeout": 5,
                    "healthy_threshold": 3,
                    "unhealthy_threshold": 2,
                },
                tags=color_tags(config, fleet),
                opts=child,
            )
        arns = {c: tg.arn for c, tg in self.target_groups.items()}

        self.redirect_listener = aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=self.load_balancer.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                {
                    "type": "redirect",
                    "redirect": {"protocol": "HTTPS", "port": "443", "status_code": "HTTP_301"},
                }
            ],
            tags=tags,
            opts=child,
        )
        self.listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=config.certificate,
            default_actions=[forward_action(arns, config.weights, config.stickiness_seconds)],
            tags={
                **tags,
                "cutover:role": "production",
                # how long a sticky client may keep reaching a color that lost its weight
                f"cutover:{ROLLBACK_WINDOW_MARKER}": str(config.rollback_window_minutes),
            },
            opts=child,
        )
        inactive = config.inactive_color
        self.test_listener = aws.lb.Listener(
            f"{name}-test",
            load_balancer_arn=self.load_balancer.arn,
            port=config.test_listener_port,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=config.certificate,
            default_actions=[forward_action(arns, {inactive: 1, config.active_color: 0})],
            tags={**tags, "cutover:role": "test", "cutover:color": inactive},
            opts=child,
        )
        self.test_url = pulumi.Output.concat(
            "https://", self.load_balancer.dns_name, f":{config.test_listener_port}"
        )
        self.register_outputs(
            {
                "listenerArn": self.listener.arn,
                "testListenerArn": self.test_listener.arn,
                "dnsName": self.load_balancer.dns_name,
            }
        )
