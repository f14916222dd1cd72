"""The journal in the stack's DynamoDB table (output `journalTable`).

Items:
- `deploy#<scope>` / `<id>`: the deployment, its document zlib-compressed in `docz` (older
  items: JSON in `doc`), with `status` and `generation` as attributes for the conditions;
- `active` / `<scope>#<id>`: the index of deployments that may hold traffic split;
- `control#<scope>` / `<id>`: a promote or abort request;
- `lock#<listener>` / `lock`: the lease, conditional on holder and expiry (`leaseUntil`,
  in seconds with a fraction; `expiresAt`, whole seconds, is the table's TTL);
- `outcome#<listener>` / `<color>`: how the latest shift towards that color ended, ordered
  by its deployment's epoch;
- `owner#<listener>` / `owner`: the newest deployment that took the listener, and its epoch.

A deployment's `generation` lives in its item's attribute, which `claim` bumps and every
load reads (over the document's copy), so what a claim writes is what the next load reads.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cutover_gates.contract import Color, Outcome, Status, parse_color

from cutover.aws import client
from cutover.deployment import Deployment, UnknownStatus
from cutover.journal.dynamodb_locks import DynamoLocks
from cutover.journal.items import Skipped, parse_item, parse_outcome, skip
from cutover.journal.lease import (
    finished_elsewhere,
)
from cutover.journal.owner import Owner
from cutover.summary import Summary

ACTIVE = "active"


def _document(item: dict[str, Any]) -> str | bytes:
    if "docz" in item:
        return zlib.decompress(item["docz"]["B"])
    return str(item["doc"]["S"])


class DynamoJournal(DynamoLocks):
    def __init__(self, table: str) -> None:
        self.table = table
        self.db = client("dynamodb")
        self._marked: set[str] = set()
        self.skipped: list[Skipped] = []

    # -- deployments -----------------------------------------------------------------------

    def _key(self, scope: str, deployment_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"deploy#{scope}"}, "sk": {"S": deployment_id}}

    def save(self, deployment: Deployment) -> None:
        document = json.dumps(deployment.to_json(), separators=(",", ":")).encode()
        item = {
            **self._key(deployment.scope, deployment.id),
            "docz": {"B": zlib.compress(document, 6)},
            "status": {"S": str(deployment.status)},
            "generation": {"N": str(deployment.generation)},
        }
        if deployment.status.finished:  # what kpis read without the document
            summary = json.dumps(Summary.of(deployment).to_json(), separators=(",", ":"))
            item["summary"] = {"S": summary}
        if deployment.journaled is None:
            condition, values = "attribute_not_exists(pk)", {}
        else:
            condition = "#s = :was AND generation = :g"
            values = {
                ":was": {"S": str(deployment.journaled)},
                ":g": {"N": str(deployment.generation)},
            }
        try:
            self.db.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": {"#s": "status"}} if values else {}),
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            raise self._taken(deployment) from None
        deployment.journaled = deployment.status
        # the index of deployments that may hold traffic split: what the watchdog reads
        marker = {"pk": {"S": ACTIVE}, "sk": {"S": f"{deployment.scope}#{deployment.id}"}}
        if deployment.status.active and deployment.id not in self._marked:
            self.db.put_item(TableName=self.table, Item=marker)
            self._marked.add(deployment.id)
        elif not deployment.status.active:
            self.db.delete_item(TableName=self.table, Key=marker)
            self._marked.discard(deployment.id)
            for key, outcome in deployment.outcomes().items():
                self._record_outcome(key, outcome)

    def _taken(self, deployment: Deployment) -> Exception:
        stored = self.db.get_item(
            TableName=self.table,
            Key=self._key(deployment.scope, deployment.id),
            ConsistentRead=True,
        ).get("Item")
        if stored is None:
            return finished_elsewhere(deployment.id, "its journal item is gone")
        generation = stored.get("generation", {}).get("N", "0")
        return finished_elsewhere(
            deployment.id, f"now {stored['status']['S']}, generation {generation}"
        )

    def _record_outcome(self, key: str, outcome: Outcome) -> None:
        with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
            self.db.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"outcome#{key}"},
                    "sk": {"S": outcome.color},
                    "deployment": {"S": outcome.deployment},
                    "epoch": {"N": str(outcome.epoch)},
                    "doc": {"S": json.dumps(outcome.to_json())},
                },
                # a later deployment's outcome is never replaced by an earlier one's: by
                # epoch, or by id where an earlier release wrote none (Outcome.newer_than)
                ConditionExpression="attribute_not_exists(deployment) OR epoch < :e OR "
                "((attribute_not_exists(epoch) OR epoch = :e) AND deployment <= :id)",
                ExpressionAttributeValues={
                    ":id": {"S": outcome.deployment},
                    ":e": {"N": str(outcome.epoch)},
                },
            )

    # -- owners ------------------------------------------------------------------------------

    def _owner_key(self, key: str) -> dict[str, Any]:
        return {"pk": {"S": f"owner#{key}"}, "sk": {"S": "owner"}}

    def owner(self, key: str) -> Owner | None:
        item = self.db.get_item(
            TableName=self.table, Key=self._owner_key(key), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return Owner(int(item["epoch"]["N"]), item["deployment"]["S"], item["scope"]["S"])

    def take(self, key: str, owner: Owner) -> bool:
        seen = owner.epoch - 1
        try:
            self.db.put_item(
                TableName=self.table,
                Item={
                    **self._owner_key(key),
                    "epoch": {"N": str(owner.epoch)},
                    "deployment": {"S": owner.deployment},
                    "scope": {"S": owner.scope},
                },
                ConditionExpression="attribute_not_exists(pk)" if seen == 0 else "epoch = :seen",
                **({} if seen == 0 else {"ExpressionAttributeValues": {":seen": {"N": str(seen)}}}),
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def outcomes(self, key: str) -> dict[Color, Outcome]:
        items = self.db.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"outcome#{key}"}},
            ConsistentRead=True,
        )["Items"]
        found: dict[Color, Outcome] = {}
        for item in items:
            outcome = parse_outcome(
                f"outcome#{key}/{item['sk']['S']}", item["doc"]["S"], self.skipped
            )
            if outcome is not None:
                found[parse_color(outcome.color)] = outcome
        return found

    def claim(self, deployment: Deployment) -> None:
        was = str(deployment.journaled or deployment.status)
        if deployment.generation:
            condition = "#s = :was AND generation = :g"
            values = {":was": {"S": was}, ":g": {"N": str(deployment.generation)}}
        else:  # written by a release before generations: its first claim
            condition = "#s = :was AND (attribute_not_exists(generation) OR generation = :g)"
            values = {":was": {"S": was}, ":g": {"N": "0"}}
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(deployment.scope, deployment.id),
                UpdateExpression="SET generation = :new",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    **values,
                    ":new": {"N": str(deployment.generation + 1)},
                },
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            raise self._taken(deployment) from None
        deployment.generation += 1

    def _item(self, item: dict[str, Any]) -> Deployment | None:
        key = f"{item['pk']['S']}/{item['sk']['S']}"
        try:
            document = _document(item)
        except (KeyError, zlib.error) as e:
            why = f"missing {e}" if isinstance(e, KeyError) else f"not readable ({e})"
            skip(self.skipped, key, why)
            return None
        found = parse_item(key, document, self.skipped)
        if found is not None and "generation" in item:  # the attribute a claim bumps
            found.generation = int(item["generation"]["N"])
        return found

    def active(self) -> list[Deployment]:
        """Deployments in progress or paused, in every scope (a query of the index, no scan)."""
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": ACTIVE}},
            ConsistentRead=True,
        )
        keys = []
        for page in pages:
            for item in page["Items"]:
                scope, _, deployment_id = item["sk"]["S"].partition("#")
                keys.append(self._key(scope, deployment_id))
        found = []
        for start in range(0, len(keys), 100):  # BatchGetItem takes 100 keys a call
            request = {self.table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            while request:
                answer = self.db.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.table, []):
                    deployment = self._item(item)
                    if deployment is not None and deployment.status.active:
                        found.append(deployment)
                request = answer.get("UnprocessedKeys") or {}
        return sorted(found, key=lambda d: d.order)

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None:
        if deployment_id:
            item = self.db.get_item(
                TableName=self.table, Key=self._key(scope, deployment_id), ConsistentRead=True
            ).get("Item")
            return self._item(item) if item else None
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"deploy#{scope}"}},
            ScanIndexForward=False,
            ConsistentRead=True,
            PaginationConfig={"PageSize": 5},
        )
        for page in pages:  # the newest id that parses
            for item in page["Items"]:
                deployment = self._item(item)
                if deployment is not None:
                    return deployment
        return None

    def summaries(self, scope: str, since: str = "") -> list[Summary]:
        """A paginated query of the scope's partition from `since` on (never a scan) that
        reads only each item's `summary` (written when it finished); the items without one
        (unfinished, or journaled by an earlier release) are then read whole, a hundred a
        call, each summarised as it arrives."""
        values = {":pk": {"S": f"deploy#{scope}"}}
        condition = "pk = :pk"
        if since:  # a key condition on the sort key (no empty string allowed there)
            values[":since"] = {"S": since}
            condition += " AND sk >= :since"
        pages = self.db.get_paginator("query").paginate(
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ProjectionExpression="sk, #summary",
            ExpressionAttributeNames={"#summary": "summary"},
        )
        found: dict[str, Summary | None] = {}
        for page in pages:
            for item in page["Items"]:
                deployment_id = item["sk"]["S"]
                found[deployment_id] = self._kept_summary(scope, deployment_id, item.get("summary"))
        missing = [d for d, s in found.items() if s is None]
        backfill: list[tuple[dict[str, Any], Summary]] = []
        for start in range(0, len(missing), 100):  # BatchGetItem takes 100 keys a call
            keys = [self._key(scope, d) for d in missing[start : start + 100]]
            request = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                answer = self.db.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.table, []):
                    key = f"{item['pk']['S']}/{item['sk']['S']}"
                    try:
                        summary = Summary.of_document(json.loads(_document(item)))
                    except UnknownStatus as e:
                        skip(self.skipped, key, f"{e}: not this release's to touch", newer=True)
                        continue
                    except (KeyError, TypeError, ValueError, zlib.error) as e:
                        skip(self.skipped, key, f"not readable ({e})")
                        continue
                    found[item["sk"]["S"]] = summary
                    backfill.append((item, summary))
                request = answer.get("UnprocessedKeys") or {}
        self._backfill(backfill)
        return [s for s in found.values() if s is not None]

    def _backfill(self, computed: list[tuple[dict[str, Any], Summary]]) -> None:
        """Keep each finished deployment's summary on its item, once, so the next read takes
        it from the projection; conditional on the item still having none and the status it
        was read with."""

        def keep(found: tuple[dict[str, Any], Summary]) -> None:
            item, summary = found
            if not Status(summary.status).finished:
                return
            # best effort: a reader without write access, or a race, leaves it for next time
            with contextlib.suppress(Exception):
                self.db.update_item(
                    TableName=self.table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET #summary = :s",
                    ConditionExpression="attribute_not_exists(#summary) AND #status = :status",
                    ExpressionAttributeNames={"#summary": "summary", "#status": "status"},
                    ExpressionAttributeValues={
                        ":s": {"S": json.dumps(summary.to_json(), separators=(",", ":"))},
                        ":status": item["status"],
                    },
                )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(keep, computed))

    def _kept_summary(self, scope: str, deployment_id: str, kept: Any) -> Summary | None:
        """The summary an item keeps; None when it keeps none, or one that does not parse."""
        if kept is None:
            return None
        try:
            return Summary.from_json(json.loads(kept["S"]))
        except (KeyError, TypeError, ValueError) as e:
            skip(self.skipped, f"deploy#{scope}/{deployment_id}", f"summary not readable ({e})")
            return None

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
