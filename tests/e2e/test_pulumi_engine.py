"""cutover's program through the real engine, and the real helper on what it created.

`pulumi up` (the CLI v3.276.0, its Python language host v3.79.0, pulumi-resource-kubernetes
4.25.0) runs the repository's program on the Kubernetes example stack
(examples/kubernetes/Pulumi.prod.yaml, its release namespace and Gateway pointed at the
harness's) against the real kube-apiserver; the real `cutover` CLI then moves the real
HTTPRoute, which Traefik serves to the colors' real HTTP servers. See
tests/e2e/program/__main__.py for the skipAwait annotation the Deployments and Services get,
and tests/harness/cluster.py's ReadyReplicas for the ready replicas the harness reports in
the kubelet's place.

`pulumi preview --policy-pack` starts the pack as a binary analyzer
(policies/pulumi-analyzer-cutover-gates): the v3.79.0 language host cannot start a Python
policy pack folder under the v3.276.0 CLI (.ci/cluster-tools says why), and the CLI's own host
is refused by the module proxy.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cutover_gates.rules.draining import DRAINING
from cutover_gates.rules.readiness import READINESS

from cutover.stack_config import stack_config
from tests.harness import drops
from tests.harness.cluster import ReadyReplicas
from tests.harness.pulumi_engine import ROOT, PulumiStack, engine_stack, run_process
from tests.harness.real_cluster import (
    GATEWAY_GROUP,
    GATEWAY_VERSION,
    PROGRAM_TIMEOUT,
    RealCluster,
    binomial_bound,
    publish_endpoints,
    sample,
    served_weights,
    wait_until,
)

EXAMPLE = ROOT / "examples" / "kubernetes" / "Pulumi.prod.yaml"
NAMESPACE = "checkout-prod"  # the stack's release namespace
SERVICES = {"blue": "checkout-blue", "green": "checkout-green"}  # the program's names
ROUTE = "checkout"
HOST = "checkout.example.com"  # the example's hostname: the route serves only that Host
REQUESTS = 400  # per step: at 50/50 the bound is +-50, so a 60/40 split fails
SHIFT_TIMEOUT = 240.0


@dataclass
class EngineStack:
    cluster: RealCluster
    pulumi: PulumiStack
    folder: Path
    gates: Path  # the pack config trusting the test's keys
    records: Path  # the gate record files
    keys: Path
    outputs: Path  # `pulumi stack output --json`, the helper's --outputs

    @property
    def env(self) -> dict[str, str]:
        """The `cutover` CLI's environment: the harness's kubeconfig, as for any operator."""
        return {**os.environ, "KUBECONFIG": str(self.cluster.plane.kubeconfig), "USER": "e2e"}

    def cutover(self, *args: str, timeout: float = SHIFT_TIMEOUT) -> str:
        """Run the real `cutover` CLI; fail with its output unless it exits 0."""
        done = run_process([sys.executable, "-m", "cutover", *args], self.folder, self.env, timeout)
        assert done.returncode == 0, f"cutover {' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def spawn(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "cutover", *args],
                cwd=self.folder,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def approve(self, color: str) -> None:
        """The chairman's approval of `color`'s release, issued now (a release rolled back on
        this stack moves again only with an approval issued since)."""
        self.cutover(
            "approve", "--stack", "prod", "--color", color,
            "--stack-file", str(self.pulumi.stack_file), "--gates-config", str(self.gates),
            "--key", str(self.keys / "chairman.key"),
            "--out", str(self.records / f"{color}-approval.json"),
        )  # fmt: skip

    def shift_args(self, *args: str) -> list[str]:
        return [
            "shift", "--to", "green", "--outputs", str(self.outputs),
            "--gates-config", str(self.gates), "--records", str(self.records),
            "--stack-config", str(self.pulumi.stack_file),
            # No Prometheus scrapes these backends: the metric analysis is off (journaled so).
            "--analysis", "off", "--verify-for", "0s", *args,
        ]  # fmt: skip

    def rollback(self) -> None:
        self.cutover(
            "rollback", "--outputs", str(self.outputs),
            "--stack-config", str(self.pulumi.stack_file),
        )  # fmt: skip


def stop_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def objects(cluster: RealCluster) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(cluster.plane.client())


def route_weights(cluster: RealCluster) -> dict[str, int]:
    """The weights the route on the API server says, per color."""
    route = objects(cluster).get_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, NAMESPACE, "httproutes", ROUTE
    )
    by_service = {r["name"]: int(r["weight"]) for r in route["spec"]["rules"][0]["backendRefs"]}
    return {color: by_service[service] for color, service in SERVICES.items()}


def wait_served(cluster: RealCluster, weights: dict[str, int]) -> None:
    """Until Traefik has loaded the route with `weights` (its API shows what is in force)."""
    wait_until(
        lambda: served_weights(cluster.gateway, SERVICES, NAMESPACE) == weights,
        f"Traefik serving {weights}",
        PROGRAM_TIMEOUT,
        cluster.gateway.process,
    )


def assert_split(counts: Any, weights: dict[str, int]) -> None:
    """Every request answered by a color, green's share within sampling error of its weight
    (a binomial bound: five standard deviations; none at 0 or 100)."""
    assert set(counts) <= set(SERVICES), counts
    share = weights["green"] / sum(weights.values())
    assert abs(counts["green"] - REQUESTS * share) <= binomial_bound(REQUESTS, share), (
        weights,
        counts,
    )


@pytest.fixture(scope="module")
def engine(cluster: RealCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineStack]:
    """The example stack created by `pulumi up` in its own namespace, its Services' endpoints
    published, every Deployment reporting its replicas ready, the gates signed through the
    CLI, and a rollback drill done by the real `cutover drill` (the rollback-tested gate wants
    one before green reaches 100%)."""
    from kubernetes import client

    from rehearsal.aws import sign_gates

    folder = tmp_path_factory.mktemp("engine")
    client.CoreV1Api(cluster.plane.client()).create_namespace({"metadata": {"name": NAMESPACE}})
    config = stack_config(EXAMPLE)
    config["cutover:kubernetes"]["namespace"] = NAMESPACE
    config["cutover:kubernetes"]["gateway"] = {
        "name": cluster.gateway.name,
        "namespace": cluster.gateway.namespace,
    }
    stack = engine_stack(folder / "project", "prod", config, cluster.plane.kubeconfig)
    holder: list[EngineStack] = []

    def cutover(*args: str) -> None:
        holder[0].cutover(*args)

    engine = EngineStack(
        cluster, stack, folder, folder / "gates.json", folder / "records", folder / "keys",
        folder / "outputs.json",
    )  # fmt: skip
    holder.append(engine)
    sign_gates(folder, cutover, stack_file=stack.stack_file)
    records = sorted(str(p) for p in engine.records.glob("*.json"))
    stack.write_config({**stack.config(), "cutover:gateRecords": records})
    with ReadyReplicas(cluster.plane):
        stack.up()
        stack.write_outputs(engine.outputs)
        publish_endpoints(cluster.plane, NAMESPACE, SERVICES, cluster.backends)
        wait_served(cluster, {"blue": 100, "green": 0})
        engine.cutover(
            "drill", "--to", "green", "--percent", "5", "--bake", "1s", "--interval", "1s",
            "--analysis", "off", "--outputs", str(engine.outputs),
            "--gates-config", str(engine.gates), "--records", str(engine.records),
            "--key", str(engine.keys / "deploy.key"),
        )  # fmt: skip
        yield engine


def test_pulumi_up_creates_the_colors_the_route_and_the_gate_records(engine: EngineStack) -> None:
    """What the engine created is on the real API server as the program declares it: both
    colors (Deployment at its release's image, Service, PodDisruptionBudget), the HTTPRoute on
    the Gateway at the stack's weights, the gate records and each color's latest outcome in
    ConfigMap cutover-gates, the helper's Role and the watchdog's CronJob; and the Gateway
    serves the route."""
    from kubernetes import client

    api = engine.cluster.plane.client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    colors = engine.pulumi.config()["cutover:colors"]
    for color, name in SERVICES.items():
        deployment = apps.read_namespaced_deployment(name, NAMESPACE)
        container = deployment.spec.template.spec.containers[0]
        assert container.image == colors[color]["image"]
        assert deployment.metadata.labels["cutover/release"] == colors[color]["release"]
        assert deployment.spec.strategy.rolling_update.max_unavailable == 0
        assert core.read_namespaced_service(name, NAMESPACE).spec.selector["cutover/color"] == color
        budget = client.PolicyV1Api(api).read_namespaced_pod_disruption_budget(name, NAMESPACE)
        assert budget.spec.max_unavailable == 1

    route = objects(engine.cluster).get_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, NAMESPACE, "httproutes", ROUTE
    )
    assert route["spec"]["parentRefs"] == [
        {
            "group": GATEWAY_GROUP,
            "kind": "Gateway",
            "name": engine.cluster.gateway.name,
            "namespace": engine.cluster.gateway.namespace,
        }
    ]
    assert route["spec"]["hostnames"] == [HOST]
    assert route["metadata"]["labels"]["cutover/role"] == "production"

    gates = core.read_namespaced_config_map("cutover-gates", NAMESPACE).data
    for record in engine.pulumi.config()["cutover:gateRecords"]:
        body = json.loads(Path(record).read_text())["record"]
        key = f"{body['color']}.{body['kind']}.{body['keyId']}.json"
        assert json.loads(gates[key]) == json.loads(Path(record).read_text()), key
    assert {"blue.latest-deployment.json", "green.latest-deployment.json"} <= set(gates)

    role = client.RbacAuthorizationV1Api(api).read_namespaced_role("cutover-helper", NAMESPACE)
    assert any(ROUTE in (rule.resource_names or []) for rule in role.rules)
    assert client.BatchV1Api(api).read_namespaced_cron_job("cutover-watchdog", NAMESPACE)
    counts = sample(engine.cluster.gateway, 50, host=HOST)
    assert counts == {"blue": 50}, counts


def test_a_shift_moves_the_real_route_and_up_refresh_after_a_rollback_keeps_it(
    engine: EngineStack,
) -> None:
    """`cutover shift` moves the route the engine created and writes what it left into the
    stack config; `cutover rollback` gives traffic back and writes that too; then `pulumi up
    --refresh` (which reads the route's live state first) leaves the route where the
    rollback put it, and publishes the journal's verdict on green (rolled back) for the pack.
    Were the config not to follow what is served, this `up` would send traffic back to green.
    """
    stack, cluster = engine.pulumi, engine.cluster
    assert route_weights(cluster) == {"blue": 100, "green": 0}
    engine.approve("green")
    engine.cutover(*engine.shift_args("--steps", "50,100", "--bake", "1s", "--interval", "1s"))
    assert route_weights(cluster) == {"blue": 0, "green": 100}
    assert stack.config()["cutover:activeColor"] == "green"
    assert str(stack.config()["cutover:trafficPercent"]) == "100"

    engine.rollback()
    assert route_weights(cluster) == {"blue": 100, "green": 0}
    assert stack.config()["cutover:activeColor"] == "blue"
    assert str(stack.config()["cutover:trafficPercent"]) == "100"

    stack.up("--refresh")
    assert route_weights(cluster) == {"blue": 100, "green": 0}
    wait_served(cluster, {"blue": 100, "green": 0})
    assert sample(cluster.gateway, 50, host=HOST) == {"blue": 50}
    assert stack.outputs()["traffic"]["weights"] == {"blue": 100, "green": 0}
    from kubernetes import client

    gates = client.CoreV1Api(cluster.plane.client()).read_namespaced_config_map(
        "cutover-gates", NAMESPACE
    )
    assert json.loads(gates.data["green.latest-deployment.json"])["status"] == "rolled-back"


def test_pulumi_up_moves_a_route_the_helper_has_written(engine: EngineStack) -> None:
    """The first way to move traffic (README, docs/architecture.md), `pulumi config set cutover:activeColor green`
    and `pulumi up`, on a route `cutover` has written (the fixture's drill patched its
    weights, so the API server counts the helper a manager of spec.rules): the update serves
    green, and the same way back serves blue. The route carries `pulumi.com/patchForce`:
    without it the provider's server-side apply is refused with a field conflict, and no
    update could change the weights again once the helper had."""
    stack, cluster = engine.pulumi, engine.cluster
    assert route_weights(cluster) == {"blue": 100, "green": 0}
    route = objects(cluster).get_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, NAMESPACE, "httproutes", ROUTE
    )
    managers = {
        field["manager"]
        for field in route["metadata"]["managedFields"]
        if "f:rules" in (field.get("fieldsV1") or {}).get("f:spec", {})
    }
    assert any(not m.startswith("pulumi-kubernetes") for m in managers), managers

    for color, weights in (
        ("green", {"blue": 0, "green": 100}),
        ("blue", {"blue": 100, "green": 0}),
    ):
        stack.run("config", "set", "cutover:activeColor", color)
        stack.up()
        assert route_weights(cluster) == weights
        wait_served(cluster, weights)
        assert sample(cluster.gateway, 50, host=HOST) == {color: 50}


def test_the_served_split_follows_each_step_of_a_real_shift_and_a_rollback(
    engine: EngineStack,
) -> None:
    """Requests through Traefik during `cutover shift --steps 10,50,100`: at each step, once
    Traefik has loaded the weights the route says, the colors' answers split by those weights
    within sampling error; the weights are read again after sampling, so a sample never
    straddles two steps. `cutover rollback` then returns every request to blue."""
    cluster = engine.cluster
    assert route_weights(cluster) == {"blue": 100, "green": 0}
    wait_served(cluster, {"blue": 100, "green": 0})
    engine.approve("green")
    log = engine.folder / "shift.log"
    shift = engine.spawn(
        *engine.shift_args("--steps", "10,50,100", "--bake", "8s", "--interval", "1s"), log=log
    )
    with contextlib.ExitStack() as stack:
        stack.callback(stop_if_running, shift)
        for green in (10, 50, 100):
            weights = {"blue": 100 - green, "green": green}

            def at_step(weights: dict[str, int] = weights) -> bool:
                if shift.poll() not in (None, 0):
                    raise AssertionError(f"cutover shift exited {shift.poll()}:\n{log.read_text()}")
                return route_weights(cluster) == weights

            wait_until(at_step, f"the route at {weights}", SHIFT_TIMEOUT)
            wait_served(cluster, weights)
            counts = sample(cluster.gateway, REQUESTS, host=HOST)
            assert route_weights(cluster) == weights, "the step moved on during the sample"
            assert served_weights(cluster.gateway, SERVICES, NAMESPACE) == weights
            assert_split(counts, weights)
        assert shift.wait(SHIFT_TIMEOUT) == 0, log.read_text()

    engine.rollback()
    assert route_weights(cluster) == {"blue": 100, "green": 0}
    wait_served(cluster, {"blue": 100, "green": 0})
    counts = sample(cluster.gateway, REQUESTS, host=HOST)
    assert counts == {"blue": REQUESTS}, counts


# The same inputs for both judges: the stack's config as the tests left it, moving traffic
# (onto a signed release, and onto one nobody signed), and the corpus of drop-causing configs
# (tests/pack/drops.yaml) that a Gateway stack's config can say, each over the flip to green.
FLIP = {"activeColor": "green", "trafficPercent": 100}
VERDICT_CASES: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "the stack as it is": ({}, {}),
    "green at 100%": (FLIP, {}),
    "green at 100% on a release nobody signed": (
        {
            **FLIP,
            "colors.green.release": "1.43.0",
            "colors.green.image": "registry.example/checkout@sha256:" + "7" * 64,
        },
        {"chairman-approval": "release 1.43.0", "security-signoff": "release 1.43.0"},
    ),  # fmt: skip
    **{
        case.name: ({**FLIP, **case.config}, case.refused)
        for section in ("refused", "passes")
        for case in drops.cases(section)
        # sessionPersistence (stickiness on a route) is in the Gateway API's experimental
        # channel: the standard CRDs this API server has refuse the route that declares it
        if case.base == "kubernetes" and not case.program and "stickinessSeconds" not in case.config
    },
}


DROP_POLICIES = {p.name for p in [*DRAINING, *READINESS]}  # what drops requests in a flip
Verdict = tuple[str, str, str, str]  # policy, enforcement level, resource name, message


def engine_verdicts(stack: PulumiStack, launcher: Path, pack_config: Path) -> set[Verdict]:
    """`pulumi preview --policy-pack` by the real CLI: the pack's violations from its engine
    events (the streaming JSON the CLI's --help names), each with its resource's name."""
    done = run_process(
        [str(stack.pulumi), "preview", "--json", "--stack", stack.stack, "--non-interactive",
         "--policy-pack", str(launcher), "--policy-pack-config", str(pack_config)],
        stack.folder, {**stack.env, "PULUMI_ENABLE_STREAMING_JSON_PREVIEW": "true"}, 300,
    )  # fmt: skip
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    found = {
        (p["policyName"], p["enforcementLevel"], p.get("resourceUrn", "").rsplit("::", 1)[-1],
         p["message"].strip())
        for e in events if (p := e.get("policyEvent"))
    }  # fmt: skip
    errors = [d["message"] for e in events if (d := e.get("diagnosticEvent"))
              if d.get("severity") == "error"]  # fmt: skip
    assert events and (found or done.returncode == 0), "\n".join(errors) or done.stderr
    return found


def cutover_verdicts(engine: EngineStack, project: Path, stack_file: Path) -> set[Verdict]:
    """`cutover preview` on the same project, stack file, pack config and previous outputs."""
    done = run_process(
        [sys.executable, "-m", "cutover", "preview", "--project-dir", str(project),
         "--stack", "prod", "--stack-file", str(stack_file),
         "--policy-pack", str(ROOT / "policies"), "--policy-pack-config", str(engine.gates),
         "--previous", str(engine.outputs), "--output", "json"],
        engine.folder, engine.env, 300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["notJudged"] == [], result["notRead"]
    return {
        (p["name"], v["level"], v["urn"].rsplit("::", 1)[-1], v["message"].strip())
        for p in result["policies"] for v in p["violations"]
    }  # fmt: skip


def test_the_real_engine_and_cutover_preview_judge_alike(engine: EngineStack) -> None:
    """`pulumi preview --policy-pack` (the real CLI, the real pack, on the stack `pulumi up`
    made) and `cutover preview` give the same verdicts, policy by policy and resource by
    resource, on the same inputs: the stack as it is, traffic moved with and without its
    records and on a release nobody signed, and two settings that drop requests in a flip.

    The pack is given to the CLI as a binary analyzer (`policies/pulumi-analyzer-cutover-gates`,
    which runs what the Python language host runs for the pack folder): the v3.79.0 host
    cannot start a pack folder under the v3.276.0 CLI. The program previewed is the
    repository's own `__main__.py` (a second project folder of the same project and backend),
    without tests/e2e/program's skipAwait: a preview awaits nothing, and so both judge what a
    production stack declares."""
    project = engine.folder / "preview-project"
    project.mkdir(exist_ok=True)
    (project / "Pulumi.yaml").write_text(
        (engine.pulumi.folder / "Pulumi.yaml")
        .read_text()
        .replace(
            f"main: {os.path.relpath(ROOT / 'tests' / 'e2e' / 'program', engine.pulumi.folder)}",
            f"main: {os.path.relpath(ROOT, project)}",
        )
    )
    assert f"main: {os.path.relpath(ROOT, project)}" in (project / "Pulumi.yaml").read_text()
    judged = PulumiStack(project, "prod", engine.pulumi.env, engine.pulumi.pulumi)
    base = engine.pulumi.config()
    launcher = ROOT / "policies" / "pulumi-analyzer-cutover-gates"
    # a record dropped from the stack's list: the gate records' ConfigMap is updated in place
    # (kubernetes:enableConfigMapMutable), so the engine shows the pack what this update
    # publishes; replaced, it showed the record still there
    unsigned = [r for r in base["cutover:gateRecords"] if not r.endswith("green-approval.json")]
    assert len(unsigned) == len(base["cutover:gateRecords"]) - 1
    dropped = {**FLIP, "gateRecords": unsigned}
    cases = {
        **VERDICT_CASES,
        "green at 100% with its approval dropped": (
            dropped,
            {"chairman-approval": "approval record"},
        ),
    }
    for name, (keys, refused) in cases.items():
        judged.stack_file.write_text(engine.pulumi.stack_file.read_text())  # its salt too
        judged.write_config(drops.set_keys(json.loads(json.dumps(base)), keys))
        real = engine_verdicts(judged, launcher, engine.gates)
        ours = cutover_verdicts(engine, project, judged.stack_file)
        assert real == ours, (name, sorted(real - ours), sorted(ours - real))
        for policy, phrase in refused.items():  # and the corpus's refusals are among them
            assert any(v[:2] == (policy, "mandatory") and phrase in v[3] for v in real), (
                name, policy, sorted(real))  # fmt: skip
        drop_policies = {v[0] for v in real} & DROP_POLICIES
        assert drop_policies == set(refused) & DROP_POLICIES, (name, sorted(real))
