"""The metric analysis on a Gateway stack against a real Prometheus server (Debian's package)
on 127.0.0.1, scraping an exporter whose per-color counters follow the weights the real
Gateway (Traefik, on the real API server: tests/harness/cluster.py) serves for the route."""

from __future__ import annotations

import json
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cutover_gates.analysis_config import Settings

from cutover.analysis import BASELINE_WINDOWS
from cutover.engine.metric_guards import AnalysisGuard
from cutover.metrics import PrometheusSource
from rehearsal.traffic import Traffic
from tests.harness.cli_runs import running, wait_for
from tests.harness.cluster import NS, Cluster, KubeCluster, gateway_cluster
from tests.harness.fault_proxy import FaultProxy
from tests.harness.prometheus import (
    QUERIES,
    ColorExporter,
    backfill,
    prometheus_server,
    require_prometheus,
)
from tests.harness.real_cluster import served_weights

PERIOD = 3  # seconds a window; Prometheus scrapes every 250 ms


@pytest.fixture(scope="module")
def watched(
    kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, ColorExporter]]:
    binary = require_prometheus()
    base = tmp_path_factory.mktemp("prometheus")
    services = {"blue": "checkout-blue", "green": "checkout-green"}
    last = [{"blue": 100, "green": 0}]

    def served() -> dict[str, int]:
        """The weights the Gateway serves now (its loaded configuration); the last known
        while it has none for the route."""
        try:
            found = served_weights(kube.gateway, services)
        except OSError:
            found = None
        if found is not None:
            last[0] = found
        return last[0]

    with (
        ColorExporter(NS, services, served, Traffic(per_second=400)) as exporter,
        prometheus_server(binary, exporter.address, base / "prometheus") as url,
    ):
        wait_for(
            lambda: has_series(url), 30, "Prometheus to hold a window of the exporter's series"
        )
        analysis = {
            "periodSeconds": PERIOD,
            "latencyStatistic": "Average",
            "verifyMinutes": 0,
            "prometheus": {"url": url, "queries": QUERIES},
        }
        with gateway_cluster(kube, base, analysis) as cluster:
            yield cluster, exporter


def has_series(url: str) -> bool:
    """The latest complete window (what a shift's preflight reads) holds requests."""
    return held(url, "app_requests_total", PERIOD) > 0


def held(url: str, series: str, seconds: int) -> float:
    """The increase of `series` over the `seconds` up to the latest complete window."""
    latest = time.time() // PERIOD * PERIOD
    query = urllib.parse.urlencode(
        {"query": f"sum(increase({series}[{seconds}s]))", "time": latest}
    )
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=2) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture
def cluster(watched: tuple[Cluster, ColorExporter], tmp_path: Path) -> Iterator[Cluster]:
    cluster, exporter = watched
    cluster.reset(tmp_path)
    exporter.traffic.error_percent.update(blue=1.0, green=1.0)
    exporter.traffic.elb_error_percent.update(blue=0.0, green=0.0)
    exporter.traffic.per_second = 400
    yield cluster
    cluster.check_allowed()  # the Role the program declares let it make every call


def exporter_of(watched: tuple[Cluster, ColorExporter]) -> ColorExporter:
    return watched[1]


def test_a_target_five_points_worse_is_rolled_back_within_three_windows(
    cluster: Cluster, watched: tuple[Cluster, ColorExporter]
) -> None:
    exporter_of(watched).traffic.error_percent["green"] = 6.0
    result = cluster.cutover(
        *cluster.shift("--steps", "10,100", "--bake", "40s", "--interval", "0.25s")
    )
    assert result.returncode == 1, result.stderr
    assert cluster.weights() == {"blue": 100, "green": 0}
    (doc,) = cluster.deployments()
    assert doc["failure"]["detail"].startswith("analysis: green error rate more than 1 point")
    step = next(e["t"] for e in doc["events"] if e["type"] == "step")
    assert doc["timings"]["detectedAt"] - step <= 4 * PERIOD + 1.5
    judged = [s["analysis"] for s in doc["samples"] if s.get("analysis")]
    # the pooled figures, their first window straddling the change to 6%: more than the
    # point the verdict names above the baseline's 1%
    target, baseline = judged[-1]["target"]["errorRate"], judged[-1]["baseline"]["errorRate"]
    assert target > baseline + 1 and baseline < 2, (target, baseline)


def test_a_healthy_target_passes_every_step(cluster: Cluster) -> None:
    result = cluster.cutover(
        *cluster.shift("--steps", "25,100", "--bake", f"{3 * PERIOD}s", "--interval", "0.25s")
    )
    assert result.returncode == 0, result.stderr
    assert cluster.weights() == {"blue": 0, "green": 100}
    (doc,) = cluster.deployments()
    judged = [s["analysis"] for s in doc["samples"] if s.get("analysis")]
    assert len(judged) >= 4 and "fail" not in {j["state"] for j in judged}
    assert any(j["state"] == "ok" and j["target"]["requests"] >= 50 for j in judged)
    assert "Metric analysis: green against the other color per 3s window" in result.stdout
    # the Gateway failed nothing itself: the downtime guard leaves the shift alone, counting
    downtime = [s["downtime"] for s in doc["samples"] if s.get("downtime")]
    assert len(downtime) >= 4 and {d["state"] for d in downtime} == {"ok"}
    assert downtime[-1]["during"]["failed"] == 0 < downtime[-1]["during"]["requests"]


def test_gateway_errors_rising_during_the_shift_roll_it_back(
    cluster: Cluster, watched: tuple[Cluster, ColorExporter]
) -> None:
    """The Gateway fails 10% of the requests it sends green (an upstream connection failure
    it answers 503 itself): the downtime guard reads its request metrics by response code
    through Prometheus and gives the traffic back."""
    exporter_of(watched).traffic.elb_error_percent["green"] = 10.0
    # the five windows before the shift are its baseline: on a busy machine Prometheus can
    # miss the exporter's scrapes while the cluster resets, and a baseline of a few hundred
    # requests cannot tell a 0.9-point rise (the guard then says ok); wait until they are full
    url = json.loads(cluster.outputs.read_text())["analysis"]["prometheus"]["url"]
    full = 0.8 * exporter_of(watched).traffic.per_second * BASELINE_WINDOWS * PERIOD
    wait_for(lambda: held(url, "gateway_requests_total", BASELINE_WINDOWS * PERIOD) >= full,
             60, "the five windows before the shift to hold the Gateway's requests")  # fmt: skip
    result = cluster.cutover(
        *cluster.shift("--steps", "10,100", "--bake", "40s", "--interval", "0.25s")
    )
    # when the guard let the shift through, its verdicts say why, window by window
    judged = [
        (s["t"], s["downtime"]["state"], s["downtime"]["during"], s["downtime"]["before"])
        for d in cluster.deployments() for s in d["samples"] if s.get("downtime")
    ]  # fmt: skip
    steps = [(e["t"], e["weights"]) for d in cluster.deployments() for e in d["events"]
             if e["type"] == "step"]  # fmt: skip
    assert result.returncode == 1, (result.stdout, result.stderr, steps, judged)
    assert cluster.weights() == {"blue": 100, "green": 0}
    (doc,) = cluster.deployments()
    assert doc["failure"]["detail"].startswith(
        "downtime: failed requests more than 0.1 points above the share before the shift ("
    ), doc["failure"]["detail"]
    assert "requests failed at the Gateway" in doc["failure"]["detail"]
    last = [s["downtime"] for s in doc["samples"] if s.get("downtime")][-1]
    assert last["state"] == "fail" and last["during"]["failed"] > 0 == last["before"]["failed"]
    assert last["during"]["failedSeconds"] >= PERIOD  # whole windows on Prometheus
    report = cluster.cutover(*cluster.args("report", "--output", "json", "--out", str(cluster.tmp)))
    assert report.returncode == 0, report.stderr
    data = json.loads((cluster.tmp / f"deployment-{doc['id']}.json").read_text())
    assert data["failedRequests"] == last["during"]["failed"]


def _outputs_through(cluster: Cluster, url: str) -> Path:
    data = json.loads(cluster.outputs.read_text())
    data["analysis"]["prometheus"]["url"] = url
    outputs = cluster.tmp / "outputs.json"
    outputs.write_text(json.dumps(data))
    return outputs


def test_an_unreachable_prometheus_is_refused_before_traffic_moves(cluster: Cluster) -> None:
    outputs = _outputs_through(cluster, "http://127.0.0.1:9")  # nothing listens there
    gates = ["--gates-config", str(cluster.gates), "--records", str(cluster.records)]
    result = cluster.cutover(
        "shift", "--to", "green", *gates, "--outputs", str(outputs), "--steps", "10,100",
        "--bake", "30s", "--interval", "0.25s",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the metric analysis cannot read its figures: Prometheus http://127.0.0.1:9" in (
        result.stderr
    )
    assert cluster.weights() == {"blue": 100, "green": 0}
    assert cluster.deployments() == []


def test_prometheus_lost_mid_shift_is_inconclusive_and_counted(cluster: Cluster) -> None:
    """Prometheus answered when the shift began, then fails every query (503 through a
    proxy on 127.0.0.1): the windows are inconclusive, not failed, and the inconclusive
    budget gives the traffic back."""
    url = json.loads(cluster.outputs.read_text())["analysis"]["prometheus"]["url"]
    proxy = FaultProxy(url)
    try:
        outputs = _outputs_through(cluster, proxy.endpoint)
        gates = ["--gates-config", str(cluster.gates), "--records", str(cluster.records)]
        process = cluster.spawn(
            "shift", "--to", "green", *gates, "--outputs", str(outputs), "--steps", "10,100",
            "--bake", "60s", "--interval", "0.25s", "--max-inconclusive", "1",
        )  # fmt: skip
        with running(process):
            wait_for(lambda: cluster.weights()["green"] == 10, 60, "the first step", process)
            proxy.inject("", *["5xx"] * 10_000)  # Prometheus's HTTP API names no action
            _, err = process.communicate(timeout=120)
    finally:
        proxy.close()
    assert process.returncode == 1, err
    assert cluster.weights() == {"blue": 100, "green": 0}
    (doc,) = cluster.deployments()
    assert doc["failure"]["reason"] == "guards inconclusive"
    assert f"analysis: Prometheus {proxy.endpoint}" in doc["failure"]["detail"]


def test_exit_gates_on_a_gateway_stack_read_prometheus_and_the_cronjob(cluster: Cluster) -> None:
    shifted = cluster.cutover(*cluster.shift("--steps", "100", "--bake", f"{PERIOD}s"))
    assert shifted.returncode == 0, shifted.stderr
    gates = ["--gates-config", str(cluster.gates), "--records", str(cluster.records)]
    result = cluster.cutover(*cluster.args("exit-gates", *gates))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  monitoring active: Prometheus http://127.0.0.1:" in result.stdout
    assert "watchdog CronJob cutover-watchdog active" in result.stdout
    cluster.kube.api("BatchV1Api").patch_namespaced_cron_job(
        "cutover-watchdog", NS, {"spec": {"suspend": True}}
    )
    suspended = cluster.cutover(*cluster.args("exit-gates", *gates))
    assert suspended.returncode == 1
    assert "FAIL  monitoring active: the watchdog CronJob cutover-watchdog is suspended" in (
        suspended.stdout
    )


def test_a_seeded_batch_of_30_healthy_shifts_has_no_false_rollback(tmp_path: Path) -> None:
    """30 shifts of 10% -> 50% -> 100%, five 60 s windows a step, both colors at 1% errors
    with binomial noise, as counters scraped every 15 s: backfilled into a real Prometheus
    (its own promtool), then judged by the guard over the HTTP API on a clock set back to
    each shift. Every window is judged ok."""
    binary = require_prometheus()
    rng = random.Random(20261127)
    period, slot = 60, 1800  # a shift every 30 minutes: 5 windows before, 15 in it
    base = (int(time.time()) - 26 * 3600) // slot * slot
    steps = [{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}]

    def weights(t: int) -> dict[str, int]:
        step = ((t - base) % slot - 5 * period) // (5 * period)
        return steps[step] if 0 <= step < 3 else {"blue": 100, "green": 0}

    counts = {c: {"requests": 0.0, "errors": 0.0, "latency": 0.0} for c in ("blue", "green")}
    series: dict[str, list[str]] = {}
    traffic = Traffic(per_second=40)  # 1% errors on each color
    for t in range(base, base + 30 * slot + 15, 15):
        for color in ("blue", "green"):
            requests, errors, latency = traffic.served(color, 15, weights(t), rng)
            counts[color]["requests"] += requests
            counts[color]["errors"] += errors
            counts[color]["latency"] += requests * latency
            labels = f'{{namespace="{NS}",service="checkout-{color}"}}'
            for name, key in (("app_requests_total", "requests"), ("app_errors_total", "errors"),
                              ("app_latency_seconds_sum", "latency"),
                              ("app_latency_seconds_count", "requests")):  # fmt: skip
                series.setdefault(name + labels, []).append(f"{counts[color][key]} {t}")
    families = {
        "app_requests": "counter",
        "app_errors": "counter",
        "app_latency_seconds": "summary",
    }
    lines = []
    for family, kind in families.items():
        lines.append(f"# TYPE {family} {kind}")
        lines += [f"{name} {sample}" for name, samples in series.items()
                  if name.startswith(family + "_") for sample in samples]  # fmt: skip
    backfill(binary, "\n".join(lines) + "\n# EOF\n", tmp_path)
    with prometheus_server(binary, None, tmp_path) as url:
        settings = Settings(
            latency_statistic="Average", prometheus={"url": url, "queries": QUERIES}
        )
        source = PrometheusSource(
            settings, NS, {"blue": "checkout-blue", "green": "checkout-green"}
        )
        verdicts = []
        now = [0.0]
        for n in range(30):
            began = float(base + n * slot + 5 * period)
            for i, served in enumerate(steps):
                guard = AnalysisGuard([("checkout", source, settings)], "green",
                                      served["blue"] > 0, began + 5 * period * i, began,
                                      lambda: now[0])  # fmt: skip
                for j in range(1, 6):
                    now[0] = began + 5 * period * i + j * period
                    verdicts.append(guard.check())
    assert len(verdicts) == 30 * 15 and all(v.fresh for v in verdicts)
    assert all(v.figures["target"]["requests"] >= 50 for v in verdicts if v.figures)
    assert [v.detail for v in verdicts if v.state != "ok"] == []
