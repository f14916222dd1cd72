"""Requests dropped by a flip, counted through a real data plane.

The real cluster of the e2e layer (etcd, kube-apiserver, the Gateway API CRDs, Traefik's
Gateway provider, one backend process per color in a network namespace; `make cluster-tools`
builds them), the production Gateway stack the program declares on it, a real Prometheus
(Debian's) scraping Traefik's own metrics, and wrk (Debian's) driving paced keep-alive
clients through the Gateway while the real `cutover` CLI moves traffic. Phases, each one wrk
run that starts before its action and runs on after it:

1. `steady`: blue serves everything; nothing moves (the latency baseline).
2. `shift`: `cutover shift --to green` 0 -> 100 in steps with bakes, the metric analysis on.
3. `shiftBack`: the same back to blue (so that the next phase has blue serving).
4. `rollback`: a shift to green whose backend answers a share of its requests with an
   application 500 carrying a marker body; the analysis (Traefik's per-service series in
   Prometheus) fails it and gives traffic back.
5. `killed`: a shift to green SIGKILLed mid-step (at 50/50); `cutover watchdog --once`, run
   as the CronJob's pod would run it (another host: a UTS namespace of its own, so only the
   lease's expiry lets it take over) on a schedule, gives the traffic back.

Prints one JSON object: total, failed (a request the flip dropped: a socket error, a timeout,
or a 5xx/4xx the gateway produced; never an injected 500, counted apart), failed and p99
latency per phase against the steady state's, and each phase's figures. `--quick` runs the
smaller version tests/e2e runs (steady, a shift and a rollback; >= 20,000 requests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.real_cluster import real_cluster, wait_until  # noqa: E402
from tests.harness.zero_downtime import (  # noqa: E402
    TRAEFIK_QUERIES,
    Load,
    LoadSettings,
    Stack,
    deploy_stack,
    prometheus_on_traefik,
    set_error_share,
    set_latency,
    wait_requests,
)

BLUE, GREEN = {"blue": 100, "green": 0}, {"blue": 0, "green": 100}
INJECTED_SHARE = 0.1  # of the erring release's requests


@dataclass(frozen=True)
class Profile:
    steady: int  # requests of the steady phase
    lead: int  # requests each other phase sends before its action
    tail: int  # requests after its action is served
    steps: str
    bake: str
    period: int  # seconds a window of the analysis
    phases: tuple[str, ...]


PROFILES = {
    "full": Profile(
        steady=120_000, lead=8_000, tail=5_000, steps="10,50,100", bake="30s", period=5,
        phases=("steady", "shift", "shiftBack", "rollback", "killed"),
    ),
    "quick": Profile(
        steady=3_000, lead=4_000, tail=2_000, steps="50,100", bake="6s", period=2,
        phases=("steady", "rollback", "shift"),
    ),
}  # fmt: skip


def say(message: str) -> None:
    print(f"[zero-downtime {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def analysis(profile: Profile, url: str) -> dict[str, Any]:
    """The stack's cutover:analysis: Traefik's per-service series, short windows judged one
    second after they end (Prometheus scrapes every 250 ms), no verification bake at 100%."""
    return {
        "periodSeconds": profile.period,
        "delaySeconds": 1,
        "verifyMinutes": 0,
        "prometheus": {"url": url, "queries": TRAEFIK_QUERIES},
    }


class Bench:
    def __init__(self, stack: Stack, profile: Profile, load: LoadSettings, logs: Path) -> None:
        self.stack, self.profile, self.load, self.logs = stack, profile, load, logs
        self.cluster = stack.cluster
        self.rate_limit = 600.0  # seconds any single wait may take on a loaded machine

    def phase(self, name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """One wrk run: `lead` requests, the action (returning once its effect is what
        Traefik serves), `tail` requests; then wrk's figures and the action's."""
        profile = self.profile
        say(f"{name}: starting the load")
        with Load(self.cluster, self.load, self.logs / f"wrk-{name}.log") as load:
            lead = profile.steady if name == "steady" else profile.lead
            wait_requests(self.cluster, lead, f"{name}: before", self.rate_limit)
            started = time.monotonic()
            detail = action()
            detail["actionSeconds"] = round(time.monotonic() - started, 1)
            if name != "steady":
                wait_requests(self.cluster, profile.tail, f"{name}: after", self.rate_limit)
        figures = {**load.result(), **detail}
        say(f"{name}: {figures['requests']} requests, {figures['failed']} failed")
        return figures

    def shift(self, to: str, *extra: str) -> subprocess.CompletedProcess[str]:
        p = self.profile
        args = self.stack.shift_args(to, "--steps", p.steps, "--bake", p.bake, "--interval", "1s")
        result = self.stack.cutover(*args, *extra, "--output", "json")
        (self.logs / f"shift-{len(self.stack.deployments())}.log").write_text(
            result.stdout + result.stderr
        )
        return result

    def latest(self) -> dict[str, Any]:
        return self.stack.deployments()[-1]

    def approved(self, to: str) -> None:
        """A release whose latest shift on this stack was rolled back moves again only with an
        approval issued since (every door's gate): the chairman signs it again."""
        towards = [d for d in self.stack.deployments() if d["options"]["target"] == to]
        if towards and towards[-1]["status"] == "rolled-back":
            self.stack.approve_again(to)

    def succeeded(self, to: str) -> dict[str, Any]:
        self.approved(to)
        result = self.shift(to)
        if result.returncode != 0:
            raise RuntimeError(f"shift to {to} exited {result.returncode}:\n{result.stderr}")
        self.stack.wait_served(GREEN if to == "green" else BLUE)
        doc = self.latest()
        steps = [e["weights"][to] for e in doc["events"] if e["type"] == "step"]
        return {"status": doc["status"], "steps": steps}

    def rolled_back(self) -> dict[str, Any]:
        self.approved("green")
        set_error_share(self.cluster, "green", INJECTED_SHARE)
        try:
            result = self.shift("green")
        finally:
            set_error_share(self.cluster, "green", 0.0)
        doc = self.latest()
        failure = (doc.get("failure") or {}).get("detail", "")
        if result.returncode != 1 or not failure.startswith("analysis:"):
            raise RuntimeError(
                f"expected the analysis to roll the shift back; exit {result.returncode}, "
                f"status {doc['status']}: {failure}\n{result.stderr}"
            )
        self.stack.wait_served(BLUE)
        first_step = next(e["t"] for e in doc["events"] if e["type"] == "step")
        return {
            "status": doc["status"],
            "reason": failure,
            "detectedAfterFirstStepSeconds": round(doc["timings"]["detectedAt"] - first_step, 1),
            "injectedShare": INJECTED_SHARE,
        }

    def killed(self) -> dict[str, Any]:
        stack, p = self.stack, self.profile
        self.approved("green")
        args = stack.shift_args("green", "--steps", p.steps, "--bake", p.bake, "--interval", "1s")
        process = stack.spawn(*args)
        try:
            stack.wait_served({"blue": 50, "green": 50}, self.rate_limit)
        finally:
            process.kill()  # SIGKILL: nothing of the shift runs any more
            out, err = process.communicate()
        killed_at = time.monotonic()
        (self.logs / "killed-shift.log").write_text(out + err)
        passes: list[str] = []

        def restored() -> bool:
            """One pass of the CronJob, every 2 s (its schedule here), until the journal says
            the shift was given back."""
            if passes and time.monotonic() < killed_at + 2 * len(passes):
                return False
            result = stack.watchdog_pass()
            passes.append(result.stdout + result.stderr)
            return self.latest()["status"] == "rolled-back"

        wait_until(restored, "the watchdog restoring the killed shift", self.rate_limit)
        stack.wait_served(BLUE)
        (self.logs / "watchdog.log").write_text("\n---\n".join(passes))
        doc = self.latest()
        return {
            "status": doc["status"],
            "reason": (doc.get("failure") or {}).get("detail", ""),
            "watchdogPasses": len(passes),
            "killToServedSeconds": round(time.monotonic() - killed_at, 1),
            "leaseSeconds": float(stack.env["CUTOVER_LEASE_SECONDS"]),
        }

    def run(self) -> dict[str, dict[str, Any]]:
        actions: dict[str, Callable[[], dict[str, Any]]] = {
            "steady": dict,
            "shift": lambda: self.succeeded("green"),
            "shiftBack": lambda: self.succeeded("blue"),
            "rollback": self.rolled_back,
            "killed": self.killed,
        }
        phases = {}
        for name in self.profile.phases:
            if name == "rollback" and self.stack.served() != BLUE:
                phases["shiftBack"] = self.phase("shiftBack", actions["shiftBack"])
            phases[name] = self.phase(name, actions[name])
        return phases


def version(*command: str) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0]


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {"cpus": os.cpu_count(), "cpu": model, "loadAverageAtStart": os.getloadavg()[0]}


def summary(phases: dict[str, dict[str, Any]], conditions: dict[str, Any]) -> dict[str, Any]:
    steady = phases["steady"]["latencyMs"]["p99"]
    return {
        "total": sum(p["requests"] for p in phases.values()),
        "failed": sum(p["failed"] for p in phases.values()),
        "injected": sum(p["injected"] for p in phases.values()),
        "failedByPhase": {n: p["failed"] for n, p in phases.items()},
        "p99MsByPhase": {n: p["latencyMs"]["p99"] for n, p in phases.items()},
        "p99OverSteady": {
            n: round(p["latencyMs"]["p99"] / steady, 2) if steady else None
            for n, p in phases.items()
        },
        "conditions": conditions,
        "phases": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the e2e test's smaller version")
    parser.add_argument("--tmp", type=Path, help="where logs go (default: a new temp folder)")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--pause-ms", type=int, default=8, help="each connection's wait")
    parser.add_argument(
        "--service-ms", type=float, default=10, help="how long each backend holds an answer"
    )
    args = parser.parse_args()
    profile = PROFILES["quick" if args.quick else "full"]
    load = LoadSettings(connections=args.connections, pause_ms=args.pause_ms)
    tmp = args.tmp or Path(tempfile.mkdtemp(prefix="zero-downtime-"))
    (tmp / "cluster").mkdir(parents=True, exist_ok=True)
    say(f"logs in {tmp}")
    conditions = {
        "machine": machine(),
        "profile": "quick" if args.quick else "full",
        "connections": load.connections,
        "wrkThreads": load.threads,
        "pauseMsPerRequest": load.pause_ms,
        "timeout": load.timeout,
        "serviceMs": args.service_ms,
        "steps": profile.steps,
        "bake": profile.bake,
        "analysisPeriodSeconds": profile.period,
        "wrk": version("wrk", "--version"),
        "prometheus": version("prometheus", "--version"),
    }
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(real_cluster(tmp / "cluster", metrics=True))
        url = stack.enter_context(prometheus_on_traefik(cluster, tmp / "prometheus"))
        deployed = deploy_stack(cluster, analysis(profile, url), tmp)
        set_latency(cluster, args.service_ms / 1000)
        conditions["traefik"] = cluster.tools["traefik"].version
        conditions["kubeApiserver"] = cluster.tools["kube-apiserver"].version
        phases = Bench(deployed, profile, load, tmp).run()
    conditions["wallSeconds"] = round(time.monotonic() - started)
    print(json.dumps(summary(phases, conditions), indent=1))


if __name__ == "__main__":
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on PATH (apt-get install wrk)")
    main()
