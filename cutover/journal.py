"""The deployment journal and lock.

Every shift is a deployment document (snapshot, plan, events, outcome) saved before and after
each change, so a process killed at any point leaves enough to restore the snapshot exactly.
Locks are per listener: a DynamoDB conditional write with a lease that a heartbeat extends
(a dead process's lease expires), or, for `file:` journals, an flock the kernel releases when
the process dies. Kubernetes stacks without a table keep theirs in their namespace
(cutover.kube_journal).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from cutover.errors import ConfigError, LockHeld

LEASE_SECONDS = 30


def scope_of(listeners: list[str]) -> str:
    """A stable key for a set of listeners (a release train shares one scope)."""
    joined = ",".join(sorted(listeners))
    return hashlib.sha256(joined.encode()).hexdigest()[:20]


def holder_identity(deployment_id: str) -> dict[str, Any]:
    return {
        "holder": f"{deployment_id}@{socket.gethostname()}:{os.getpid()}",
        "deployment": deployment_id,
        "who": os.environ.get("USER") or os.environ.get("GITHUB_ACTOR") or "unknown",
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def _lock_item(listener: str, holder: dict[str, Any], now: int) -> dict[str, Any]:
    """The lock item of one listener, leased for LEASE_SECONDS from `now`."""
    return {
        "pk": {"S": f"lock#{listener}"},
        "sk": {"S": "lock"},
        "holder": {"S": holder["holder"]},
        "info": {"S": json.dumps(holder)},
        "expiresAt": {"N": str(now + LEASE_SECONDS)},
    }


def dead_here(holder: dict[str, Any]) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if holder.get("host") != socket.gethostname() or not holder.get("pid"):
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def describe_holder(holder: dict[str, Any]) -> str:
    return (
        f"deployment {holder.get('deployment')} by {holder.get('who')} on "
        f"{holder.get('host')} (pid {holder.get('pid')})"
    )


def acquire_each(
    keys: list[str],
    holder: dict[str, Any],
    acquire_one: Callable[[str, dict[str, Any]], None],
    release: Callable[[list[str], dict[str, Any]], None],
) -> None:
    """Lock every key in a fixed order (no two deployments deadlock); on LockHeld, give back
    the ones taken."""
    taken: list[str] = []
    try:
        for key in sorted(keys):
            acquire_one(key, holder)
            taken.append(key)
    except LockHeld:
        release(taken, holder)
        raise


class Journal(Protocol):
    def acquire(self, listeners: list[str], holder: dict[str, Any]) -> None: ...
    def heartbeat(self, listeners: list[str], holder: dict[str, Any]) -> None: ...
    def release(self, listeners: list[str], holder: dict[str, Any]) -> None: ...
    def lock_holder(self, listener: str) -> dict[str, Any] | None: ...
    def save(self, deployment: dict[str, Any]) -> None: ...
    def load(self, scope: str, deployment_id: str | None = None) -> dict[str, Any] | None: ...
    def history(self, scope: str) -> list[dict[str, Any]]: ...
    def request(self, scope: str, deployment_id: str, command: str) -> None: ...
    def requested(self, scope: str, deployment_id: str) -> str | None: ...


class DynamoJournal:
    """The journal in the stack's DynamoDB table (output `journalTable`)."""

    def __init__(self, table: str) -> None:
        from cutover.aws import client

        self.table = table
        self.db = client("dynamodb")

    def acquire(self, listeners: list[str], holder: dict[str, Any]) -> None:
        acquire_each(listeners, holder, self._acquire_one, self.release)

    def _acquire_one(self, listener: str, holder: dict[str, Any]) -> None:
        now = int(time.time())
        try:
            self.db.put_item(
                TableName=self.table,
                Item=_lock_item(listener, holder, now),
                ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR holder = :me",
                ExpressionAttributeValues={":now": {"N": str(now)}, ":me": {"S": holder["holder"]}},
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            current = self.lock_holder(listener) or {}
            if dead_here(current):
                self._take_over(listener, holder, current)
                return
            raise LockHeld(
                f"listener {listener} is locked by {describe_holder(current)}; wait for it to finish, "
                "or if that process is gone, its lease expires within "
                f"{LEASE_SECONDS}s"
            ) from None

    def _take_over(self, listener: str, holder: dict[str, Any], stale: dict[str, Any]) -> None:
        """Replace a lease whose process is known dead (same host, pid gone)."""
        try:
            self.db.put_item(
                TableName=self.table,
                Item=_lock_item(listener, holder, int(time.time())),
                ConditionExpression="holder = :stale",
                ExpressionAttributeValues={":stale": {"S": stale["holder"]}},
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            raise LockHeld(f"listener {listener} was just locked by another deployment") from None

    def heartbeat(self, listeners: list[str], holder: dict[str, Any]) -> None:
        for listener in listeners:
            self.db.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"lock#{listener}"}, "sk": {"S": "lock"}},
                UpdateExpression="SET expiresAt = :t",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={
                    ":t": {"N": str(int(time.time()) + LEASE_SECONDS)},
                    ":me": {"S": holder["holder"]},
                },
            )

    def release(self, listeners: list[str], holder: dict[str, Any]) -> None:
        for listener in listeners:
            with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
                self.db.delete_item(
                    TableName=self.table,
                    Key={"pk": {"S": f"lock#{listener}"}, "sk": {"S": "lock"}},
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={":me": {"S": holder["holder"]}},
                )

    def lock_holder(self, listener: str) -> dict[str, Any] | None:
        item = self.db.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"lock#{listener}"}, "sk": {"S": "lock"}},
            ConsistentRead=True,
        ).get("Item")
        if not item or int(item["expiresAt"]["N"]) < time.time():
            return None
        return dict(json.loads(item["info"]["S"]))

    def save(self, deployment: dict[str, Any]) -> None:
        self.db.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"deploy#{deployment['scope']}"},
                "sk": {"S": deployment["id"]},
                "doc": {"S": json.dumps(deployment)},
            },
        )

    def load(self, scope: str, deployment_id: str | None = None) -> dict[str, Any] | None:
        if deployment_id:
            item = self.db.get_item(
                TableName=self.table,
                Key={"pk": {"S": f"deploy#{scope}"}, "sk": {"S": deployment_id}},
                ConsistentRead=True,
            ).get("Item")
            return json.loads(item["doc"]["S"]) if item else None
        items = self.db.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"deploy#{scope}"}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        return json.loads(items[0]["doc"]["S"]) if items else None

    def history(self, scope: str) -> list[dict[str, Any]]:
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"deploy#{scope}"}},
        )
        return [json.loads(i["doc"]["S"]) for page in pages for i in page["Items"]]

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


class FileJournal:
    """The journal in a local JSON file; locks are flocks beside it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.parent.is_dir():
            raise ConfigError(f"--journal file:{path}: folder {path.parent} does not exist")
        self._locks: dict[str, Any] = {}

    def _lock_file(self, listener: str) -> Path:
        return self.path.with_name(f"{self.path.name}.lock-{scope_of([listener])}")

    def acquire(self, listeners: list[str], holder: dict[str, Any]) -> None:
        taken: list[str] = []
        for listener in sorted(listeners):
            handle = open(self._lock_file(listener), "a+")  # noqa: SIM115 - held until release
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                current = json.loads(handle.read() or "{}")
                handle.close()
                self.release(taken, holder)
                raise LockHeld(
                    f"listener {listener} is locked by {describe_holder(current)}"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(holder))
            handle.flush()
            self._locks[listener] = handle
            taken.append(listener)

    def heartbeat(self, listeners: list[str], holder: dict[str, Any]) -> None:
        """Nothing to renew: the kernel holds an flock for as long as the process lives."""

    def release(self, listeners: list[str], holder: dict[str, Any]) -> None:
        for listener in listeners:
            handle = self._locks.pop(listener, None)
            if handle is not None:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()

    def lock_holder(self, listener: str) -> dict[str, Any] | None:
        path = self._lock_file(listener)
        if not path.exists():
            return None
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                return dict(json.loads(handle.read() or "{}"))
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    @contextlib.contextmanager
    def _document(self, write: bool = True) -> Iterator[dict[str, Any]]:
        """The journal file under a short exclusive lock; written back atomically when `write`."""
        with open(self.path.with_name(self.path.name + ".mutex"), "a") as mutex:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            try:
                data = json.loads(self.path.read_text()) if self.path.exists() else {}
            except json.JSONDecodeError as e:
                raise ConfigError(
                    f"--journal file:{self.path}: not a cutover journal ({e.msg})"
                ) from None
            data.setdefault("deployments", {})
            data.setdefault("controls", {})
            yield data
            if write:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(data, indent=1))
                os.replace(tmp, self.path)

    def save(self, deployment: dict[str, Any]) -> None:
        with self._document() as data:
            data["deployments"][deployment["id"]] = deployment

    def _all(self, scope: str) -> list[dict[str, Any]]:
        with self._document(write=False) as data:
            found = [d for d in data["deployments"].values() if d["scope"] == scope]
        return sorted(found, key=lambda d: d["id"])

    def load(self, scope: str, deployment_id: str | None = None) -> dict[str, Any] | None:
        found = self._all(scope)
        if deployment_id:
            return next((d for d in found if d["id"] == deployment_id), None)
        return found[-1] if found else None

    def history(self, scope: str) -> list[dict[str, Any]]:
        return self._all(scope)

    def request(self, scope: str, deployment_id: str, command: str) -> None:
        with self._document() as data:
            data["controls"][f"{scope}/{deployment_id}"] = command

    def requested(self, scope: str, deployment_id: str) -> str | None:
        with self._document(write=False) as data:
            return data["controls"].get(f"{scope}/{deployment_id}")


def open_journal(spec: str, table: str | None, namespace: str | None) -> Journal:
    """`stack` (the stack's own: its DynamoDB table, or on a Kubernetes stack without one, its
    namespace), `dynamodb`, `kubernetes` or `file:PATH`."""
    if spec == "stack":
        spec = "dynamodb" if table else "kubernetes"
    if spec == "dynamodb":
        if not table:
            raise ConfigError(
                "--journal dynamodb: this stack has no journal table; use --journal stack"
            )
        return DynamoJournal(table)
    if spec == "kubernetes":
        if not namespace:
            raise ConfigError(
                "--journal kubernetes: this stack has no Kubernetes namespace; use --journal stack"
            )
        from cutover.kube_journal import KubernetesJournal

        return KubernetesJournal(namespace)
    if spec.startswith("file:") and len(spec) > 5:
        return FileJournal(Path(spec[5:]).expanduser().resolve())
    raise ConfigError(f"--journal {spec!r}; expected stack, dynamodb, kubernetes or file:PATH")
