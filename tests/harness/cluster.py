"""A real Kubernetes cluster for the helper's tests, and the Gateway stack the program declares
installed into it.

One per pytest worker (`kube_cluster`, behind the helper layer's session fixture): etcd and
kube-apiserver as the e2e layer starts them (tests/harness/real_cluster.py), the Gateway API
CRDs, and Traefik as the Gateway controller, serving the Gateway `gateways/public` the
program's routes attach to. Nothing here answers for the API server: every object is written
to and read from the real one, and every fault is one a real client meets:

- a real conflicting writer (a second client writing the route between the helper's read and
  its write), and the Gateway's own status writes;
- Traefik stopped with SIGSTOP (a Gateway that has not accepted a route yet) and resumed;
- a TCP proxy in front of the API server that drops or holds the helper's connections
  (tests/harness/tcp_proxy.py);
- the API server's audit log, which records every call the helper makes with its verb, its
  body and the answer: the request log the tests read, and the proof that the helper's role
  lets it make every call it makes (no 403) and no more.

What is emulated, and why: no kubelet and no controller-manager run, so no Pod ever becomes
ready. `ReadyReplicas` writes each Deployment's status through the status subresource, as
the deployment controller would once its pods were ready, whenever the spec changes; tests
set a Deployment's ready replicas the same way. EndpointSlices for the colors' Services are
written here (with no endpoints: nothing is sent through the Gateway in this layer; the e2e
layer sends real traffic), since Traefik resolves a backendRef through them.

Each Gateway stack's mutable objects are reset between tests (`Cluster.reset`): the journal's
ConfigMaps and Leases, Events, the route, the Deployments and the CronJob as the program
declares them. The API server refuses to delete a namespace it cannot finalize (that is the
controller-manager's job), so the namespaces stay and their objects are reset.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cutover.deployment import scope_of
from tests.harness.cli_runs import NO_AWS, run_cutover, spawn_cutover, wait_for
from tests.harness.program_runs import declare, kubernetes_config
from tests.harness.real_cluster import (
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    POLL,
    PROGRAM_TIMEOUT,
    ControlPlane,
    Gateway,
    ToolsMissing,
    apply_gateway_crds,
    control_plane,
    install_gateway,
    load_tools,
    route_programmed,
    served_weights,
    traefik,
    wait_until,
    write_kubeconfig,
)
from tests.harness.records import signed_records
from tests.harness.tcp_proxy import TcpProxy

NS = "checkout"
FAST = ["--bake", "0.3s", "--interval", "0.05s"]
# The Gateway the program's stack config names (tests/harness/program_runs.kubernetes_config).
GATEWAY_NAMESPACE, GATEWAY_NAME = "gateways", "public"
# The CronJob's account, bound to the program's helper Role: the identity the helper runs as.
HELPER_ACCOUNT = "cutover-watchdog"
MANAGED = "app.kubernetes.io/managed-by=cutover"  # the journal's own ConfigMaps and Leases
REQUIRE = "CUTOVER_TESTS_REQUIRE_CLUSTER"
# Every call a service account makes, with its body; nothing of the admin's or Traefik's.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Request", "userGroups": ["system:serviceaccounts"]},
        {"level": "None"},
    ],
}


def require_cluster() -> None:
    """The real tools are built; skipped with what to run where they are not, failed instead
    when CUTOVER_TESTS_REQUIRE_CLUSTER is set (as `.ci/run` sets it)."""
    try:
        load_tools()
    except ToolsMissing as e:
        if os.environ.get(REQUIRE):
            pytest.fail(str(e))
        pytest.skip(str(e))


def provider_numbers(value: Any) -> Any:
    """`value` with every whole float as an int, as pulumi-kubernetes sends the program's
    numbers (Pulumi's are floats; the API server refuses 6.0 for an int32)."""
    if isinstance(value, dict):
        return {k: provider_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [provider_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# -- what the API server's audit log says the helper did ----------------------------------------


@dataclass(frozen=True)
class Call:
    """One request the API server answered, from its audit log."""

    user: str
    verb: str
    resource: str
    subresource: str
    name: str
    namespace: str
    code: int
    body: Any  # the request's object (a JSON patch's operations), if any

    @staticmethod
    def of(event: dict[str, Any]) -> Call:
        ref = event.get("objectRef") or {}
        return Call(
            user=event["user"]["username"],
            verb=event["verb"],
            resource=ref.get("resource", ""),
            subresource=ref.get("subresource", ""),
            name=ref.get("name", ""),
            namespace=ref.get("namespace", ""),
            code=int((event.get("responseStatus") or {}).get("code", 0)),
            body=event.get("requestObject"),
        )

    def __str__(self) -> str:
        what = "/".join(p for p in (self.resource, self.name, self.subresource) if p)
        return f"{self.verb} {self.namespace}/{what} -> {self.code}"


# -- the cluster --------------------------------------------------------------------------------


class ReadyReplicas:
    """Plays the deployment controller and the kubelets no one runs here: a Deployment whose
    spec changed (a new generation) soon reports all its replicas ready, written through its
    status subresource. A status a test wrote for the current generation is left alone."""

    def __init__(self, plane: ControlPlane) -> None:
        from kubernetes import client

        self.apps = client.AppsV1Api(plane.client())
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="ready-replicas")

    def __enter__(self) -> ReadyReplicas:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)

    def _run(self) -> None:
        from kubernetes import watch

        while not self.stopping.is_set():
            try:  # a watch that ends (its timeout, the server) is started again
                for event in watch.Watch().stream(
                    self.apps.list_deployment_for_all_namespaces, timeout_seconds=1
                ):
                    deployment = event["object"]
                    observed = (deployment.status and deployment.status.observed_generation) or 0
                    if event["type"] != "DELETED" and observed != deployment.metadata.generation:
                        mark_ready(self.apps, deployment, deployment.spec.replicas or 0)
            except Exception:  # noqa: BLE001 - the server went away: not in a tight loop
                self.stopping.wait(POLL)


def mark_ready(apps: Any, deployment: Any, ready: int) -> None:
    """Write `deployment`'s status as the controller does: `ready` of its replicas ready, at
    its current generation."""
    replicas = deployment.spec.replicas or 0
    apps.patch_namespaced_deployment_status(
        deployment.metadata.name,
        deployment.metadata.namespace,
        {
            "status": {
                "observedGeneration": deployment.metadata.generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
            }
        },
    )


@dataclass
class KubeCluster:
    """The running control plane, Gateway and proxy, and the admin's way to the objects."""

    plane: ControlPlane
    gateway: Gateway
    proxy: TcpProxy  # the helper's way to the API server
    audit_log: Path
    tmp: Path
    clients: dict[str, Any] = field(default_factory=dict)

    # -- the admin's clients --------------------------------------------------------------------

    def api(self, name: str) -> Any:
        """A typed API (`CoreV1Api`, `AppsV1Api`, ...) or `dynamic` on the admin's client."""
        if name not in self.clients:
            from kubernetes import client
            from kubernetes.dynamic import DynamicClient

            if "client" not in self.clients:
                self.clients["client"] = self.plane.client()
            api_client = self.clients["client"]
            self.clients[name] = (
                DynamicClient(api_client, cache_file=str(self.tmp / "discovery.json"))
                if name == "dynamic"
                else getattr(client, name)(api_client)
            )
        return self.clients[name]

    def ensure_namespace(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api("CoreV1Api").create_namespace({"metadata": {"name": name}})
        except ApiException as e:
            if e.status != 409:
                raise

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        resource = self.api("dynamic").resources.get(api_version=api_version, kind=kind)
        try:
            found = resource.get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        return dict(found.to_dict())

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj`, or replace what exists under its name (conditional on the version
        read), with its numbers as the provider sends them; returns what the server stored."""
        body = provider_numbers(obj)
        meta = body["metadata"]
        resource = self.api("dynamic").resources.get(
            api_version=body["apiVersion"], kind=body["kind"]
        )
        current = self.get(body["apiVersion"], body["kind"], meta.get("namespace"), meta["name"])
        if current is None:
            return dict(resource.create(body=body, namespace=meta.get("namespace")).to_dict())
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return dict(resource.replace(body=body, namespace=meta.get("namespace")).to_dict())

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        from kubernetes.dynamic.exceptions import NotFoundError

        resource = self.api("dynamic").resources.get(api_version=api_version, kind=kind)
        with contextlib.suppress(NotFoundError):
            resource.delete(name=name, namespace=namespace)

    def wait_ready(self, namespace: str) -> None:
        """Until every Deployment in `namespace` reports all its replicas ready."""
        apps = self.api("AppsV1Api")
        wait_until(
            lambda: all(
                (d.status.ready_replicas or 0) == d.spec.replicas
                for d in apps.list_namespaced_deployment(namespace).items
            ),
            f"the Deployments in {namespace} ready",
            PROGRAM_TIMEOUT,
        )

    def token(self, namespace: str, account: str) -> str:
        """A token of `account` from the TokenRequest API, signed by the API server's service
        account key, as a pod of that account is given one."""
        answer = self.api("CoreV1Api").create_namespaced_service_account_token(
            account, namespace, {"spec": {"expirationSeconds": 3600}}
        )
        return str(answer.status.token)

    def kubeconfig(self, path: Path, token: str) -> Path:
        """A kubeconfig for `token` through the proxy (whose name, 127.0.0.1, the server's
        certificate carries too)."""
        return write_kubeconfig(path, self.proxy.url, self.plane.ca, token)

    # -- the audit log --------------------------------------------------------------------------

    def audit_offset(self) -> int:
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def calls(self, since: int = 0) -> list[Call]:
        """Every call a service account made since `since` (an `audit_offset`), in the order
        the server answered them. The log is written before the answer is sent, so a call
        the client has seen answered is here."""
        if not self.audit_log.exists():
            return []
        with self.audit_log.open("rb") as log:
            log.seek(since)
            text = log.read().decode()
        # a line still being written (a call in flight) is left for the next read
        return [Call.of(json.loads(line)) for line in text.splitlines() if line.endswith("}")]

    # -- the Gateway ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def gateway_stopped(self) -> Iterator[Callable[[], None]]:
        """Traefik stopped (SIGSTOP): it takes no change and writes no status until resumed
        (SIGCONT), by the function yielded or at the end of the block; a Gateway controller
        that lags, or is being restarted."""
        group = self.gateway.process.popen.pid
        resumed: list[bool] = []

        def resume() -> None:
            if not resumed:
                resumed.append(True)
                os.killpg(group, signal.SIGCONT)

        os.killpg(group, signal.SIGSTOP)
        try:
            yield resume
        finally:
            resume()


@contextlib.contextmanager
def kube_cluster(tmp: Path) -> Iterator[KubeCluster]:
    """Start everything (about 10 s on a quiet machine); stop it all on the way out."""
    tools = load_tools()
    policy = tmp / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    audit_log = tmp / "audit.log"
    audit = [f"--audit-policy-file={policy}", f"--audit-log-path={audit_log}"]
    with contextlib.ExitStack() as stack:
        plane = stack.enter_context(control_plane(tools, tmp, audit))
        apply_gateway_crds(plane, tools["gateway-api-crds"].path)
        gateway = stack.enter_context(traefik(tools["traefik"], plane, tmp))
        port = int(plane.url.rsplit(":", 1)[1])
        proxy = stack.enter_context(TcpProxy(port))
        stack.enter_context(ReadyReplicas(plane))
        kube = KubeCluster(plane, gateway, proxy, audit_log, tmp)
        kube.ensure_namespace(GATEWAY_NAMESPACE)
        install_gateway(plane, gateway, GATEWAY_NAMESPACE, GATEWAY_NAME, routes_from="All")
        yield kube


# -- a Gateway stack in the cluster -------------------------------------------------------------


def endpoint_slice(service: dict[str, Any]) -> dict[str, Any]:
    """The EndpointSlice of a Service whose pods are not running here: its ports (named as
    the Service's, which is how Traefik pairs them), no endpoints."""
    meta = service["metadata"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{meta['name']}-harness",
            "namespace": meta["namespace"],
            "labels": {
                "kubernetes.io/service-name": meta["name"],
                "endpointslice.kubernetes.io/managed-by": "cutover-tests-harness",
            },
        },
        "addressType": "IPv4",
        "endpoints": [],
        "ports": [
            {"name": p.get("name", ""), "port": p.get("targetPort", p["port"]), "protocol": "TCP"}
            for p in service["spec"]["ports"]
        ],
    }


@dataclass
class Cluster:
    kube: KubeCluster
    env: dict[str, str]
    outputs: Path
    gates: Path
    records: Path
    deploy_key: Path
    objects: list[dict[str, Any]]  # what the program declared, as the provider sends it
    tmp: Path
    since: int = 0  # the audit log's length when the test began
    refusals_expected: bool = False  # a test probing the helper's role

    def declared(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def reset(self, tmp: Path) -> None:
        """Back to what the program declared: no journal, lock or Events, the route with its
        declared weights served by the Gateway, every Deployment at full capacity and ready,
        the CronJob active; no fault pending on the helper's connections."""
        self.tmp = tmp
        self.refusals_expected = False
        kube = self.kube
        kube.proxy.reset()
        core, leases = kube.api("CoreV1Api"), kube.api("CoordinationV1Api")
        core.delete_collection_namespaced_config_map(NS, label_selector=MANAGED)
        leases.delete_collection_namespaced_lease(NS)
        core.delete_collection_namespaced_event(NS)
        for deployment in self.declared("Deployment"):
            kube.apply(deployment)
            self.set_ready(deployment["metadata"]["name"], deployment["spec"]["replicas"])
        for job in self.declared("CronJob"):
            kube.apply(job)
        (route,) = self.declared("HTTPRoute")
        kube.apply(route)
        self.wait_served(self.weights())
        self.since = kube.audit_offset()

    # -- the CLI ---------------------------------------------------------------------------------

    def cutover(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cutover(list(args), self.env, self.tmp)

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return spawn_cutover(list(args), self.env, self.tmp)

    def stepped(self, process: subprocess.Popen[str]) -> None:
        """Wait until the shift in `process` has served its first step."""
        wait_for(
            lambda: any(e["type"] == "step" for d in self.deployments() for e in d["events"]),
            60,
            "the first step",
            process,
        )

    def args(self, *args: str) -> list[str]:
        """The stack's own journal: ConfigMaps and Leases in its namespace."""
        return [*args, "--outputs", str(self.outputs)]

    def shift(self, *extra: str, to: str = "green") -> list[str]:
        gates = ["--gates-config", str(self.gates), "--records", str(self.records)]
        return self.args("shift", "--to", to, *gates, *extra)

    # -- the route -------------------------------------------------------------------------------

    def route(self) -> dict[str, Any] | None:
        return self.kube.get(f"{GATEWAY_GROUP}/{GATEWAY_VERSION}", "HTTPRoute", NS, "checkout")

    def weights(self) -> dict[str, int]:
        route = self.route()
        assert route is not None, "the route is gone"
        refs = route["spec"]["rules"][0]["backendRefs"]
        return {r["name"].rsplit("-", 1)[1]: r["weight"] for r in refs}

    def set_weights(self, weights: dict[str, int]) -> None:
        """Another writer (the admin) sets the route's weights; returns once the Gateway
        serves them."""
        route = self.route()
        assert route is not None
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = weights[ref["name"].rsplit("-", 1)[1]]
        self.kube.apply(route)
        self.wait_served(weights)

    def delete_route(self) -> None:
        self.kube.delete(f"{GATEWAY_GROUP}/{GATEWAY_VERSION}", "HTTPRoute", NS, "checkout")

    def wait_accepted(self) -> None:
        """Until the Gateway reports the route's current generation accepted (its status
        write, which moves the route's resourceVersion)."""
        wait_until(
            lambda: (r := self.route()) is not None and route_programmed(r),
            "HTTPRoute checkout accepted",
            PROGRAM_TIMEOUT,
            self.kube.gateway.process,
        )

    def wait_served(self, weights: dict[str, int]) -> None:
        """Until the Gateway has accepted the route's current generation (its status) and
        loaded `weights` (its configuration)."""
        services = {"blue": "checkout-blue", "green": "checkout-green"}
        gateway = self.kube.gateway
        self.wait_accepted()
        wait_until(
            lambda: served_weights(gateway, services) == weights,
            f"the Gateway serving {weights}",
            PROGRAM_TIMEOUT,
            gateway.process,
        )

    # -- Deployments -----------------------------------------------------------------------------

    def deployment(self, name: str) -> Any:
        return self.kube.api("AppsV1Api").read_namespaced_deployment(name, NS)

    def set_ready(self, name: str, ready: int) -> None:
        """`ready` of the Deployment's replicas ready (its pods' readiness probes)."""
        apps = self.kube.api("AppsV1Api")
        mark_ready(apps, self.deployment(name), ready)

    def scale(self, name: str, replicas: int) -> None:
        """Another writer (`pulumi up`) scales the Deployment; returns once that many are
        ready."""
        apps = self.kube.api("AppsV1Api")
        apps.patch_namespaced_deployment_scale(name, NS, {"spec": {"replicas": replicas}})
        wait_until(
            lambda: (self.deployment(name).status.ready_replicas or 0) == replicas,
            f"{name} at {replicas} ready",
            PROGRAM_TIMEOUT,
        )

    # -- the journal and what the helper did -----------------------------------------------------

    def deployments(self) -> list[dict[str, Any]]:
        """The journal's deployment documents, by id."""
        found = self.kube.api("CoreV1Api").list_namespaced_config_map(NS, label_selector=MANAGED)
        documents = [
            json.loads(c.data["deployment.json"])
            for c in found.items
            if c.metadata.name.startswith("cutover-deployment-")
        ]
        return sorted(documents, key=lambda d: d["id"])

    def leases(self) -> list[Any]:
        return list(self.kube.api("CoordinationV1Api").list_namespaced_lease(NS).items)

    def lease(self, holder: str, host: str, pid: int, renewed: datetime) -> None:
        """A lock on the route held by someone else."""
        info = {"holder": holder, "deployment": "20261126T000000Z-0000aa", "who": "ana"}
        self.kube.apply(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": f"cutover-lock-{scope_of(['httproute/checkout/checkout'])}",
                    "namespace": NS,
                    "labels": {"app.kubernetes.io/managed-by": "cutover"},
                    "annotations": {
                        "cutover/holder": json.dumps({**info, "host": host, "pid": pid})
                    },
                },
                "spec": {
                    "holderIdentity": holder,
                    "leaseDurationSeconds": 30,
                    "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
            }
        )

    def events(self) -> list[Any]:
        """Kubernetes Events in the namespace, oldest first."""
        found = self.kube.api("CoreV1Api").list_namespaced_event(NS).items
        return sorted(found, key=lambda e: (e.first_timestamp, e.metadata.name))

    def calls(self) -> list[Call]:
        """The helper's calls since the test began, from the API server's audit log."""
        return [c for c in self.kube.calls(self.since) if c.user == self.user]

    def check_allowed(self) -> None:
        """Every call the helper made since the test began was allowed by its Role (unless
        the test probed the Role's limits)."""
        refused = [str(c) for c in self.calls() if c.code in (401, 403)]
        assert self.refusals_expected or refused == [], f"the helper's Role refused {refused}"

    def patches(self) -> list[Call]:
        """The helper's PATCHes of the route, refused ones included."""
        return [c for c in self.calls() if c.verb == "patch" and c.resource == "httproutes"]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{NS}:{HELPER_ACCOUNT}"


@contextlib.contextmanager
def gateway_cluster(kube: KubeCluster, base: Path, analysis: dict[str, Any]) -> Iterator[Cluster]:
    """The production Gateway stack declared by the program (with `analysis` as its
    cutover:analysis) installed in the cluster, signed records, and the helper's kubeconfig:
    the CronJob's ServiceAccount token, bound to the program's helper Role. AWS unreachable
    on purpose."""
    config = kubernetes_config(active="blue", percent=100)
    config["cutover:analysis"] = analysis
    run = declare(config)
    outputs = base / "outputs.json"
    outputs.write_text(json.dumps(run.outputs))
    objects = [provider_numbers(r.state) for r in run.resources if r.type.startswith("kubernetes:")]
    kube.ensure_namespace(NS)
    for obj in objects:  # admitted by the real server: the CronJob, the Role, the binding, ...
        kube.apply(obj)
    for service in (o for o in objects if o["kind"] == "Service"):
        kube.apply(endpoint_slice(service))
    records = base / "records"
    records.mkdir()
    gates, deploy_key = signed_records(records)
    kubeconfig = kube.kubeconfig(base / "kubeconfig", kube.token(NS, HELPER_ACCOUNT))
    env = {
        "KUBECONFIG": str(kubeconfig),
        "CUTOVER_KUBE_READ_TIMEOUT": "2",
        **NO_AWS,
    }
    yield Cluster(kube, env, outputs, gates, records, deploy_key, objects, base)
