"""The IAM role the `cutover` helper runs as: exactly the calls a shift makes, on this stack's resources."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from cutover_components.helper_permissions import helper_policy, kubernetes_helper_rules


@dataclass(frozen=True)
class HelperRoleArgs:
    tags: dict[str, str]
    listener_arn: pulumi.Input[str]
    alarm_arns: list[pulumi.Input[str]]
    table_arn: pulumi.Input[str]
    service_arns: list[pulumi.Input[str]]
    topic_arn: pulumi.Input[str]


class HelperRole(pulumi.ComponentResource):
    """A role for the helper, assumable by principals of this account, with `helper_policy`."""

    def __init__(
        self, name: str, args: HelperRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:HelperRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output().account_id
        self.role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=account.apply(
                lambda a: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{a}:root"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                )
            ),
            max_session_duration=3600,
            tags=args.tags,
            opts=child,
        )
        document = pulumi.Output.all(
            args.listener_arn,
            pulumi.Output.all(*args.alarm_arns),
            args.table_arn,
            pulumi.Output.all(*args.service_arns),
            args.topic_arn,
        ).apply(lambda v: json.dumps(helper_policy(*v)))
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id, policy=document, opts=child
        )
        self.register_outputs({"roleArn": self.role.arn})


@dataclass(frozen=True)
class KubernetesHelperRoleArgs:
    namespace: str
    deployments: list[str]
    route: str | None  # the HTTPRoute the helper patches (gateway routing)
    labels: dict[str, str]


class KubernetesHelperRole(pulumi.ComponentResource):
    """A namespaced Role `cutover-helper` for the helper's Kubernetes calls; bind it to the
    identity that runs `cutover shift` (a CI service account or an operators' group)."""

    def __init__(
        self, name: str, args: KubernetesHelperRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        import pulumi_kubernetes as k8s  # slow to import (seconds): ECS stacks never need it

        super().__init__("cutover:index:KubernetesHelperRole", name, None, opts)
        self.role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata={"name": "cutover-helper", "namespace": args.namespace, "labels": args.labels},
            rules=kubernetes_helper_rules(args.deployments, args.route),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_name = "cutover-helper"
        self.register_outputs({"role": self.role_name})
