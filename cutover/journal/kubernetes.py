"""The deployment journal and lock of a Kubernetes stack, kept in its release namespace.

For a Gateway stack, which has no DynamoDB table: each deployment is a ConfigMap
`cutover-deployment-<id>` labelled with its scope, pause/abort commands are the ConfigMap
`cutover-control-<scope>`, the latest outcome per color of a route is the ConfigMap
`cutover-outcome-<hash>`, its newest owner the ConfigMap `cutover-owner-<hash>` (only
deployment ConfigMaps are read as deployments: the journal's own bookkeeping is never
called damaged), and the lock on a route is a coordination.k8s.io Lease
`cutover-lock-<hash>` whose holder renews it (a dead process's lease expires after
LEASE_SECONDS; on the same host it is taken over at once). Every write that decides who holds
the lock, and every save of a deployment, is conditional on the resourceVersion read (the
API server's own fence), so two writers never both win.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cutover_gates.contract import Color, Holder, Outcome, Status, parse_color

from cutover.deployment import Deployment, scope_of
from cutover.errors import LockHeld
from cutover.journal.items import Skipped, parse_item, parse_outcome
from cutover.journal.lease import (
    LEASE_SECONDS,
    LeaseState,
    finished_elsewhere,
    held_message,
)
from cutover.journal.owner import Owner
from cutover.kube import api_client, timeout
from cutover.summary import Summary

SCOPE_LABEL = "cutover/scope"
ACTIVE_LABEL = "cutover/active"  # on deployments that may hold traffic split
HOLDER_ANNOTATION = "cutover/holder"
DOCUMENT_KEY = "deployment.json"
OWNER_KEY = "owner.json"
DEPLOYMENT_PREFIX = "cutover-deployment-"
CONFLICT_ATTEMPTS = 5


def _micro_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _state(lease: dict[str, Any]) -> LeaseState:
    """A Lease object as a LeaseState: its holder, last renewal and expiry (never renewed:
    expired)."""
    annotations = lease["metadata"].get("annotations") or {}
    holder = Holder.from_json(json.loads(annotations.get(HOLDER_ANNOTATION, "{}")))
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime")
    if not renewed:
        return LeaseState(holder, 0.0, 0.0)
    at = datetime.fromisoformat(renewed.replace("Z", "+00:00")).timestamp()
    return LeaseState(holder, at, at + int(spec.get("leaseDurationSeconds") or LEASE_SECONDS))


class KubernetesJournal:
    """The journal as ConfigMaps and Leases in `namespace`."""

    def __init__(self, namespace: str) -> None:
        from kubernetes import client  # optional extra: cutover[kubernetes]

        self.namespace = namespace
        self.core = client.CoreV1Api(api_client())
        self.leases = client.CoordinationV1Api(api_client())
        self.skipped: list[Skipped] = []

    # -- calls ----------------------------------------------------------------------------------

    def _read(self, call: Any, name: str) -> dict[str, Any] | None:
        """An object as JSON, or None when it does not exist."""
        from kubernetes.client.exceptions import ApiException  # optional extra: cutover[kubernetes]

        try:
            response = call(
                name, self.namespace, _preload_content=False, _request_timeout=timeout()
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return dict(json.loads(response.data))

    # -- the lock -------------------------------------------------------------------------------

    def _lease_name(self, key: str) -> str:
        return f"cutover-lock-{scope_of([key])}"

    def _lease(self, key: str, holder: Holder, version: str | None, now: float) -> dict[str, Any]:
        at = _micro_time(now)
        metadata: dict[str, Any] = {
            "name": self._lease_name(key),
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": "cutover"},
            "annotations": {HOLDER_ANNOTATION: json.dumps(holder.to_json()), "cutover/route": key},
        }
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": holder.token,
                "leaseDurationSeconds": max(1, round(LEASE_SECONDS)),
                "acquireTime": at,
                "renewTime": at,
            },
        }

    def acquire_one(self, key: str, holder: Holder, now: float) -> bool:
        from kubernetes.client.exceptions import ApiException  # optional extra: cutover[kubernetes]

        try:
            self.leases.create_namespaced_lease(
                self.namespace, self._lease(key, holder, None, now), _request_timeout=timeout()
            )
            return True
        except ApiException as e:
            if e.status != 409:
                raise
        current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
        if current is None:  # released between our create and read: try again
            return False
        state = _state(current)
        mine = current["spec"].get("holderIdentity") == holder.token
        if not mine and state.live(now):
            raise LockHeld(held_message(f"route {key}", state.holder))
        try:  # conditional on the version read: of two takers, one wins
            self.leases.replace_namespaced_lease(
                self._lease_name(key),
                self.namespace,
                self._lease(key, holder, current["metadata"]["resourceVersion"], now),
                _request_timeout=timeout(),
            )
        except ApiException as e:
            if e.status == 409:  # someone else took it first: look again
                return False
            raise
        return True

    def heartbeat(self, listeners: list[str], holder: Holder, now: float) -> bool:
        from kubernetes.client.exceptions import ApiException  # optional extra: cutover[kubernetes]

        for key in listeners:
            current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
            if current is None or current["spec"].get("holderIdentity") != holder.token:
                return False
            current["spec"]["renewTime"] = _micro_time(now)
            try:  # conditional on the version read: a taker in between wins
                self.leases.replace_namespaced_lease(
                    self._lease_name(key), self.namespace, current, _request_timeout=timeout()
                )
            except ApiException as e:
                if e.status == 409:
                    return False
                raise
        return True

    def release(self, listeners: list[str], holder: Holder) -> None:
        from kubernetes.client.exceptions import ApiException  # optional extra: cutover[kubernetes]

        for key in listeners:
            current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
            if current is None or current["spec"].get("holderIdentity") != holder.token:
                continue
            try:
                self.leases.delete_namespaced_lease(
                    self._lease_name(key),
                    self.namespace,
                    body={
                        "preconditions": {"resourceVersion": current["metadata"]["resourceVersion"]}
                    },
                    _request_timeout=timeout(),
                )
            except ApiException as e:
                if e.status not in (404, 409):
                    raise

    def lease_state(self, key: str) -> LeaseState | None:
        current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
        return None if current is None else _state(current)

    # -- documents ------------------------------------------------------------------------------

    def _config_map(
        self,
        name: str,
        scope: str,
        data: dict[str, str],
        active: bool = False,
        version: str | None = None,
    ) -> dict[str, Any]:
        labels = {SCOPE_LABEL: scope, "app.kubernetes.io/managed-by": "cutover"}
        if active:
            labels[ACTIVE_LABEL] = "true"
        metadata: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": labels}
        if version is not None:
            metadata["resourceVersion"] = version
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}

    def _write(self, name: str, body: dict[str, Any]) -> bool:
        """Create the ConfigMap (no resourceVersion in `body`) or replace exactly the version
        `body` names; False on a conflict (it exists, or changed since that version)."""
        from kubernetes.client.exceptions import ApiException  # optional extra: cutover[kubernetes]

        try:
            if "resourceVersion" in body["metadata"]:
                self.core.replace_namespaced_config_map(
                    name, self.namespace, body, _request_timeout=timeout()
                )
            else:
                self.core.create_namespaced_config_map(
                    self.namespace, body, _request_timeout=timeout()
                )
        except ApiException as e:
            if e.status in (404, 409):
                return False
            raise
        return True

    def _name(self, deployment_id: str) -> str:
        return f"{DEPLOYMENT_PREFIX}{deployment_id.lower()}"

    def _stored(self, name: str) -> tuple[dict[str, Any] | None, tuple[Any, int] | None]:
        """The ConfigMap and the (status, generation) its document holds."""
        found = self._read(self.core.read_namespaced_config_map, name)
        if found is None:
            return None, None
        try:
            document = json.loads((found.get("data") or {})[DOCUMENT_KEY])
            return found, (document.get("status"), int(document.get("generation", 0) or 0))
        except (KeyError, ValueError, TypeError, AttributeError):
            return found, ("unreadable", -1)

    def _replace_checked(self, deployment: Deployment, document: dict[str, Any]) -> None:
        """Write `document` over the deployment's ConfigMap if it holds what this process
        last saw, conditional on the resourceVersion read; LeaseLost otherwise."""
        name = self._name(deployment.id)
        seen = (
            None
            if deployment.journaled is None
            else (str(deployment.journaled), deployment.generation)
        )
        for _ in range(CONFLICT_ATTEMPTS):
            found, stored = self._stored(name)
            if stored != seen:
                what = (
                    "it exists already"
                    if seen is None
                    else f"now {stored[0] if stored else 'gone'}"
                )
                raise finished_elsewhere(deployment.id, what)
            version = None if found is None else found["metadata"]["resourceVersion"]
            body = self._config_map(
                name,
                deployment.scope,
                {DOCUMENT_KEY: json.dumps(document)},
                Status(document["status"]).active,
                version,
            )
            if self._write(name, body):
                return
        raise finished_elsewhere(deployment.id, "it kept changing while being saved")

    def save(self, deployment: Deployment) -> None:
        self._replace_checked(deployment, deployment.to_json())
        deployment.journaled = deployment.status
        for key, outcome in deployment.outcomes().items():
            self._record_outcome(key, outcome)

    def claim(self, deployment: Deployment) -> None:
        if deployment.journaled is None:
            deployment.journaled = deployment.status
        found, stored = self._stored(self._name(deployment.id))
        if found is None or stored is None:
            raise finished_elsewhere(deployment.id, "its journal item is gone")
        document = json.loads(found["data"][DOCUMENT_KEY])
        document["generation"] = deployment.generation + 1
        self._replace_checked(deployment, document)
        deployment.generation += 1

    def _outcome_name(self, key: str) -> str:
        return f"cutover-outcome-{scope_of([key])}"

    def _record_outcome(self, key: str, outcome: Outcome) -> None:
        name = self._outcome_name(key)
        for _ in range(CONFLICT_ATTEMPTS):
            found = self._read(self.core.read_namespaced_config_map, name)
            data = dict((found or {}).get("data") or {})
            known = data.get(outcome.color)
            if known and not outcome.newer_than(parse_outcome(name, known, [])):
                return  # a later deployment's outcome stays
            data[outcome.color] = json.dumps(outcome.to_json())
            version = None if found is None else found["metadata"]["resourceVersion"]
            body = self._config_map(name, scope_of([key]), data, version=version)
            body["metadata"]["annotations"] = {"cutover/route": key}
            if self._write(name, body):
                return

    def outcomes(self, key: str) -> dict[Color, Outcome]:
        found = self._read(self.core.read_namespaced_config_map, self._outcome_name(key))
        data = dict((found or {}).get("data") or {})
        parsed = (
            parse_outcome(f"{self._outcome_name(key)}/{c}", t, self.skipped)
            for c, t in data.items()
        )
        return {parse_color(o.color): o for o in parsed if o is not None}

    # -- owners ---------------------------------------------------------------------------------

    def _owner_name(self, key: str) -> str:
        return f"cutover-owner-{scope_of([key])}"

    def owner(self, key: str) -> Owner | None:
        found = self._read(self.core.read_namespaced_config_map, self._owner_name(key))
        text = ((found or {}).get("data") or {}).get(OWNER_KEY)
        return None if text is None else Owner.from_json(json.loads(text))

    def take(self, key: str, owner: Owner) -> bool:
        name = self._owner_name(key)
        found = self._read(self.core.read_namespaced_config_map, name)
        text = ((found or {}).get("data") or {}).get(OWNER_KEY)
        if (Owner.from_json(json.loads(text)).epoch if text else 0) != owner.epoch - 1:
            return False
        version = None if found is None else found["metadata"]["resourceVersion"]
        labels = {"app.kubernetes.io/managed-by": "cutover"}
        metadata: dict[str, Any] = {"name": name, "namespace": self.namespace, "labels": labels,
                                    "annotations": {"cutover/route": key}}  # fmt: skip
        if version is not None:
            metadata["resourceVersion"] = version
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
                "data": {OWNER_KEY: json.dumps(owner.to_json())}}  # fmt: skip
        return self._write(name, body)  # conditional on the version read: of two, one wins

    def _history(self, scope: str, since: str = "") -> list[Deployment]:
        return [d for d in self._list(f"{SCOPE_LABEL}={scope}") if d.id >= since]

    def summaries(self, scope: str, since: str = "") -> list[Summary]:
        return [Summary.of(d) for d in self._history(scope, since)]

    def active(self) -> list[Deployment]:
        """Deployments in progress or paused, in every scope (by label)."""
        return [d for d in self._list(f"{ACTIVE_LABEL}=true") if d.status.active]

    def _list(self, selector: str) -> list[Deployment]:
        found = self.core.list_namespaced_config_map(
            self.namespace,
            label_selector=selector,
            _preload_content=False,
            _request_timeout=timeout(),
        )
        items = json.loads(found.data)["items"]
        # the scope's control and outcome ConfigMaps carry its label too: not deployments
        parsed = [
            self._document(i)
            for i in items
            if str((i.get("metadata") or {}).get("name", "")).startswith(DEPLOYMENT_PREFIX)
        ]
        return sorted((d for d in parsed if d is not None), key=lambda d: d.order)

    def _document(self, item: dict[str, Any]) -> Deployment | None:
        name = (item.get("metadata") or {}).get("name", "?")
        document = (item.get("data") or {}).get(DOCUMENT_KEY)
        return parse_item(f"ConfigMap {name}", document, self.skipped)

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None:
        if deployment_id:
            found = self._read(self.core.read_namespaced_config_map, self._name(deployment_id))
            if found is None or (found["metadata"].get("labels") or {}).get(SCOPE_LABEL) != scope:
                return None
            return self._document(found)
        documents = self._history(scope)
        return documents[-1] if documents else None

    def request(self, scope: str, deployment_id: str, command: str) -> None:
        name = f"cutover-control-{scope}"
        for _ in range(CONFLICT_ATTEMPTS):
            current = self._read(self.core.read_namespaced_config_map, name)
            data = dict((current or {}).get("data") or {})
            data[deployment_id.lower()] = command
            version = None if current is None else current["metadata"]["resourceVersion"]
            if self._write(name, self._config_map(name, scope, data, version=version)):
                return
        raise LockHeld(f"the control requests of {scope} kept changing while writing one")

    def requested(self, scope: str, deployment_id: str) -> str | None:
        found = self._read(self.core.read_namespaced_config_map, f"cutover-control-{scope}")
        command = ((found or {}).get("data") or {}).get(deployment_id.lower())
        return str(command) if command else None
