"""A real Kubernetes control plane and a real Gateway for the e2e layer.

etcd and kube-apiserver (started as controller-runtime's envtest starts them: secure port on
127.0.0.1, self-signed certificates, a token file with a `system:masters` user, RBAC on, the
ServiceAccount admission plugin off), the Gateway API standard CRDs applied as they are, and
Traefik's Kubernetes Gateway provider serving HTTP on 127.0.0.1. The binaries are the ones
`make cluster-tools` builds from the Go module proxy (.ci/cluster-tools); this module only finds
and runs them.

No kubelet and no controller-manager run, so nothing turns Pods into endpoints: the backends are
plain HTTP servers (tests/harness/color_backend.py), one per color, inside a network namespace
this harness creates, and the harness writes the EndpointSlices naming them itself. A namespace
is needed because the API server refuses loopback addresses in EndpointSlices. All traffic stays
on this machine: 127.0.0.1, and the /30 between the root namespace and the test's own.

Every wait polls one condition with a deadline (a process's own `ready`, /readyz, a watch
event, the Gateway's loaded configuration); no step waits a fixed time. Everything started is
stopped, and the network namespace removed, on the way out, failure or not.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import json
import math
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
TRAEFIK_CONTROLLER = "traefik.io/gateway-controller"
# The tools the control plane and the Gateway need; the Pulumi ones are for the engine's tests.
CLUSTER_TOOLS = ("etcd", "kube-apiserver", "gateway-api-crds", "traefik")
PULUMI_TOOLS = (
    "pulumi",
    "pulumi-language-python",
    "pulumi-language-python-exec",
    "pulumi-resource-kubernetes",
)
START_TIMEOUT = 90.0  # a cold kube-apiserver on 2 busy cores takes 10-30 s to be ready
PROGRAM_TIMEOUT = 60.0  # a route written until the Gateway serves it
POLL = 0.1  # the period of a condition poll, never a synchronisation by itself
BACKEND = Path(__file__).with_name("color_backend.py")


class ToolsMissing(RuntimeError):
    """The binaries `make cluster-tools` builds are not in the cache."""


# -- the tools ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    path: Path


def tools_cache() -> Path:
    """Where .ci/cluster-tools builds: the same variable and default as the script."""
    return Path(os.environ.get("CUTOVER_TOOLS_CACHE") or Path.home() / ".cache" / "cutover-tools")


def load_tools(required: tuple[str, ...] = CLUSTER_TOOLS) -> dict[str, Tool]:
    """The tools .ci/cluster-tools recorded in <cache>/tools.tsv, each checked on disk.

    A missing one fails naming `make cluster-tools`, with what the script wrote about the
    pieces the registry refused, so the message says what to do rather than a bare KeyError.
    """
    cache = tools_cache()
    manifest = cache / "tools.tsv"
    found: dict[str, Tool] = {}
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            name, version, path = line.split("\t")
            if Path(path).exists():
                found[name] = Tool(name, version, Path(path))
    absent = [name for name in required if name not in found]
    if absent:
        refused = cache / "MISSING"
        why = f"\n{refused} says:\n{refused.read_text()}" if refused.is_file() else ""
        raise ToolsMissing(
            f"{', '.join(absent)} not built in {cache}: run `make cluster-tools` "
            f"(CUTOVER_TOOLS_CACHE chooses the folder){why}"
        )
    return found


# -- processes and waits ------------------------------------------------------------------------


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass
class Process:
    """A started tool with its log file, for error messages that show why it stopped."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def check(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code}; its log:\n{tail(self.log)}")


def wait_until(
    condition: Callable[[], T | None],
    what: str,
    timeout: float,
    *processes: Process,
) -> T:
    """Poll `condition` until it returns something other than None/False, or fail after
    `timeout` seconds saying `what` was awaited; a process that exits meanwhile fails at once
    with its log (no point waiting the deadline out for a dead server)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        for p in processes:
            p.check()
        try:
            value = condition()
            if value is not None and value is not False:
                return value
        except Exception as e:  # noqa: BLE001 - the thing awaited is not answering yet
            last = e
        if time.monotonic() > deadline:
            logs = "".join(f"\n{p.name} log:\n{tail(p.log)}" for p in processes)
            raise TimeoutError(f"{what}: not after {timeout:.0f} s (last error: {last!r}){logs}")
        time.sleep(POLL)


@contextlib.contextmanager
def started(
    name: str, args: list[str], log: Path, env: Mapping[str, str] | None = None
) -> Iterator[Process]:
    """Run one tool with its output in `log`; stop it (SIGTERM, then SIGKILL) on the way out.

    Each runs in its own process group, so `ip netns exec` and whatever it started go too.
    """
    with log.open("wb") as out:
        popen = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    process = Process(name, popen, log)
    try:
        yield process
    finally:
        stop(popen)


def stop(popen: subprocess.Popen[Any], grace: float = 15.0) -> None:
    if popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGTERM)
    try:
        popen.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()


# -- etcd and kube-apiserver --------------------------------------------------------------------


@contextlib.contextmanager
def etcd(tool: Tool, tmp: Path) -> Iterator[str]:
    """A single-member etcd on 127.0.0.1 with its data in `tmp`; yields its client URL."""
    client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    args = [
        str(tool.path),
        "--name=cutover",
        f"--data-dir={tmp / 'etcd-data'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=cutover={peer}",
        # A throwaway store: no fsync, as envtest's etcd runs too (tests, not durability).
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]
    with started("etcd", args, tmp / "etcd.log") as process:

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as r:
                return json.load(r).get("health") == "true"

        wait_until(healthy, "etcd /health", START_TIMEOUT, process)
        yield client


def write_certs(cert_dir: Path) -> Path:
    """A CA, the API server's serving certificate for 127.0.0.1 signed by it (apiserver.crt
    and apiserver.key, the names --cert-dir looks for, as envtest writes them) and the service
    account signing key. Returns the CA certificate's path, for the kubeconfig and Traefik."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    cert_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cutover-e2e-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    serving = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (cert_dir / "ca.crt").write_bytes(ca.public_bytes(pem))
    (cert_dir / "apiserver.crt").write_bytes(serving.public_bytes(pem))
    (cert_dir / "apiserver.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (cert_dir / "sa.key").write_bytes(
        sa_key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    (cert_dir / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return cert_dir / "ca.crt"


def write_kubeconfig(path: Path, server: str, ca: Path, token: str) -> Path:
    """A kubeconfig with the CA and a bearer token, as the helper and the provider read one."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "e2e",
                        "cluster": {"server": server, "certificate-authority": str(ca)},
                    }
                ],
                "users": [{"name": "admin", "user": {"token": token}}],
                "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "admin"}}],
                "current-context": "e2e",
            }
        )
    )
    return path


@dataclass
class ControlPlane:
    """A running etcd + kube-apiserver and how to reach it as the `system:masters` admin."""

    url: str
    ca: Path
    token: str
    kubeconfig: Path
    etcd_url: str
    apiserver: Process

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def get(self, path: str, timeout: float = 10) -> Any:
        """GET `path` as the admin (JSON, or text for the health endpoints)."""
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout, context=self.ssl_context()) as r:
            body = r.read().decode()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body

    def client(self) -> Any:
        """A `kubernetes` ApiClient on this control plane, through the kubeconfig file."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))


@contextlib.contextmanager
def control_plane(
    tools: Mapping[str, Tool], tmp: Path, extra_args: Sequence[str] = ()
) -> Iterator[ControlPlane]:
    """etcd, then kube-apiserver with envtest's flags (and `extra_args`, e.g. an audit log);
    ready when /readyz answers `ok`."""
    cert_dir = tmp / "apiserver-certs"
    ca = write_certs(cert_dir)
    token = secrets.token_hex(16)
    token_file = cert_dir / "tokens.csv"
    token_file.write_text(f'{token},admin,admin-uid,"system:masters"\n')
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with etcd(tools["etcd"], tmp) as etcd_url:
        args = [
            str(tools["kube-apiserver"].path),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={cert_dir}",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--service-account-issuer={url}/",
            f"--service-account-key-file={cert_dir / 'sa.pub'}",
            f"--service-account-signing-key-file={cert_dir / 'sa.key'}",
            f"--token-auth-file={token_file}",
            "--authorization-mode=RBAC",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            *extra_args,
        ]
        with started("kube-apiserver", args, tmp / "kube-apiserver.log") as apiserver:
            plane = ControlPlane(
                url=url,
                ca=ca,
                token=token,
                kubeconfig=write_kubeconfig(tmp / "kubeconfig", url, ca, token),
                etcd_url=etcd_url,
                apiserver=apiserver,
            )
            wait_until(
                lambda: plane.get("/readyz", timeout=5) == "ok",
                "kube-apiserver /readyz",
                START_TIMEOUT,
                apiserver,
            )
            yield plane


# -- the Gateway API CRDs -----------------------------------------------------------------------


def apply_gateway_crds(plane: ControlPlane, crds: Path) -> list[str]:
    """Create every object of the release's standard channel as it is (the CRDs and the
    release's own ValidatingAdmissionPolicy), then wait until each CRD is Established, i.e.
    served. Returns the CRD names."""
    from kubernetes import client, utils, watch

    api = plane.client()
    names: list[str] = []
    for path in sorted(crds.glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        names += [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"]
        utils.create_from_yaml(api, yaml_objects=docs)
    extensions = client.ApiextensionsV1Api(api)
    pending = set(names)

    def established(crd: Any) -> bool:
        return any(
            c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])
        )

    deadline = time.monotonic() + START_TIMEOUT
    listed = extensions.list_custom_resource_definition()
    pending -= {c.metadata.name for c in listed.items if established(c)}
    stream = watch.Watch()
    while pending and time.monotonic() < deadline:
        for event in stream.stream(
            extensions.list_custom_resource_definition,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        ):
            crd = event["object"]
            if established(crd):
                pending.discard(crd.metadata.name)
            if not pending:
                stream.stop()
        listed = extensions.list_custom_resource_definition()
        pending -= {c.metadata.name for c in listed.items if established(c)}
    if pending:
        raise TimeoutError(f"CRDs not Established after {START_TIMEOUT:.0f} s: {sorted(pending)}")
    return names


# -- backends in a network namespace ------------------------------------------------------------


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /30 in 10.213.0.0/16 that no interface here uses: derived from the pid (so parallel
    sessions differ), the next free one when taken."""
    used = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], check=True, capture_output=True, text=True
    ).stdout
    base = ipaddress.IPv4Network("10.213.0.0/16")
    blocks = list(base.subnets(new_prefix=30))
    start = os.getpid() % len(blocks)
    for i in range(len(blocks)):
        block = blocks[(start + i) % len(blocks)]
        if not any(f" {host}/" in used for host in block):
            return block
    raise RuntimeError("no free /30 in 10.213.0.0/16")


def remove_stale_namespaces() -> None:
    """Remove `cutover-<pid>` namespaces whose process is gone: a session killed outright
    (SIGKILL, a CI time-out) runs no teardown, and its namespace would outlive it."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        pid = name.removeprefix("cutover-")
        if name.startswith("cutover-") and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class Backends:
    """One HTTP server per color, all on `address` (inside netns `netns`), each on its port."""

    netns: str
    address: str
    ports: dict[str, int]
    processes: dict[str, Process] = field(default_factory=dict)


@contextlib.contextmanager
def netns_backends(colors: tuple[str, ...], tmp: Path) -> Iterator[Backends]:
    """A network namespace `cutover-<pid>` joined to the root one by a veth pair on a private
    /30, with one color server per color inside it. Removed on the way out: deleting the
    namespace deletes the veth end inside it, and with it the pair."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise RuntimeError("the real Gateway's backends need root and iproute2 (`ip netns`)")
    remove_stale_namespaces()
    pid = os.getpid()
    netns, host_if, ns_if = f"cutover-{pid}", f"cvh{pid}", f"cvn{pid}"
    subnet = _free_subnet()
    host_ip, ns_ip = (str(h) for h in subnet.hosts())
    prefix = subnet.prefixlen
    with contextlib.ExitStack() as stack:
        ip("netns", "add", netns)
        stack.callback(subprocess.run, ["ip", "netns", "del", netns], capture_output=True)
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        stack.callback(subprocess.run, ["ip", "link", "del", host_if], capture_output=True)
        ip("link", "set", ns_if, "netns", netns)
        ip("addr", "add", f"{host_ip}/{prefix}", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("netns", "exec", netns, "ip", "addr", "add", f"{ns_ip}/{prefix}", "dev", ns_if)
        ip("netns", "exec", netns, "ip", "link", "set", ns_if, "up")
        ip("netns", "exec", netns, "ip", "link", "set", "lo", "up")
        backends = Backends(netns, ns_ip, {c: 8080 + i for i, c in enumerate(colors)})
        for color, port in backends.ports.items():
            args = ["ip", "netns", "exec", netns, sys.executable, "-u", str(BACKEND)]
            log = tmp / f"backend-{color}.log"
            process = stack.enter_context(
                started(f"backend {color}", [*args, color, ns_ip, str(port)], log)
            )
            backends.processes[color] = process
            wait_until(_printed(log, "ready"), f"{color} backend", START_TIMEOUT, process)
        for color, port in backends.ports.items():
            # Reachable from the root namespace, where the Gateway runs.
            wait_until(
                _answers(ns_ip, port, color),
                f"{color} backend from the root namespace",
                START_TIMEOUT,
                backends.processes[color],
            )
        yield backends


def _printed(log: Path, line: str) -> Callable[[], bool]:
    return lambda: line in log.read_text().splitlines()


def _answers(host: str, port: int, body: str) -> Callable[[], bool]:
    return lambda: get_body(host, port) == body


def get_body(host: str, port: int, path: str = "/", timeout: float = 5) -> str:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def publish_backends(plane: ControlPlane, namespace: str, backends: Backends) -> dict[str, str]:
    """Per color, a Service with no selector and the EndpointSlice naming its server, written
    here since no controller-manager or kubelet runs. Returns the Service name per color."""
    from kubernetes import client

    core = client.CoreV1Api(plane.client())
    with contextlib.suppress(client.ApiException):
        core.create_namespace({"metadata": {"name": namespace}})
    services = {}
    for color, port in backends.ports.items():
        name = f"checkout-{color}"
        services[color] = name
        core.create_namespaced_service(
            namespace,
            {
                "metadata": {"name": name, "labels": {"cutover/color": color}},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]},
            },
        )
    publish_endpoints(plane, namespace, services, backends)
    return services


def publish_endpoints(
    plane: ControlPlane, namespace: str, services: Mapping[str, str], backends: Backends
) -> None:
    """For each color's Service (which may have a selector: no controller turns it into
    endpoints here), the EndpointSlice naming that color's server in the namespace, as the
    EndpointSlice controller would for a ready Pod."""
    from kubernetes import client

    api = plane.client()
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    for color, name in services.items():
        # The port's name must match the Service port's (unnamed: ""): Traefik pairs them so.
        port_name = core.read_namespaced_service(name, namespace).spec.ports[0].name or ""
        discovery.create_namespaced_endpoint_slice(
            namespace,
            {
                "metadata": {
                    "name": f"{name}-e2e",
                    "labels": {
                        "kubernetes.io/service-name": name,
                        "endpointslice.kubernetes.io/managed-by": "cutover-e2e-harness",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [backends.address], "conditions": {"ready": True}}],
                "ports": [{"name": port_name, "port": backends.ports[color], "protocol": "TCP"}],
            },
        )


# -- the Gateway (Traefik) ----------------------------------------------------------------------


@dataclass
class Gateway:
    """Traefik serving the Gateway's HTTP listener on 127.0.0.1:`port`; its API (the
    configuration it has loaded) on 127.0.0.1:`api_port`."""

    port: int
    api_port: int
    process: Process
    namespace: str = ""
    name: str = ""
    metrics_port: int | None = None  # Traefik's Prometheus metrics, when asked for

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=5) as r:
            return json.load(r)


def traefik_args(
    tool: Tool,
    plane: ControlPlane,
    port: int,
    api_port: int,
    tmp: Path,
    metrics_port: int | None = None,
) -> list[str]:
    """Traefik's static configuration, as flags: one HTTP entry point (the Gateway listener's
    port must equal it), the API and ping on a second one, the Kubernetes Gateway provider
    on the API server with the admin token and the CA, and no call home. With `metrics_port`,
    its Prometheus metrics on an entry point of their own there."""
    token = tmp / "traefik-token"
    token.write_text(plane.token)
    return [
        str(tool.path),
        f"--entryPoints.web.address=127.0.0.1:{port}",
        f"--entryPoints.traefik.address=127.0.0.1:{api_port}",
        "--api=true",
        "--api.insecure=true",
        # The dashboard's assets are built by Traefik's web UI tooling, not in the module zip.
        "--api.dashboard=false",
        "--ping=true",
        "--providers.kubernetesGateway=true",
        f"--providers.kubernetesGateway.endpoint={plane.url}",
        f"--providers.kubernetesGateway.token={token}",
        f"--providers.kubernetesGateway.certAuthFilePath={plane.ca}",
        # The provider's own default: apply each change as it comes. The global throttle
        # (2 s by default) only batches provider events; 200 ms keeps flips quick to observe.
        "--providers.providersThrottleDuration=200ms",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
        *(metrics_args(metrics_port) if metrics_port is not None else []),
    ]


# Latency buckets fine enough for a p99 of milliseconds (Traefik's default starts at 100 ms).
METRICS_BUCKETS = "0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.5,1,2,5"


def metrics_args(port: int) -> list[str]:
    """Traefik's Prometheus metrics on entry point `metrics` (127.0.0.1:`port`): per entry
    point and per service (the series the analysis reads by the color's Service)."""
    return [
        f"--entryPoints.metrics.address=127.0.0.1:{port}",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=metrics",
        "--metrics.prometheus.addServicesLabels=true",
        "--metrics.prometheus.addEntryPointsLabels=true",
        f"--metrics.prometheus.buckets={METRICS_BUCKETS}",
    ]


@contextlib.contextmanager
def traefik(tool: Tool, plane: ControlPlane, tmp: Path, metrics: bool = False) -> Iterator[Gateway]:
    port, api_port = free_port(), free_port()
    metrics_port = free_port() if metrics else None
    args = traefik_args(tool, plane, port, api_port, tmp, metrics_port)
    with started("traefik", args, tmp / "traefik.log") as process:
        gateway = Gateway(port, api_port, process, metrics_port=metrics_port)

        def pinged() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/ping", timeout=2) as r:
                return r.read() == b"OK"

        wait_until(pinged, "traefik /ping", START_TIMEOUT, process)
        yield gateway


def conditions(obj: Mapping[str, Any], generation: Any) -> dict[str, str]:
    """Condition type -> status, of `obj`'s conditions that speak of `generation`."""
    return {
        c["type"]: c["status"]
        for c in obj.get("conditions") or []
        if c.get("observedGeneration") == generation
    }


def install_gateway(
    plane: ControlPlane, gateway: Gateway, namespace: str, name: str, routes_from: str = "Same"
) -> None:
    """A GatewayClass for Traefik's controller and a Gateway with one HTTP listener on the
    entry point's port, taking routes of its own namespace (or `routes_from="All"`); returns
    once Traefik reports the Gateway Programmed."""
    from kubernetes import client

    objects = client.CustomObjectsApi(plane.client())
    objects.create_cluster_custom_object(
        GATEWAY_GROUP,
        GATEWAY_VERSION,
        "gatewayclasses",
        {
            "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
            "kind": "GatewayClass",
            "metadata": {"name": "traefik"},
            "spec": {"controllerName": TRAEFIK_CONTROLLER},
        },
    )
    objects.create_namespaced_custom_object(
        GATEWAY_GROUP,
        GATEWAY_VERSION,
        namespace,
        "gateways",
        {
            "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
            "kind": "Gateway",
            "metadata": {"name": name},
            "spec": {
                "gatewayClassName": "traefik",
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "port": gateway.port,
                        "allowedRoutes": {"namespaces": {"from": routes_from}},
                    }
                ],
            },
        },
    )
    gateway.namespace, gateway.name = namespace, name

    def programmed() -> bool:
        obj = objects.get_namespaced_custom_object(
            GATEWAY_GROUP, GATEWAY_VERSION, namespace, "gateways", name
        )
        generation = obj["metadata"]["generation"]
        return conditions(obj.get("status") or {}, generation).get("Programmed") == "True"

    wait_until(
        programmed, f"Gateway {namespace}/{name} Programmed", PROGRAM_TIMEOUT, gateway.process
    )


# -- routes and traffic -------------------------------------------------------------------------


def http_route(
    name: str, gateway: Gateway, services: Mapping[str, str], weights: Mapping[str, int]
) -> dict[str, Any]:
    """An HTTPRoute on the Gateway splitting every request between the colors' Services."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": gateway.namespace},
        "spec": {
            "parentRefs": [{"name": gateway.name}],
            "rules": [
                {
                    "backendRefs": [
                        {"name": services[color], "port": 80, "weight": weights[color]}
                        for color in services
                    ]
                }
            ],
        },
    }


def route_programmed(route: Mapping[str, Any]) -> bool:
    """Every parent reports the route's current generation Accepted with its refs resolved."""
    generation = route["metadata"]["generation"]
    parents = (route.get("status") or {}).get("parents") or []
    return bool(parents) and all(
        (c := conditions(p, generation)).get("Accepted") == "True"
        and c.get("ResolvedRefs") == "True"
        for p in parents
    )


def served_weights(
    gateway: Gateway, services: Mapping[str, str], namespace: str | None = None
) -> dict[str, int] | None:
    """The weights per color in the weighted service Traefik has loaded for the route (its
    API shows the configuration in force), or None while it has none naming our Services.
    Traefik names each member `<namespace>-<service>-<port name>-<port>`: with `namespace`,
    only the Services of that namespace count (two routes may name Services alike)."""
    for service in gateway.api("/api/http/services"):
        members = (service.get("weighted") or {}).get("services") or []
        found = {}
        for member in members:
            for color, name in services.items():
                named = (
                    member["name"].startswith(f"{namespace}-{name}-")
                    if namespace
                    else f"-{name}-" in f"-{member['name']}-"
                )
                if named:
                    found[color] = int(member.get("weight", 1))
        if set(found) == set(services):
            return found
    return None


def wait_route_served(
    plane: ControlPlane,
    gateway: Gateway,
    name: str,
    services: Mapping[str, str],
    weights: Mapping[str, int],
) -> dict[str, Any]:
    """Until the Gateway has taken the route as written: its status for the current
    generation (Traefik writes it after building the configuration), then the weights in
    Traefik's loaded configuration. Returns the route as last read."""
    from kubernetes import client

    objects = client.CustomObjectsApi(plane.client())

    def read() -> dict[str, Any] | None:
        route = objects.get_namespaced_custom_object(
            GATEWAY_GROUP, GATEWAY_VERSION, gateway.namespace, "httproutes", name
        )
        return route if route_programmed(route) else None

    route = wait_until(read, f"HTTPRoute {name} programmed", PROGRAM_TIMEOUT, gateway.process)
    wait_until(
        lambda: served_weights(gateway, services, gateway.namespace) == dict(weights),
        f"Traefik serving {dict(weights)}",
        PROGRAM_TIMEOUT,
        gateway.process,
    )
    return route


def sample(gateway: Gateway, requests: int, host: str | None = None) -> Counter[str]:
    """Send `requests` GETs through the Gateway (one kept-alive connection, as a client
    would; with `host` as the Host header, for a route with hostnames) and count the bodies:
    each backend answers its color, anything but a 200 counts as `HTTP <status>`."""
    counts: Counter[str] = Counter()
    headers = {"Host": host} if host else {}
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        for _ in range(requests):
            connection.request("GET", "/", headers=headers)
            response = connection.getresponse()
            body = response.read().decode()
            counts[body if response.status == 200 else f"HTTP {response.status}"] += 1
    finally:
        connection.close()
    return counts


def binomial_bound(requests: int, share: float, z: float = 5.0) -> float:
    """How far a count of `requests` draws with probability `share` may stray from its mean
    by chance: z standard deviations (z = 5: a false alarm about once in 3.5 million). Zero
    for a share of 0 or 1, where every request must go one way."""
    return z * math.sqrt(requests * share * (1 - share))


# -- the Pulumi tools ---------------------------------------------------------------------------


def pulumi_env(home: Path) -> dict[str, str]:
    """The environment the real engine runs in here: the tools' folder first on PATH (plugins
    are found there), a PULUMI_HOME of the test's own, and nothing that may try to download a
    plugin or call home."""
    return {
        **os.environ,
        "PATH": f"{tools_cache() / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(home),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_CONFIG_PASSPHRASE": "e2e",
    }


def provider_version(tool: Tool, tmp: Path) -> str:
    """The version a provider plugin reports over its own gRPC protocol (GetPluginInfo), as
    the engine asks it: the running process, not the file name, answers."""
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import provider_pb2_grpc

    log = tmp / f"{tool.name}.log"
    # With no engine address the provider starts "attached": it serves and prints its port.
    popen = subprocess.Popen(
        [str(tool.path)],
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert popen.stdout is not None
        port = popen.stdout.readline().decode().strip()  # the protocol's first line
        if not port.isdigit():
            raise RuntimeError(f"{tool.name} printed {port!r}, not its port:\n{tail(log)}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            info = stub.GetPluginInfo(empty_pb2.Empty(), timeout=START_TIMEOUT)
        return str(info.version)
    finally:
        stop(popen)


# -- everything together ------------------------------------------------------------------------


@dataclass
class RealCluster:
    plane: ControlPlane
    gateway: Gateway
    backends: Backends
    services: dict[str, str]
    namespace: str
    tools: dict[str, Tool]
    tmp: Path


@contextlib.contextmanager
def real_cluster(
    tmp: Path,
    colors: tuple[str, ...] = ("blue", "green"),
    namespace: str = "checkout",
    metrics: bool = False,
) -> Iterator[RealCluster]:
    """The control plane, the Gateway API CRDs, backends per color published as Services,
    Traefik (with its Prometheus metrics if `metrics`) and a Programmed Gateway `checkout`;
    all torn down on the way out."""
    tools = load_tools()
    with contextlib.ExitStack() as stack:
        plane = stack.enter_context(control_plane(tools, tmp))
        apply_gateway_crds(plane, tools["gateway-api-crds"].path)
        backends = stack.enter_context(netns_backends(colors, tmp))
        services = publish_backends(plane, namespace, backends)
        gateway = stack.enter_context(traefik(tools["traefik"], plane, tmp, metrics))
        # A stack's route lives in its own release namespace, as in production.
        install_gateway(plane, gateway, namespace, "checkout", routes_from="All")
        yield RealCluster(plane, gateway, backends, services, namespace, tools, tmp)
