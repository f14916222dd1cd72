"""The lease on each listener of a DynamoDB journal: one item per listener, written with a
condition on its holder and expiry (`leaseUntil`, in seconds with a fraction; `expiresAt`,
whole seconds, is the table's TTL), by the one rule of `lease.lease_live`."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

from cutover_gates.contract import Holder

from cutover.errors import LockHeld
from cutover.journal.lease import LEASE_SECONDS, LeaseState, held_message


def _lock_key(listener: str) -> dict[str, Any]:
    return {"pk": {"S": f"lock#{listener}"}, "sk": {"S": "lock"}}


def _number(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 6))}


def _lock_item(listener: str, holder: Holder, now: float) -> dict[str, Any]:
    """The lock item of one listener, leased for LEASE_SECONDS from `now`."""
    until = now + LEASE_SECONDS
    return {
        **_lock_key(listener),
        "holder": {"S": holder.token},
        "info": {"S": json.dumps(holder.to_json())},
        "renewedAt": _number(now),
        "leaseUntil": _number(until),
        "expiresAt": {"N": str(math.ceil(until))},
    }


# The one rule of lease_live as a condition: a lease can be taken once its expiry is reached.
TAKEABLE = (
    "attribute_not_exists(pk) OR leaseUntil <= :now "
    "OR (attribute_not_exists(leaseUntil) AND expiresAt <= :now)"
)


class DynamoLocks:
    """The leases of `table`, through the client `db`."""

    table: str
    db: Any

    # -- the lease -----------------------------------------------------------------------

    def acquire_one(self, key: str, holder: Holder, now: float) -> bool:
        try:
            self.db.put_item(
                TableName=self.table,
                Item=_lock_item(key, holder, now),
                ConditionExpression=f"{TAKEABLE} OR holder = :me",
                ExpressionAttributeValues={":now": _number(now), ":me": {"S": holder.token}},
            )
            return True
        except self.db.exceptions.ConditionalCheckFailedException:
            pass
        current = self.lease_state(key)
        if current is None:  # released between the write and the read
            return False
        if current.live(now):
            raise LockHeld(held_message(f"listener {key}", current.holder))
        try:  # expired since the write, or its process is known dead (same host, pid gone)
            self.db.put_item(
                TableName=self.table,
                Item=_lock_item(key, holder, now),
                ConditionExpression="holder = :stale",
                ExpressionAttributeValues={":stale": {"S": current.holder.token}},
            )
            return True
        except self.db.exceptions.ConditionalCheckFailedException:
            return False

    def heartbeat(self, keys: list[str], holder: Holder, now: float) -> bool:
        until = now + LEASE_SECONDS
        for key in keys:
            try:
                self.db.update_item(
                    TableName=self.table,
                    Key=_lock_key(key),
                    UpdateExpression="SET leaseUntil = :u, expiresAt = :t, renewedAt = :now",
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={
                        ":u": _number(until),
                        ":t": {"N": str(math.ceil(until))},
                        ":now": _number(now),
                        ":me": {"S": holder.token},
                    },
                )
            except self.db.exceptions.ConditionalCheckFailedException:
                return False
        return True

    def release(self, keys: list[str], holder: Holder) -> None:
        for key in keys:
            with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
                self.db.delete_item(
                    TableName=self.table,
                    Key=_lock_key(key),
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={":me": {"S": holder.token}},
                )

    def lease_state(self, key: str) -> LeaseState | None:
        item = self.db.get_item(TableName=self.table, Key=_lock_key(key), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        until = float((item.get("leaseUntil") or item["expiresAt"])["N"])
        renewed = float(item["renewedAt"]["N"]) if "renewedAt" in item else until - LEASE_SECONDS
        try:
            holder = Holder.from_json(json.loads(item["info"]["S"]))
        except (KeyError, ValueError, TypeError):
            holder = Holder(item.get("holder", {}).get("S", ""))
        return LeaseState(holder, renewed, until)
