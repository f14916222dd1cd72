"""The helper on a Kubernetes stack with Gateway API routing: the real CLI and the real
`kubernetes` client against a local API server (tests/kube_api.py) holding the HTTPRoute and
Deployments the program declares, and the journal's ConfigMaps and Leases. AWS is unreachable
on purpose: a Gateway stack needs none.
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

from tests.harness.cli_runs import OUTLIVED, frozen, run_cutover, wait_for
from tests.harness.cluster import FAST, NS, Cluster, gateway_cluster


@pytest.fixture(scope="module")
def cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # no Prometheus here (test_prometheus has one), and no verification bake at 100%
    analysis = {"enabled": False, "verifyMinutes": 0}
    with gateway_cluster(tmp_path_factory.mktemp("cluster"), analysis) as cluster:
        yield cluster


@pytest.fixture
def cluster(cluster_session: Cluster, tmp_path: Path) -> Cluster:
    cluster_session.reset(tmp_path)
    return cluster_session


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
    # one PATCH per step, each conditional on the resourceVersion it read
    patches = cluster.api.patches()
    assert len(patches) == 3
    assert all(p[0]["path"] == "/metadata/resourceVersion" for p in patches)
    # the guard read the target Deployment's ready replicas
    assert any("/deployments/checkout-green" in p for _, p, _ in cluster.api.requests)
    assert "Now make the stack's config follow" in result.stdout


def test_a_concurrent_writer_causes_a_conflict_and_the_router_retries(cluster: Cluster) -> None:
    cluster.api.interfere = 2
    result = cluster.cutover(*cluster.shift("--steps", "100", *FAST))
    assert result.returncode == 0, result.stderr
    assert cluster.weights() == {"blue": 0, "green": 100}
    assert len(cluster.api.patches()) == 3  # two refused with 409, the third written
    labels = cluster.api.routes[(NS, "checkout")]["metadata"]["labels"]
    assert labels["touched-by"] == "someone-else"  # the other writer's change is kept


def test_slow_propagation_is_waited_for(cluster: Cluster) -> None:
    cluster.api.accept_after = 1.0
    started = time.monotonic()
    result = cluster.cutover(*cluster.shift("--steps", "50,100", *FAST))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 2.0  # each step waited for the Gateway to accept it
    (doc,) = cluster.deployments()
    assert doc["status"] == "succeeded"
    assert "not yet accepted" in result.stdout


def test_a_route_never_accepted_is_given_back(cluster: Cluster) -> None:
    cluster.set_weights({"blue": 70, "green": 30})
    cluster.api.accept_after = 60
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
    before = len(cluster.api.patches())
    cluster.api.set_ready(NS, "checkout-green", ready)
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
    (restore,) = cluster.api.patches()[before:]
    assert restore[0]["path"] == "/metadata/resourceVersion"
    (doc,) = cluster.deployments()
    assert doc["status"] == "rolled-back" and doc["timings"]["restoreVerified"] is True
    if ready:  # replicas short of the budget fail the step, but users were served all along
        assert all(sample["ok"] for sample in doc["samples"])


def test_one_disrupted_replica_is_within_the_budget(cluster: Cluster) -> None:
    code, err, _ = _shift_then_ready(cluster, 5, "1s")
    assert code == 0, err
    assert cluster.weights() == {"blue": 0, "green": 100}


def test_preflight_refuses_a_target_without_ready_replicas(cluster: Cluster) -> None:
    cluster.api.set_ready(NS, "checkout-green", 3)
    result = cluster.cutover(*cluster.shift("--steps", "100", *FAST))
    assert result.returncode == 2
    assert "green has 3 ready replicas; it needs 6 before it takes traffic" in result.stderr
    smoke = cluster.cutover(*cluster.shift("--steps", "100", *FAST, "--smoke", "true"))
    assert smoke.returncode == 2
    assert "--smoke: prod/checkout has no test listener (Gateway routing)" in smoke.stderr
    assert cluster.api.patches() == [] and cluster.deployments() == []


def test_rollback_scales_the_old_color_up_before_giving_it_traffic(cluster: Cluster) -> None:
    assert cluster.cutover(*cluster.shift("--steps", "100", *FAST)).returncode == 0
    # after the rollback window, `pulumi up` scaled blue to its idle capacity
    with cluster.api.lock:
        blue = cluster.api.deployments[(NS, "checkout-blue")]
        blue["spec"]["replicas"] = 2
        blue["status"]["readyReplicas"] = 2
    result = cluster.cutover(*cluster.args("rollback"))
    assert result.returncode == 0, result.stderr
    assert "blue runs 2 of 6; scaling it back up first" in result.stdout
    assert cluster.api.deployments[(NS, "checkout-blue")]["spec"]["replicas"] == 6
    assert cluster.weights() == {"blue": 100, "green": 0}
    scale = [b for m, p, b in cluster.api.requests if p.endswith("/checkout-blue/scale")]
    assert scale == [{"spec": {"replicas": 6}}]


def test_status_drill_and_report_work_unchanged(cluster: Cluster) -> None:
    cluster.api.unavailable = 2  # the client retries 503s
    status = cluster.cutover(*cluster.args("status", "--output", "json"))
    assert status.returncode == 0, status.stderr
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
    kept = cluster.api.objects[("configmaps", NS, f"cutover-deployment-{doc['id'].lower()}")]
    assert kept["metadata"]["labels"]["cutover/scope"] == doc["scope"]
    # the lease was taken before the first write and released at the end
    calls = [f"{m} {p}" for m, p, _ in cluster.api.requests]
    lease = next(i for i, c in enumerate(calls) if c.startswith("POST") and c.endswith("/leases"))
    write = next(i for i, c in enumerate(calls) if c.startswith("PATCH") and "/httproutes/" in c)
    assert lease < write
    assert not [k for k in cluster.api.objects if k[0] == "leases"]
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
    assert cluster.api.patches() == []
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
    del cluster.api.routes[(NS, "checkout")]
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
    with cluster.api.lock:
        refs = cluster.api.routes[(NS, "checkout")]["spec"]["rules"][0]["backendRefs"]
        del refs[0]["weight"]  # blue: the Gateway API default, 1
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
    events = cluster.api.events(NS)
    warnings = [e for e in events if e["reason"] == "CutoverRolledBack"]
    assert warnings and warnings[-1]["type"] == "Warning"
    assert warnings[-1]["involvedObject"] == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "name": "checkout",
        "namespace": NS,
    }
    assert "watchdog: holder ci" in warnings[-1]["message"]
    again = cluster.cutover(*cluster.args("watchdog", "--once"))
    assert again.returncode == 0 and "nothing to do" in again.stdout


def _lease_ends(cluster: Cluster) -> list[float]:
    """When each Lease in the namespace runs out (epoch seconds)."""
    from datetime import datetime

    with cluster.api.lock:
        leases = [o for (p, _, _), o in cluster.api.objects.items() if p == "leases"]
    return [
        datetime.fromisoformat(o["spec"]["renewTime"].replace("Z", "+00:00")).timestamp()
        + o["spec"]["leaseDurationSeconds"]
        for o in leases
    ]
