"""The journal in the stack's DynamoDB table (output `journalTable`).

Items: `deploy#<scope>` / `<id>` (the deployment), `control#<scope>` / `<id>` (a promote or
abort request), `lock#<listener>` / `lock` (the lease, conditional on holder and expiry).
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from cutover_gates.contract import Status

from cutover.deployment import Deployment
from cutover.errors import LockHeld
from cutover.journal.lease import (
    LEASE_SECONDS,
    Holder,
    LeaseState,
    dead_here,
    finished_elsewhere,
    held_message,
)

ACTIVE = "active"


def _lock_key(listener: str) -> dict[str, Any]:
    return {"pk": {"S": f"lock#{listener}"}, "sk": {"S": "lock"}}


def _lock_item(listener: str, holder: Holder, now: int) -> dict[str, Any]:
    """The lock item of one listener, leased for LEASE_SECONDS from `now`."""
    return {
        **_lock_key(listener),
        "holder": {"S": holder["holder"]},
        "info": {"S": json.dumps(holder)},
        "expiresAt": {"N": str(now + LEASE_SECONDS)},
    }


class DynamoJournal:
    def __init__(self, table: str) -> None:
        from cutover.aws import client

        self.table = table
        self.db = client("dynamodb")
        self._marked: set[str] = set()

    # -- the lease -----------------------------------------------------------------------

    def acquire_one(self, key: str, holder: Holder) -> bool:
        now = int(time.time())
        try:
            self.db.put_item(
                TableName=self.table,
                Item=_lock_item(key, holder, now),
                ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR holder = :me",
                ExpressionAttributeValues={":now": {"N": str(now)}, ":me": {"S": holder["holder"]}},
            )
            return True
        except self.db.exceptions.ConditionalCheckFailedException:
            pass
        current = self.lock_holder(key)
        if current is None:  # released or expired between the write and the read
            return False
        if not dead_here(current):
            raise LockHeld(held_message(f"listener {key}", current))
        try:  # a lease whose process is known dead (same host, pid gone)
            self.db.put_item(
                TableName=self.table,
                Item=_lock_item(key, holder, int(time.time())),
                ConditionExpression="holder = :stale",
                ExpressionAttributeValues={":stale": {"S": current["holder"]}},
            )
            return True
        except self.db.exceptions.ConditionalCheckFailedException:
            return False

    def heartbeat(self, keys: list[str], holder: Holder) -> None:
        for key in keys:
            self.db.update_item(
                TableName=self.table,
                Key=_lock_key(key),
                UpdateExpression="SET expiresAt = :t",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={
                    ":t": {"N": str(int(time.time()) + LEASE_SECONDS)},
                    ":me": {"S": holder["holder"]},
                },
            )

    def release(self, keys: list[str], holder: Holder) -> None:
        for key in keys:
            with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
                self.db.delete_item(
                    TableName=self.table,
                    Key=_lock_key(key),
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={":me": {"S": holder["holder"]}},
                )

    def lock_holder(self, key: str) -> Holder | None:
        state = self.lease_state(key)
        return state.holder if state is not None and time.time() <= state.expires_at else None

    def lease_state(self, key: str) -> LeaseState | None:
        item = self.db.get_item(TableName=self.table, Key=_lock_key(key), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        expires = float(item["expiresAt"]["N"])
        holder = dict(json.loads(item["info"]["S"]))
        return LeaseState(holder, expires - LEASE_SECONDS, expires)

    # -- deployments -----------------------------------------------------------------------

    def save(self, deployment: Deployment) -> None:
        item = {
            "pk": {"S": f"deploy#{deployment.scope}"},
            "sk": {"S": deployment.id},
            "doc": {"S": json.dumps(deployment.to_json())},
            "status": {"S": str(deployment.status)},
        }
        if deployment.status.active:  # never over a deployment another process finished
            try:
                self.db.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#s) OR #s IN (:a, :b)",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":a": {"S": str(Status.IN_PROGRESS)},
                        ":b": {"S": str(Status.PAUSED)},
                    },
                )
            except self.db.exceptions.ConditionalCheckFailedException:
                stored = self.load(deployment.scope, deployment.id)
                raise finished_elsewhere(deployment.id, str(stored and stored.status)) from None
        else:
            self.db.put_item(TableName=self.table, Item=item)
        # the index of deployments that may hold traffic split: what the watchdog reads
        marker = {"pk": {"S": ACTIVE}, "sk": {"S": f"{deployment.scope}#{deployment.id}"}}
        if deployment.status.active and deployment.id not in self._marked:
            self.db.put_item(TableName=self.table, Item=marker)
            self._marked.add(deployment.id)
        elif not deployment.status.active:
            self.db.delete_item(TableName=self.table, Key=marker)
            self._marked.discard(deployment.id)

    def active(self) -> list[Deployment]:
        """Deployments in progress or paused, in every scope (a query of the index, no scan)."""
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": ACTIVE}},
            ConsistentRead=True,
        )
        found = []
        for page in pages:
            for item in page["Items"]:
                scope, _, deployment_id = item["sk"]["S"].partition("#")
                deployment = self.load(scope, deployment_id)
                if deployment is not None and deployment.status.active:
                    found.append(deployment)
        return found

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None:
        if deployment_id:
            item = self.db.get_item(
                TableName=self.table,
                Key={"pk": {"S": f"deploy#{scope}"}, "sk": {"S": deployment_id}},
                ConsistentRead=True,
            ).get("Item")
            return _document(item) if item else None
        items = self.db.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"deploy#{scope}"}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        return _document(items[0]) if items else None

    def history(self, scope: str, since: str = "") -> list[Deployment]:
        """A paginated query of the scope's partition, from `since` on: never a scan."""
        values = {":pk": {"S": f"deploy#{scope}"}}
        condition = "pk = :pk"
        if since:  # a key condition on the sort key (no empty string allowed there)
            values[":since"] = {"S": since}
            condition += " AND sk >= :since"
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table, KeyConditionExpression=condition, ExpressionAttributeValues=values
        )
        return [_document(i) for page in pages for i in page["Items"]]

    # -- control requests --------------------------------------------------------------------

    def request(self, scope: str, deployment_id: str, command: str) -> None:
        self.db.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"control#{scope}"},
                "sk": {"S": deployment_id},
                "command": {"S": command},
            },
        )

    def requested(self, scope: str, deployment_id: str) -> str | None:
        item = self.db.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"control#{scope}"}, "sk": {"S": deployment_id}},
            ConsistentRead=True,
        ).get("Item")
        return item["command"]["S"] if item else None


def _document(item: dict[str, Any]) -> Deployment:
    return Deployment.from_json(json.loads(item["doc"]["S"]))
