"""The deployment journal and lock of a Kubernetes stack, kept in its release namespace.

For a Gateway stack, which has no DynamoDB table: each deployment is a ConfigMap
`cutover-deployment-<id>` labelled with its scope, pause/abort commands are the ConfigMap
`cutover-control-<scope>`, and the lock on a route is a coordination.k8s.io Lease
`cutover-lock-<hash>` whose holder renews it (a dead process's lease expires after
LEASE_SECONDS; on the same host it is taken over at once). Every write that decides who holds
the lock is conditional on the resourceVersion read, so two operators never both win.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cutover.deployment import Deployment, scope_of
from cutover.errors import LockHeld
from cutover.journal.lease import (
    LEASE_SECONDS,
    Holder,
    LeaseState,
    finished_elsewhere,
    held_message,
)
from cutover.kube import api_client, timeout

SCOPE_LABEL = "cutover/scope"
ACTIVE_LABEL = "cutover/active"  # on deployments that may hold traffic split
HOLDER_ANNOTATION = "cutover/holder"
DOCUMENT_KEY = "deployment.json"


def _micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _state(lease: dict[str, Any]) -> LeaseState:
    """A Lease object as a LeaseState: its holder, last renewal and expiry (never renewed:
    expired)."""
    annotations = lease["metadata"].get("annotations") or {}
    holder = dict(json.loads(annotations.get(HOLDER_ANNOTATION, "{}")))
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime")
    if not renewed:
        return LeaseState(holder, 0.0, 0.0)
    at = datetime.fromisoformat(renewed.replace("Z", "+00:00")).timestamp()
    return LeaseState(holder, at, at + int(spec.get("leaseDurationSeconds") or LEASE_SECONDS))


class KubernetesJournal:
    """The journal as ConfigMaps and Leases in `namespace`."""

    def __init__(self, namespace: str) -> None:
        from kubernetes import client

        self.namespace = namespace
        self.core = client.CoreV1Api(api_client())
        self.leases = client.CoordinationV1Api(api_client())
        self._saved: set[str] = set()

    # -- calls ----------------------------------------------------------------------------------

    def _read(self, call: Any, name: str) -> dict[str, Any] | None:
        """An object as JSON, or None when it does not exist."""
        from kubernetes.client.exceptions import ApiException

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

    def _lease(self, key: str, holder: dict[str, Any], version: str | None) -> dict[str, Any]:
        now = _micro_time(datetime.now(UTC))
        metadata: dict[str, Any] = {
            "name": self._lease_name(key),
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/managed-by": "cutover"},
            "annotations": {HOLDER_ANNOTATION: json.dumps(holder), "cutover/route": key},
        }
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": holder["holder"],
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": now,
                "renewTime": now,
            },
        }

    def acquire_one(self, key: str, holder: Holder) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.leases.create_namespaced_lease(
                self.namespace, self._lease(key, holder, None), _request_timeout=timeout()
            )
            return True
        except ApiException as e:
            if e.status != 409:
                raise
        current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
        if current is None:  # released between our create and read: try again
            return False
        state = _state(current)
        mine = current["spec"].get("holderIdentity") == holder["holder"]
        if not mine and state.live(datetime.now(UTC).timestamp()):
            raise LockHeld(held_message(f"route {key}", state.holder))
        try:  # conditional on the version read: of two takers, one wins
            self.leases.replace_namespaced_lease(
                self._lease_name(key),
                self.namespace,
                self._lease(key, holder, current["metadata"]["resourceVersion"]),
                _request_timeout=timeout(),
            )
        except ApiException as e:
            if e.status == 409:  # someone else took it first: look again
                return False
            raise
        return True

    def heartbeat(self, listeners: list[str], holder: dict[str, Any]) -> None:
        for key in listeners:
            current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
            if current is None or current["spec"].get("holderIdentity") != holder["holder"]:
                raise LockHeld(f"the lease on route {key} is no longer held by this deployment")
            current["spec"]["renewTime"] = _micro_time(datetime.now(UTC))
            self.leases.replace_namespaced_lease(
                self._lease_name(key), self.namespace, current, _request_timeout=timeout()
            )

    def release(self, listeners: list[str], holder: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        for key in listeners:
            current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
            if current is None or current["spec"].get("holderIdentity") != holder["holder"]:
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

    def lock_holder(self, listener: str) -> dict[str, Any] | None:
        state = self.lease_state(listener)
        if state is None or datetime.now(UTC).timestamp() > state.expires_at:
            return None
        return state.holder

    def lease_state(self, key: str) -> LeaseState | None:
        current = self._read(self.leases.read_namespaced_lease, self._lease_name(key))
        return None if current is None else _state(current)

    # -- documents ------------------------------------------------------------------------------

    def _config_map(
        self, name: str, scope: str, data: dict[str, str], active: bool = False
    ) -> dict[str, Any]:
        labels = {SCOPE_LABEL: scope, "app.kubernetes.io/managed-by": "cutover"}
        if active:
            labels[ACTIVE_LABEL] = "true"
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "data": data,
        }

    def _write(self, name: str, body: dict[str, Any]) -> None:
        """Create the ConfigMap, or replace it when it exists (last write wins: one holder)."""
        from kubernetes.client.exceptions import ApiException

        if name in self._saved:
            try:
                self.core.replace_namespaced_config_map(
                    name, self.namespace, body, _request_timeout=timeout()
                )
                return
            except ApiException as e:
                if e.status != 404:
                    raise
        try:
            self.core.create_namespaced_config_map(self.namespace, body, _request_timeout=timeout())
        except ApiException as e:
            if e.status != 409:
                raise
            self.core.replace_namespaced_config_map(
                name, self.namespace, body, _request_timeout=timeout()
            )
        self._saved.add(name)

    def save(self, deployment: Deployment) -> None:
        name = f"cutover-deployment-{deployment.id.lower()}"
        if deployment.status.active and name in self._saved:  # read first: best effort
            stored = self.load(deployment.scope, deployment.id)
            if stored is not None and stored.status.finished:
                raise finished_elsewhere(deployment.id, str(stored.status))
        document = json.dumps(deployment.to_json())
        body = self._config_map(
            name, deployment.scope, {DOCUMENT_KEY: document}, deployment.status.active
        )
        self._write(name, body)

    def history(self, scope: str, since: str = "") -> list[Deployment]:
        return [d for d in self._list(f"{SCOPE_LABEL}={scope}") if d.id >= since]

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
        documents = [
            json.loads(i["data"][DOCUMENT_KEY])
            for i in items
            if DOCUMENT_KEY in (i.get("data") or {})
        ]
        return [Deployment.from_json(d) for d in sorted(documents, key=lambda d: d["id"])]

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None:
        if deployment_id:
            name = f"cutover-deployment-{deployment_id.lower()}"
            found = self._read(self.core.read_namespaced_config_map, name)
            if found is None or (found["metadata"].get("labels") or {}).get(SCOPE_LABEL) != scope:
                return None
            return Deployment.from_json(json.loads(found["data"][DOCUMENT_KEY]))
        documents = self.history(scope)
        return documents[-1] if documents else None

    def request(self, scope: str, deployment_id: str, command: str) -> None:
        name = f"cutover-control-{scope}"
        current = self._read(self.core.read_namespaced_config_map, name)
        data = dict((current or {}).get("data") or {})
        data[deployment_id.lower()] = command
        if current is not None:
            self._saved.add(name)
        self._write(name, self._config_map(name, scope, data))

    def requested(self, scope: str, deployment_id: str) -> str | None:
        found = self._read(self.core.read_namespaced_config_map, f"cutover-control-{scope}")
        command = ((found or {}).get("data") or {}).get(deployment_id.lower())
        return str(command) if command else None
