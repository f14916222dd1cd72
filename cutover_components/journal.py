"""The deployment journal: the helper's record of every shift, and its lock."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Lock items carry their lease expiry here (epoch seconds); DynamoDB deletes expired ones.
TTL_ATTRIBUTE = "expiresAt"


@dataclass(frozen=True)
class DeploymentJournalArgs:
    tags: dict[str, str]
    production: bool


class DeploymentJournal(pulumi.ComponentResource):
    """A DynamoDB table (pk, sk), on demand, with point-in-time recovery and a lease TTL."""

    def __init__(
        self, name: str, args: DeploymentJournalArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cutover:index:DeploymentJournal", name, None, opts)
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            billing_mode="PAY_PER_REQUEST",
            hash_key="pk",
            range_key="sk",
            attributes=[{"name": "pk", "type": "S"}, {"name": "sk", "type": "S"}],
            point_in_time_recovery={"enabled": True},
            server_side_encryption={"enabled": True},
            ttl={"attribute_name": TTL_ATTRIBUTE, "enabled": True},
            deletion_protection_enabled=args.production,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"tableName": self.table.name})
