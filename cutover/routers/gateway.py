"""The Gateway API router: weights of the backendRefs of one HTTPRoute.

Every write (`set` and `restore`) reads the route, asks its fence (the writer's lease), and
patches it with the resourceVersion it read, which the API server takes as a precondition:
if anyone wrote the route meanwhile it answers 409 Conflict, and the router reads again, asks
the fence again and retries. So a writer frozen between its read and its patch can never land
a write over a takeover's restore. The patch's tests on the backend names refuse to write
weights into a route whose backends have been rearranged since the snapshot. The route counts
as served when every parent Gateway reports it Accepted at its current generation, with no
ResolvedRefs=False (a backend it cannot reach).
"""

from __future__ import annotations

from typing import Any

from cutover_gates.contract import COLORS

from cutover.errors import ConfigError, CutoverError, ExitCode
from cutover.kube import GATEWAY_API, longest_call_seconds, timeout
from cutover.routers.fence import Fence, no_fence
from cutover.weights import Weights, check_weights

CONFLICT_RETRIES = 5


def weight_patch(refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A JSON patch writing each backendRef's weight, if that backendRef still names it."""
    operations: list[dict[str, Any]] = []
    for i, ref in enumerate(refs):
        path = f"/spec/rules/0/backendRefs/{i}"
        operations.append({"op": "test", "path": f"{path}/name", "value": ref["name"]})
        # "add" sets the member whether or not it is there (a backendRef may omit weight: 1)
        operations.append({"op": "add", "path": f"{path}/weight", "value": ref["weight"]})
    return operations


def _programmed(conditions: list[dict[str, Any]], generation: Any) -> bool:
    """A parent reports this generation Accepted, and not its backends unresolved."""
    current = {c.get("type"): c for c in conditions if c.get("observedGeneration") == generation}
    accepted = (current.get("Accepted") or {}).get("status") == "True"
    return accepted and (current.get("ResolvedRefs") or {}).get("status") != "False"


class NotServed(CutoverError):
    """The route's parent Gateways have not accepted its current generation yet."""

    exit_code = ExitCode.FAILED


class GatewayRouter:
    """Weighted backendRefs of one HTTPRoute between the blue and green Services."""

    def __init__(
        self, namespace: str, route: str, services: dict[str, str], name: str, api: Any
    ) -> None:
        self.api = api  # the CustomObjectsApi the route is read and patched through
        self.namespace = namespace
        self.route = route
        self.color_of = {service: color for color, service in services.items()}
        self.name = name

    @property
    def longest_write(self) -> float:
        return longest_call_seconds()

    def _get(self) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException  # optional extra: cutover[kubernetes]

        group, version, plural = GATEWAY_API
        try:
            return self.api.get_namespaced_custom_object(  # type: ignore[no-any-return]
                group, version, self.namespace, plural, self.route, _request_timeout=timeout()
            )
        except ApiException as e:
            if e.status != 404:
                raise
            raise ConfigError(
                f"{self.name}: HTTPRoute {self.namespace}/{self.route} does not exist; are the "
                "outputs those of this stack's last `pulumi up`?"
            ) from None

    def _patch(self, operations: list[dict[str, Any]]) -> None:
        group, version, plural = GATEWAY_API
        # the answer (the whole route) is drained but not decoded: only its status matters
        response = self.api.patch_namespaced_custom_object(
            group,
            version,
            self.namespace,
            plural,
            self.route,
            operations,
            _content_type="application/json-patch+json",
            _request_timeout=timeout(),
            _preload_content=False,
        )
        response.drain_conn()

    def _refs(self, route: dict[str, Any]) -> list[dict[str, Any]]:
        rules = (route.get("spec") or {}).get("rules") or []
        if len(rules) != 1:
            raise ConfigError(
                f"{self.name}: HTTPRoute {self.namespace}/{self.route} has {len(rules)} rules; "
                "expected the one weighted rule a cutover stack declares"
            )
        refs = [
            {"name": r.get("name"), "weight": int(r.get("weight", 1))}
            for r in rules[0].get("backendRefs") or []
        ]
        unknown = [r["name"] for r in refs if r["name"] not in self.color_of]
        if unknown or sorted(self.color_of[r["name"]] for r in refs) != sorted(COLORS):
            raise ConfigError(
                f"{self.name}: HTTPRoute {self.namespace}/{self.route} routes to "
                f"{[r['name'] for r in refs]}; expected one backendRef per color's Service "
                f"({sorted(self.color_of)})"
            )
        return refs

    def snapshot(self) -> dict[str, Any]:
        return {"backendRefs": self._refs(self._get())}

    def weights_of(self, snapshot: dict[str, Any]) -> Weights:
        weights: Weights = {c: 0 for c in COLORS}
        for ref in snapshot["backendRefs"]:
            weights[self.color_of[ref["name"]]] += ref["weight"]
        return check_weights(weights)

    def served(self) -> Weights:
        route = self._get()
        generation = (route.get("metadata") or {}).get("generation")
        parents = (route.get("status") or {}).get("parents") or []
        pending = [
            str((p.get("parentRef") or {}).get("name"))
            for p in parents
            if not _programmed(p.get("conditions") or [], generation)
        ]
        if not parents or pending:
            raise NotServed(
                f"HTTPRoute {self.namespace}/{self.route} generation {generation} is not yet "
                f"accepted by {', '.join(pending) or 'any Gateway'}"
            )
        return self.weights_of({"backendRefs": self._refs(route)})

    def set(self, weights: Weights, fence: Fence = no_fence) -> None:
        weights = check_weights(weights)
        self._write(
            lambda refs: [{**r, "weight": weights[self.color_of[r["name"]]]} for r in refs], fence
        )

    def restore(self, snapshot: dict[str, Any], fence: Fence = no_fence) -> None:
        self.weights_of(snapshot)  # never write a split that serves nothing
        self._write(lambda _: snapshot["backendRefs"], fence)

    def _write(self, refs_of: Any, fence: Fence) -> None:
        """Read, fence, patch at the version read; on a conflict, all three again."""
        from kubernetes.client.exceptions import ApiException  # optional extra: cutover[kubernetes]

        for attempt in range(CONFLICT_RETRIES + 1):
            route = self._get()
            refs = refs_of(self._refs(route))
            version = {
                "op": "replace",
                "path": "/metadata/resourceVersion",
                "value": route["metadata"]["resourceVersion"],
            }
            fence()
            try:
                self._patch([version, *weight_patch(refs)])
                return
            except ApiException as e:
                if e.status != 409 or attempt == CONFLICT_RETRIES:
                    raise
