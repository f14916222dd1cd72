"""A small Kubernetes API server on 127.0.0.1 serving the few paths the helper uses.

GET and PATCH (JSON patch) of HTTPRoutes, GET of Deployments and PATCH (merge patch) of their
scale subresource, and create/get/list/replace/delete of the ConfigMaps and Leases of the
journal (and the Events the helper publishes), with the API server's semantics the helper depends on: resourceVersion as a
precondition (409 Conflict), create of an existing name (409 AlreadyExists), failing `test`
operations (422), label selectors on lists, generation bumped on spec changes. The Gateway controller is played by `accept_after`: a route's parents report the new
generation Accepted only that many seconds after it was written (slow propagation). The
helper reaches it through a kubeconfig file, as it reaches any cluster.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

ROUTE_PATH = re.compile(
    r"^/apis/gateway\.networking\.k8s\.io/v1/namespaces/([^/]+)/httproutes/([^/?]+)$"
)
DEPLOYMENT_PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/?]+)(/scale)?$")
OBJECT_PATH = re.compile(
    r"^/(?:api/v1|apis/coordination\.k8s\.io/v1|apis/batch/v1)/namespaces/([^/]+)/"
    r"(configmaps|leases|events|cronjobs)(?:/([^/]+))?$"
)


class KubeApi:
    """The cluster's objects and the knobs tests turn."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.routes: dict[tuple[str, str], dict[str, Any]] = {}
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self.accepted_at: dict[tuple[str, str], float] = {}
        self.accept_after = 0.0  # seconds until the Gateway accepts a written route
        self.interfere = 0  # PATCHes that find the route written by someone else first
        self.unavailable = 0  # requests answered 503 before being served
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, body)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name)
        self.version = 100

    # -- objects -------------------------------------------------------------------------------

    def _bump(self, obj: dict[str, Any]) -> None:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)

    def add_route(self, route: dict[str, Any]) -> None:
        route = copy.deepcopy(route)
        route["metadata"]["generation"] = 1
        self._bump(route)
        key = (route["metadata"]["namespace"], route["metadata"]["name"])
        self.routes[key] = route
        self.accepted_at[key] = 0.0

    def add_deployment(self, deployment: dict[str, Any]) -> None:
        deployment = copy.deepcopy(deployment)
        deployment["metadata"]["generation"] = 1
        self._bump(deployment)
        replicas = deployment["spec"]["replicas"]
        deployment["status"] = {"replicas": replicas, "readyReplicas": replicas}
        self.deployments[(deployment["metadata"]["namespace"], deployment["metadata"]["name"])] = (
            deployment
        )

    def weights(self, namespace: str, name: str) -> dict[str, int]:
        """backendRef name -> weight, as the route's spec has it now."""
        route = self.routes[(namespace, name)]
        return {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}

    def set_ready(self, namespace: str, name: str, ready: int) -> None:
        with self.lock:
            self.deployments[(namespace, name)]["status"]["readyReplicas"] = ready

    def events(self, namespace: str) -> list[dict[str, Any]]:
        """Kubernetes Events created in `namespace`, oldest first."""
        with self.lock:
            return [
                o for (p, ns, _), o in self.objects.items() if p == "events" and ns == namespace
            ]

    def patches(self, kind: str = "httproutes") -> list[Any]:
        return [b for m, p, b in self.requests if m == "PATCH" and f"/{kind}/" in p]

    def _view(self, key: tuple[str, str]) -> dict[str, Any]:
        """The route with the status its Gateway reports at this moment."""
        route = copy.deepcopy(self.routes[key])
        accepted = route["metadata"]["generation"]
        if time.monotonic() < self.accepted_at[key]:
            accepted -= 1
        route["status"] = {
            "parents": [
                {
                    "parentRef": parent,
                    "controllerName": "example.com/gateway",
                    "conditions": [
                        {"type": "Accepted", "status": "True", "observedGeneration": accepted}
                    ],
                }
                for parent in route["spec"]["parentRefs"]
            ]
        }
        return route

    # -- requests -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any, query: str = "") -> tuple[int, Any]:
        with self.lock:
            self.requests.append((method, path, body))
            if self.unavailable > 0:
                self.unavailable -= 1
                return 503, _status(503, "ServiceUnavailable", "try again")
            found = OBJECT_PATH.match(path)
            if found:
                return self._object(method, found[2], found[1], found[3], body, query)
            route = ROUTE_PATH.match(path)
            if route:
                return self._route(method, (route[1], route[2]), body)
            deployment = DEPLOYMENT_PATH.match(path)
            if deployment:
                key = (deployment[1], deployment[2])
                return self._deployment(method, key, bool(deployment[3]), body)
            return 404, _status(404, "NotFound", f"{path} is not served here")

    def _route(self, method: str, key: tuple[str, str], body: Any) -> tuple[int, Any]:
        if key not in self.routes:
            return 404, _status(404, "NotFound", f'httproutes "{key[1]}" not found')
        if method == "GET":
            return 200, self._view(key)
        if method != "PATCH":
            return 405, _status(405, "MethodNotAllowed", method)
        current = self.routes[key]
        if self.interfere > 0:  # another writer got there between the helper's read and write
            self.interfere -= 1
            current["metadata"].setdefault("labels", {})["touched-by"] = "someone-else"
            self._bump(current)
        try:
            patched = jsonpatch.apply_patch(current, body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            return 422, _status(422, "Invalid", f"the server rejected our request: {e}")
        wanted = patched["metadata"].get("resourceVersion")
        if wanted != current["metadata"]["resourceVersion"]:
            return 409, _status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on httproutes "{key[1]}": the object has been '
                "modified; please apply your changes to the latest version and try again",
            )
        if patched["spec"] != current["spec"]:
            patched["metadata"]["generation"] += 1
            self.accepted_at[key] = time.monotonic() + self.accept_after
        self._bump(patched)
        self.routes[key] = patched
        return 200, self._view(key)

    def _object(
        self, method: str, plural: str, namespace: str, name: str | None, body: Any, query: str
    ) -> tuple[int, Any]:
        """ConfigMaps, Leases, Events and CronJobs: create, get, list by label, replace and delete, conditionally."""
        if name is None and method == "GET":
            selector = dict(
                part.split("=", 1)
                for part in urllib.parse.parse_qs(query).get("labelSelector", [""])[0].split(",")
                if "=" in part
            )
            items = [
                obj
                for (p, ns, _), obj in sorted(self.objects.items())
                if p == plural
                and ns == namespace
                and selector.items() <= (obj["metadata"].get("labels") or {}).items()
            ]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
        if name is None and method == "POST":
            key = (plural, namespace, body["metadata"]["name"])
            if key in self.objects:
                return 409, _status(409, "AlreadyExists", f'{plural} "{key[2]}" already exists')
            created = copy.deepcopy(body)
            created["metadata"]["namespace"] = namespace
            self._bump(created)
            self.objects[key] = created
            return 201, created
        key = (plural, namespace, str(name))
        current = self.objects.get(key)
        if current is None:
            return 404, _status(404, "NotFound", f'{plural} "{name}" not found')
        version = current["metadata"]["resourceVersion"]
        if method == "GET":
            return 200, current
        if method == "PUT":
            wanted = body["metadata"].get("resourceVersion")
            if wanted and wanted != version:
                return 409, _status(
                    409, "Conflict", f'{plural} "{name}": the object has been modified'
                )
            replaced = copy.deepcopy(body)
            self._bump(replaced)
            self.objects[key] = replaced
            return 200, replaced
        if method == "DELETE":
            wanted = ((body or {}).get("preconditions") or {}).get("resourceVersion")
            if wanted and wanted != version:
                return 409, _status(409, "Conflict", f'{plural} "{name}": precondition failed')
            del self.objects[key]
            return 200, _status(200, "Deleted", "deleted") | {"status": "Success"}
        return 405, _status(405, "MethodNotAllowed", method)

    def _deployment(
        self, method: str, key: tuple[str, str], scale: bool, body: Any
    ) -> tuple[int, Any]:
        if key not in self.deployments:
            return 404, _status(404, "NotFound", f'deployments.apps "{key[1]}" not found')
        deployment = self.deployments[key]
        if method == "PATCH" and scale:
            replicas = int(body["spec"]["replicas"])
            deployment["spec"]["replicas"] = replicas
            deployment["status"].update(replicas=replicas, readyReplicas=replicas)
            self._bump(deployment)
        elif method != "GET":
            return 405, _status(405, "MethodNotAllowed", method)
        if scale:
            return 200, {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": deployment["metadata"],
                "spec": {"replicas": deployment["spec"]["replicas"]},
                "status": {"replicas": deployment["status"]["replicas"]},
            }
        return 200, deployment


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@contextmanager
def kube_api_server(api: KubeApi) -> Iterator[str]:
    """Serve `api` on 127.0.0.1 (a free port); yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            path, _, query = self.path.partition("?")
            code, payload = api.handle(self.command, path, body, query)
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig whose current context is the local API server."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": server}}],
                "users": [{"name": "helper", "user": {"token": "local-token"}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": "helper"}}],
                "current-context": "local",
            }
        )
    )
    return path
