"""The helper on a Kubernetes stack with Gateway API routing: the real CLI and the real
`kubernetes` client against a real kube-apiserver holding every object the program declares
(the HTTPRoute, Deployments, the CronJob and the helper's Role among them) and the journal's
ConfigMaps and Leases, with Traefik as the Gateway that accepts the route
(tests/harness/cluster.py). The helper runs as the CronJob's ServiceAccount, bound to the
program's Role: every call it makes in these tests must be allowed, which the API server's
audit log is checked for after each test. AWS is unreachable on purpose: a Gateway stack
needs none.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cutover.routers.gateway import GatewayRouter
from tests.harness.cli_runs import OUTLIVED, frozen, run_cutover, running, wait_for
from tests.harness.cluster import FAST, NS, Cluster, KubeCluster, gateway_cluster


@pytest.fixture(scope="module")
def cluster_session(
    kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    # no Prometheus here (test_prometheus has one), and no verification bake at 100%
    analysis = {"enabled": False, "verifyMinutes": 0}
    with gateway_cluster(kube, tmp_path_factory.mktemp("cluster"), analysis) as cluster:
        yield cluster


@pytest.fixture
def cluster(cluster_session: Cluster, tmp_path: Path) -> Iterator[Cluster]:
    cluster_session.reset(tmp_path)
    yield cluster_session
    cluster_session.check_allowed()  # the Role the program declares let it make every call


@pytest.fixture
def router(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayRouter]:
    """The Gateway router in this process, on the helper's kubeconfig (its token, its
    connections through the proxy), for a fence that acts between its read and its write."""
    from cutover import kube

    monkeypatch.setenv("KUBECONFIG", cluster.env["KUBECONFIG"])
    kube.api_client.cache_clear()
    services = {"blue": "checkout-blue", "green": "checkout-green"}
    yield GatewayRouter(NS, "checkout", services, "prod/checkout", kube.Api("CustomObjectsApi"))
    kube.api_client.cache_clear()


def test_shift_patches_the_route_in_steps_and_verifies_each(cluster: Cluster) -> None:
    result = cluster.cutover(*cluster.shift("--steps", "10,50,100", *FAST))
    assert result.returncode == 0, result.stderr
    assert cluster.weights() == {"blue": 0, "green": 100}
    (doc,) = cluster.deployments()
    assert doc["status"] == "succeeded"
    assert [e["weights"] for e in doc["events"] if e["type"] == "step"] == [
        {"blue": 90, "green": 10},
        {"blue": 50, "green": 50},
        {"blue": 0, "green": 100},
    ]
    assert doc["listeners"] == ["httproute/checkout/checkout"]
    # one PATCH written per step, each conditional on the resourceVersion it read (one the
    # Gateway's status write beat would be refused, 409, and made again at the new version)
    patches = cluster.patches()
    assert [p.code for p in patches if p.code != 409] == [200, 200, 200], [str(p) for p in patches]
    assert all(p.body[0]["path"] == "/metadata/resourceVersion" for p in patches)
    # the guard read the target Deployment's ready replicas
    assert any(c.resource == "deployments" and c.name == "checkout-green" for c in cluster.calls())
    assert "Now make the stack's config follow" in result.stdout


def test_a_concurrent_writer_causes_a_conflict_and_the_router_retries(
    cluster: Cluster, router: GatewayRouter
) -> None:
    """A second client writes the route between the router's read and its patch, twice (the
    fence runs right there): both patches are refused with 409, the third, at the version
    read again, lands, and the other writer's change is kept."""
    writes: list[str] = []

    def other_writer() -> None:
        if len(writes) < 2:
            route = cluster.route()
            assert route is not None
            route["metadata"].setdefault("labels", {})["touched-by"] = f"someone-else-{len(writes)}"
            writes.append(cluster.kube.apply(route)["metadata"]["resourceVersion"])

    router.set({"blue": 0, "green": 100}, fence=other_writer)
    assert cluster.weights() == {"blue": 0, "green": 100}
    codes = [p.code for p in cluster.patches()]
    assert codes == [409, 409, 200], codes
    route = cluster.route()
    assert route is not None and route["metadata"]["labels"]["touched-by"] == "someone-else-1"


def test_a_restore_is_never_lost_to_the_gateways_status_write(
    cluster: Cluster, router: GatewayRouter
) -> None:
    """The Gateway writes the route's status after each change it takes, which moves the
    route's resourceVersion. A restore that read the route before that write is refused with
    409; it reads again, writes the snapshot at the new version, and the restore is served."""
    snapshot = router.snapshot()
    with cluster.kube.gateway_stopped() as resume:
        router.set({"blue": 40, "green": 60})  # the Gateway, stopped, has not taken it yet
        fenced: list[str] = []

        def gateway_writes_status_meanwhile() -> None:
            fenced.append("read")
            if len(fenced) == 1:  # between the restore's first read and its patch
                resume()
                cluster.wait_accepted()

        router.restore(snapshot, fence=gateway_writes_status_meanwhile)
    codes = [p.code for p in cluster.patches()]
    assert codes[:2] == [200, 409] and codes[-1] == 200 and set(codes[2:-1]) <= {409}, codes
    assert cluster.weights() == {"blue": 100, "green": 0}
    cluster.wait_served({"blue": 100, "green": 0})
    assert router.served() == {"blue": 100, "green": 0}


def test_a_writer_stalled_before_its_patch_cannot_land_over_a_takeovers_restore(
    cluster: Cluster, router: GatewayRouter
) -> None:
    """The driver has served 50/50 and reads the route for its next step, then stalls right
    before its patch; meanwhile a takeover restores the snapshot. When the driver goes on,
    the server refuses its patch (409: the version it read is gone), and on reading again
    its fence says the lease is lost: its step never lands over the restore."""
    from cutover.journal.lease import LeaseLost

    snapshot = router.snapshot()
    router.set({"blue": 50, "green": 50})
    cluster.wait_accepted()  # the Gateway's status write is done: no third writer below
    services = {"blue": "checkout-blue", "green": "checkout-green"}
    taker = GatewayRouter(NS, "checkout", services, "prod/checkout", router.api)
    asked: list[str] = []

    def drivers_lease() -> None:
        asked.append("fence")
        if len(asked) == 1:  # stalled: the takeover runs now, the driver still thinks it holds
            taker.restore(snapshot)
            return
        raise LeaseLost("the watchdog took this deployment over")

    with pytest.raises(LeaseLost):
        router.set({"blue": 0, "green": 100}, fence=drivers_lease)
    assert [p.code for p in cluster.patches()] == [200, 200, 409]
    assert cluster.weights() == {"blue": 100, "green": 0}


def _route_reads_after_the_first_patch(cluster: Cluster) -> int:
    calls = cluster.calls()
    first = next((i for i, c in enumerate(calls) if c in cluster.patches()), len(calls))
    return sum(1 for c in calls[first:] if c.verb == "get" and c.resource == "httproutes")


def test_slow_propagation_is_waited_for(cluster: Cluster) -> None:
    """The Gateway has not taken the first step yet (stopped): the shift reads the route back,
    says it is not yet accepted, and writes no further step until the Gateway has."""
    with cluster.kube.gateway_stopped() as resume:
        process = cluster.spawn(*cluster.shift("--steps", "50,100", *FAST))
        with running(process):
            wait_for(lambda: len(cluster.patches()) == 1, 60, "the first step's patch", process)
            wait_for(
                lambda: _route_reads_after_the_first_patch(cluster) >= 3,
                60,
                "the shift reading the route back",
                process,
            )
            assert len(cluster.patches()) == 1  # still waiting at the first step
            assert cluster.weights() == {"blue": 50, "green": 50}
            resume()
            out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    (doc,) = cluster.deployments()
    assert doc["status"] == "succeeded"
    assert "not yet accepted" in out
    assert cluster.weights() == {"blue": 0, "green": 100}


def test_a_route_never_accepted_is_given_back(cluster: Cluster) -> None:
    cluster.set_weights({"blue": 70, "green": 30})
    with cluster.kube.gateway_stopped():
        result = cluster.cutover(*cluster.shift("--steps", "100", *FAST, "--verify-timeout", "1s"))
    assert result.returncode == 1
    assert "not served" in result.stderr
    assert cluster.weights() == {"blue": 70, "green": 30}
    (doc,) = cluster.deployments()
    assert doc["status"] == "rolled-back"
    assert doc["timings"]["restoreVerified"] is False  # said honestly: the Gateway lags


def _shift_then_ready(cluster: Cluster, ready: int, bake: str) -> tuple[int, str, int]:
    """Shift 70/30 -> 60 -> 100; once the first step is served, green has `ready` replicas.

    Returns the exit code, stderr, and how many route PATCHes came before the change."""
    cluster.set_weights({"blue": 70, "green": 30})
    process = cluster.spawn(*cluster.shift("--steps", "60,100", "--bake", bake, *FAST[2:]))
    cluster.stepped(process)
    before = len(cluster.patches())
    cluster.set_ready("checkout-green", ready)
    _, err = process.communicate(timeout=60)
    return process.returncode, err, before


@pytest.mark.parametrize(
    ("ready", "says"),
    [(0, "prod/checkout/green: 0 ready"), (4, "capacity: prod/checkout/green: 4 ready (needs 5)")],
)
def test_ready_replicas_dropping_rolls_back_to_the_exact_split(
    cluster: Cluster, ready: int, says: str
) -> None:
    code, err, before = _shift_then_ready(cluster, ready, "20s")
    assert code == 1, err
    assert says in err
    assert cluster.weights() == {"blue": 70, "green": 30}
    # one PATCH, conditional on the version it read: the fence a frozen writer cannot pass
    (restore,) = cluster.patches()[before:]
    assert restore.code == 200 and restore.body[0]["path"] == "/metadata/resourceVersion"
    (doc,) = cluster.deployments()
    assert doc["status"] == "rolled-back" and doc["timings"]["restoreVerified"] is True
    if ready:  # replicas short of the budget fail the step, but users were served all along
        assert all(sample["ok"] for sample in doc["samples"])


def test_one_disrupted_replica_is_within_the_budget(cluster: Cluster) -> None:
    code, err, _ = _shift_then_ready(cluster, 5, "1s")
    assert code == 0, err
    assert cluster.weights() == {"blue": 0, "green": 100}


def test_preflight_refuses_a_target_without_ready_replicas(cluster: Cluster) -> None:
    cluster.set_ready("checkout-green", 3)
    result = cluster.cutover(*cluster.shift("--steps", "100", *FAST))
    assert result.returncode == 2
    assert "green has 3 ready replicas; it needs 6 before it takes traffic" in result.stderr
    smoke = cluster.cutover(*cluster.shift("--steps", "100", *FAST, "--smoke", "true"))
    assert smoke.returncode == 2
    assert "--smoke: prod/checkout has no test listener (Gateway routing)" in smoke.stderr
    assert cluster.patches() == [] and cluster.deployments() == []


def test_rollback_scales_the_old_color_up_before_giving_it_traffic(cluster: Cluster) -> None:
    assert cluster.cutover(*cluster.shift("--steps", "100", *FAST)).returncode == 0
    # after the rollback window, `pulumi up` scaled blue to its idle capacity
    cluster.scale("checkout-blue", 2)
    result = cluster.cutover(*cluster.args("rollback"))
    assert result.returncode == 0, result.stderr
    assert "blue runs 2 of 6; scaling it back up first" in result.stdout
    assert cluster.deployment("checkout-blue").spec.replicas == 6
    assert cluster.weights() == {"blue": 100, "green": 0}
    scale = [c.body for c in cluster.calls() if c.subresource == "scale" and c.verb == "patch"]
    assert scale == [{"spec": {"replicas": 6}}]


def test_status_drill_and_report_work_unchanged(cluster: Cluster) -> None:
    cluster.kube.proxy.drop(2)  # the helper's first two connections are reset as they open
    status = cluster.cutover(*cluster.args("status", "--output", "json"))
    assert status.returncode == 0, status.stderr
    assert cluster.kube.proxy.dropped == 2  # and the client connected again
    (service,) = json.loads(status.stdout)["services"]
    assert service["weights"] == {"blue": 100, "green": 0}
    assert service["ready"] == {"blue": 6, "green": 6}
    assert service["readyUnit"] == "ready replicas"
    records = cluster.tmp / "records"
    shutil.copytree(cluster.records, records)
    drill = cluster.cutover(
        *cluster.args(
            "drill",
            "--to",
            "green",
            "--bake",
            "0.3s",
            "--interval",
            "0.05s",
            "--gates-config",
            str(cluster.gates),
            "--records",
            str(records),
            "--key",
            str(cluster.deploy_key),
        )
    )
    assert drill.returncode == 0, drill.stderr
    assert cluster.weights() == {"blue": 100, "green": 0}
    (written,) = records.glob("prod-green-1.42.0-rollback-drill.json")
    assert json.loads(written.read_text())["record"]["details"]["rollbackSeconds"] > 0
    report = cluster.cutover(
        *cluster.args("report", "--output", "json", "--out", str(cluster.tmp / "report"))
    )
    assert report.returncode == 0, report.stderr
    (data,) = (cluster.tmp / "report").glob("deployment-*.json")
    figures = json.loads(data.read_text())
    assert figures["status"] == "drilled"
    assert figures["rollbackSeconds"] is not None


def test_the_journal_and_lock_live_in_the_namespace(cluster: Cluster) -> None:
    result = cluster.cutover(*cluster.shift("--steps", "100", *FAST))
    assert result.returncode == 0, result.stderr
    (doc,) = cluster.deployments()
    kept = cluster.kube.api("CoreV1Api").read_namespaced_config_map(
        f"cutover-deployment-{doc['id'].lower()}", NS
    )
    assert kept.metadata.labels["cutover/scope"] == doc["scope"]
    # the lease was taken before the first write and released at the end
    calls = cluster.calls()
    lease = next(i for i, c in enumerate(calls) if c.verb == "create" and c.resource == "leases")
    write = next(i for i, c in enumerate(calls) if c in cluster.patches())
    assert lease < write
    assert cluster.leases() == []
    # a table the stack does not have is refused plainly
    refused = cluster.cutover(*cluster.args("status", "--journal", "dynamodb"))
    assert refused.returncode == 2
    assert "this stack has no journal table; use --journal stack" in refused.stderr


def test_a_live_lease_refuses_a_second_shift_and_an_expired_one_is_taken(cluster: Cluster) -> None:
    now = datetime.now(UTC)
    cluster.lease("other@ci-runner-7:41", "ci-runner-7", 41, now)
    held = cluster.cutover(*cluster.shift("--steps", "100", *FAST))
    assert held.returncode == 3
    assert "is locked by deployment 20261126T000000Z-0000aa by ana on ci-runner-7" in held.stderr
    assert cluster.patches() == []
    cluster.lease("other@ci-runner-7:41", "ci-runner-7", 41, now - timedelta(seconds=31))
    taken = cluster.cutover(*cluster.shift("--steps", "100", *FAST))
    assert taken.returncode == 0, taken.stderr
    assert cluster.weights() == {"blue": 0, "green": 100}


def test_a_killed_shift_is_rolled_back_from_the_namespace_journal(cluster: Cluster) -> None:
    cluster.set_weights({"blue": 70, "green": 30})
    process = cluster.spawn(*cluster.shift("--steps", "60,100", "--bake", "60s", *FAST[2:]))
    cluster.stepped(process)
    process.kill()
    process.communicate()
    assert cluster.weights() == {"blue": 40, "green": 60}
    status = cluster.cutover(*cluster.args("status"))
    assert "interrupted" in status.stdout, status.stdout + status.stderr
    result = cluster.cutover(*cluster.args("rollback"))  # its lease names a dead process here
    assert result.returncode == 0, result.stderr
    assert cluster.weights() == {"blue": 70, "green": 30}
    (doc,) = cluster.deployments()
    assert doc["status"] == "rolled-back"


def test_a_route_that_does_not_exist_is_named_and_nothing_starts(cluster: Cluster) -> None:
    cluster.delete_route()
    for command in ("status", "shift"):
        args = cluster.args(command)
        if command == "shift":
            args += [
                "--to",
                "green",
                "--steps",
                "100",
                "--gates-config",
                str(cluster.gates),
                "--records",
                str(cluster.records),
            ]
        result = cluster.cutover(*args)
        assert result.returncode == 2, result.stderr
        assert f"HTTPRoute {NS}/checkout does not exist" in result.stderr
        assert "Traceback" not in result.stderr
    assert cluster.deployments() == []


def test_a_paused_shift_is_promoted_through_the_namespace_journal(cluster: Cluster) -> None:
    process = cluster.spawn(*cluster.shift("--steps", "50,100", "--mode", "assisted", *FAST))
    wait_for(
        lambda: any(d["status"] == "paused" for d in cluster.deployments()),
        60,
        "the pause",
        process,
    )
    assert cluster.weights() == {"blue": 50, "green": 50}
    promoted = cluster.cutover(*cluster.args("promote"))
    assert promoted.returncode == 0, promoted.stderr
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert cluster.weights() == {"blue": 0, "green": 100}
    (doc,) = cluster.deployments()
    assert [e["type"] for e in doc["events"]].count("promoted") == 1


def test_a_backend_without_a_weight_counts_as_one_and_is_written(cluster: Cluster) -> None:
    """A backendRef written without a weight weighs 1 (the Gateway API's default). The real
    server stores it so: the CRD's schema defaults the field, so a route read back always
    has one."""
    route = cluster.route()
    assert route is not None
    del route["spec"]["rules"][0]["backendRefs"][0]["weight"]  # blue
    stored = cluster.kube.apply(route)
    assert stored["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1
    cluster.wait_served({"blue": 1, "green": 0})
    status = cluster.cutover(*cluster.args("status", "--output", "json"))
    assert json.loads(status.stdout)["services"][0]["weights"] == {"blue": 1, "green": 0}
    result = cluster.cutover(*cluster.shift("--steps", "100", *FAST))
    assert result.returncode == 0, result.stderr
    assert cluster.weights() == {"blue": 0, "green": 100}


def test_the_watchdog_gives_back_a_route_whose_shift_died_elsewhere(cluster: Cluster) -> None:
    """`cutover watchdog --once`, as the CronJob runs it, after a shift stopped renewing (its
    process stopped, as on a lost runner) and its lease ran out."""
    cluster.set_weights({"blue": 80, "green": 20})
    process = subprocess.Popen(
        [sys.executable, "-m", "cutover",
         *cluster.shift("--steps", "60,100", "--bake", "60s", *FAST[2:])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **cluster.env, **OUTLIVED},
        cwd=cluster.tmp,
    )  # fmt: skip
    cluster.stepped(process)
    with frozen(process):
        assert cluster.weights() == {"blue": 40, "green": 60}
        early = cluster.cutover(*cluster.args("watchdog", "--once"))
        assert early.returncode == 0 and "alive and renewing" in early.stdout, early.stderr
        assert cluster.weights() == {"blue": 40, "green": 60}
        wait_for(lambda: all(t <= time.time() for t in _lease_ends(cluster)), 60, "lease to end")
        passed = run_cutover(list(cluster.args("watchdog", "--once")), {**cluster.env, **OUTLIVED},
                             cluster.tmp)  # fmt: skip
    assert passed.returncode == 0, passed.stderr
    assert "restored" in passed.stdout
    assert cluster.weights() == {"blue": 80, "green": 20}
    (doc,) = cluster.deployments()
    assert doc["status"] == "rolled-back"
    assert doc["failure"]["detail"].startswith(
        f"holder ci on {socket.gethostname()} stopped renewing at "
    )
    warnings = [e for e in cluster.events() if e.reason == "CutoverRolledBack"]
    assert warnings and warnings[-1].type == "Warning"
    involved = warnings[-1].involved_object
    assert (involved.api_version, involved.kind, involved.name, involved.namespace) == (
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        "checkout",
        NS,
    )
    assert "watchdog: holder ci" in warnings[-1].message
    again = cluster.cutover(*cluster.args("watchdog", "--once"))
    assert again.returncode == 0 and "nothing to do" in again.stdout


def _lease_ends(cluster: Cluster) -> list[float]:
    """When each Lease in the namespace runs out (epoch seconds)."""
    return [
        lease.spec.renew_time.timestamp() + lease.spec.lease_duration_seconds
        for lease in cluster.leases()
    ]


def test_the_watchdog_and_the_helpers_role_are_admitted_as_declared(cluster: Cluster) -> None:
    """The CronJob, its ServiceAccount and binding and the helper's Role, as the program
    declares them, are what the real server stored (its validation and admission passed)."""
    from kubernetes import client

    api = cluster.kube.api
    job = api("BatchV1Api").read_namespaced_cron_job("cutover-watchdog", NS)
    (declared_job,) = cluster.declared("CronJob")
    assert job.spec.schedule == declared_job["spec"]["schedule"] and job.spec.suspend is False
    pod = job.spec.job_template.spec.template.spec
    assert pod.service_account_name == "cutover-watchdog"
    assert pod.containers[0].command[:3] == ["cutover", "watchdog", "--once"]
    role = api("RbacAuthorizationV1Api").read_namespaced_role("cutover-helper", NS)
    (declared_role,) = cluster.declared("Role")
    stored = client.ApiClient().sanitize_for_serialization(role.rules)
    assert stored == declared_role["rules"]
    binding = api("RbacAuthorizationV1Api").read_namespaced_role_binding("cutover-watchdog", NS)
    assert (binding.role_ref.name, binding.subjects[0].name) == (
        "cutover-helper",
        "cutover-watchdog",
    )


def test_the_helpers_role_refuses_what_a_shift_never_does(cluster: Cluster) -> None:
    """The helper's token (the CronJob's ServiceAccount, bound to the program's Role) against
    calls no shift, rollback, drill, watchdog pass or exit gate makes: the real server's RBAC
    refuses each with 403, and nothing changed. (That it allows every call those make is
    checked after each test of this module, in the audit log.)"""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    cluster.refusals_expected = True
    helper = config.new_client_from_config(config_file=cluster.env["KUBECONFIG"])
    objects, apps = client.CustomObjectsApi(helper), client.AppsV1Api(helper)
    core, batch = client.CoreV1Api(helper), client.BatchV1Api(helper)
    rbac = client.RbacAuthorizationV1Api(helper)
    route = ("gateway.networking.k8s.io", "v1", NS, "httproutes")
    green_spec = [{"op": "replace", "path": "/spec/replicas", "value": 0}]
    beyond = {
        "read another route": lambda: objects.get_namespaced_custom_object(*route, "other"),
        "list routes": lambda: objects.list_namespaced_custom_object(*route),
        "delete the route": lambda: objects.delete_namespaced_custom_object(*route, "checkout"),
        "change a Deployment's spec": lambda: apps.patch_namespaced_deployment(
            "checkout-green", NS, green_spec
        ),
        "read another Deployment": lambda: apps.read_namespaced_deployment("other", NS),
        "read a Secret": lambda: core.list_namespaced_secret(NS),
        "delete a ConfigMap": lambda: core.delete_namespaced_config_map("cutover-gates", NS),
        "suspend the watchdog": lambda: batch.patch_namespaced_cron_job(
            "cutover-watchdog", NS, {"spec": {"suspend": True}}
        ),
        "grant itself more": lambda: rbac.create_namespaced_role(
            NS, {"metadata": {"name": "more"}, "rules": []}
        ),
        "read another namespace": lambda: core.list_namespaced_config_map("gateways"),
        "move the Gateway": lambda: objects.patch_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", "gateways", "gateways", "public", {}
        ),
    }
    answers = {}
    for what, call in beyond.items():
        try:
            call()
            answers[what] = 200
        except ApiException as e:
            answers[what] = e.status
    assert answers == dict.fromkeys(beyond, 403)
    assert cluster.deployment("checkout-green").spec.replicas == 6
    assert (
        cluster.kube.api("BatchV1Api").read_namespaced_cron_job("cutover-watchdog", NS).spec.suspend
        is False
    )
    assert [c.code for c in cluster.calls()] == [403] * len(beyond)
