"""How fast the watchdog gives traffic back, and how a pass grows with what it restores.

Against moto's server on 127.0.0.1, with the stack created by the Pulumi program. Prints one
JSON object:

- watchdog_restore_seconds: a drill (5% to green) whose process is stopped (SIGSTOP: alive,
  renewing nothing, as on a lost runner) mid-bake -> the watchdog's restoring write accepted,
  with `cutover watchdog --once` run every PERIOD; the bound is lease + one pass period + one
  restoring pass (its re-verify wait included), and `within_bound` says every trial kept it;
- fence_ratio: a fenced step write (the lease check, ModifyListener, the confirmation that it
  was accepted inside the lease) over a bare ModifyListener (target <= 1.5);
- passes: for 1, 10, 30 and 100 dead deployments on as many listeners, one in-process pass:
  seconds until the last listener's restoring write was accepted, the whole pass (with its one
  re-verify wait), and two floors of as many bare ModifyListener calls: from a thread pool in
  this process (what the API itself costs: a restore is five calls, so about 5x at best) and
  from a process pool (fresh processes, as the issue measured its floor); `last_ratio` and
  `last_ratio_process_pool` are the first over each (target <= 1.5 at 30, linear growth).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollback import Bench, _forward  # noqa: E402

from rehearsal.aws import moto_server  # noqa: E402

TRIALS = 5
PERIOD = 1.0
# Calls bounded so that a short lease covers one write: 2 attempts of 1 + 1 s and 1 s backoff.
BOUNDS = {"AWS_MAX_ATTEMPTS": "2", "CUTOVER_AWS_CONNECT_TIMEOUT": "1",
          "CUTOVER_AWS_READ_TIMEOUT": "1", "CUTOVER_LEASE_SECONDS": "8"}  # fmt: skip
LEASE = float(BOUNDS["CUTOVER_LEASE_SECONDS"])
SIZES = (1, 10, 30, 100)


def journal_docs(bench: Bench, table: str) -> list[dict[str, Any]]:
    import zlib

    items = bench.dynamodb.scan(TableName=table)["Items"]
    return [json.loads(zlib.decompress(i["docz"]["B"])) for i in items if "docz" in i]


def trial(bench: Bench, outputs: dict, journal: list[str]) -> tuple[float, float]:
    """(stopped -> restoring write accepted, duration of the pass that restored)."""
    bench.reset(outputs)
    drill = [
        sys.executable, "-m", "cutover", "drill", "--to", "green", "--percent", "5",
        "--bake", "120s", "--interval", "0.2s", "--gates-config", str(bench.gates),
        "--records", str(bench.records_dir), "--outputs", str(bench.outputs_file), *journal,
    ]  # fmt: skip
    process = subprocess.Popen(drill, env={**bench.env, **BOUNDS}, cwd=bench.work,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    listener = outputs["listenerArn"]
    while True:
        groups = bench.elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0][
            "DefaultActions"
        ][0]["ForwardConfig"]["TargetGroups"]
        if any(g["Weight"] == 5 for g in groups):
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGSTOP)
    stopped = time.time()
    try:
        while True:
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "cutover", "watchdog", "--once", "--outputs",
                 str(bench.outputs_file), *journal],
                capture_output=True, text=True, env={**bench.env, **BOUNDS}, cwd=bench.work,
            )  # fmt: skip
            took = time.perf_counter() - started
            if "restored" in result.stdout:
                break
            time.sleep(max(0.0, PERIOD - took))
    finally:
        process.kill()
        os.kill(process.pid, signal.SIGCONT)
        process.wait()
    latest = max(journal_docs(bench, outputs["journalTable"]), key=lambda d: d["id"])
    return latest["timings"]["restoreAcceptedAt"] - stopped, took


def fence_ratio(bench: Bench, outputs: dict) -> dict[str, float]:
    """A fenced step write against a bare one, interleaved, medians of 41."""
    os.environ.update(BOUNDS)
    from cutover.aws import client
    from cutover.journal.dynamodb import DynamoJournal
    from cutover.journal.lease import Lease
    from cutover.outputs import parse_outputs
    from cutover.routers.alb import AlbRouter

    data = parse_outputs(outputs, "bench")
    router = AlbRouter(data.listener_arn, data.target_group_arns, "bench", client("elbv2"))
    journal = DynamoJournal(outputs["journalTable"])
    lease = Lease(journal, [data.listener_arn], write_seconds=router.longest_write)
    lease.acquire("20300101T000000Z-fence0")
    fenced, bare = [], []
    try:
        for i in range(41):
            weights = {"blue": 100 - i % 2, "green": i % 2}
            start = time.perf_counter()
            lease.before_write()
            router.set(weights, lease.before_write)
            assert lease.landed_in_time(time.time())
            fenced.append(time.perf_counter() - start)
            start = time.perf_counter()
            bench.elbv2.modify_listener(ListenerArn=data.listener_arn,
                                        DefaultActions=[_forward(outputs["targetGroupArns"], 100, 0)])  # fmt: skip
            bare.append(time.perf_counter() - start)
    finally:
        lease.release()
    f, b = statistics.median(fenced), statistics.median(bare)
    return {"fence_ratio": round(f / b, 3), "fenced_write_ms": round(f * 1000, 2),
            "bare_write_ms": round(b * 1000, 2)}  # fmt: skip


class NoRenewals:
    """A clock whose leases are never renewed: a shift that stopped renewing."""

    def __init__(self) -> None:
        from cutover.clock import Clock

        self.clock = Clock()
        self.clock.every = lambda seconds, tick: lambda: None  # type: ignore[method-assign]


def dead_deployments(bench: Bench, outputs: dict, count: int) -> list[Any]:
    """`count` listeners on the stack's load balancer, each with a shift stopped at its first
    step (10% green); their services."""
    from cutover.clock import Clock
    from cutover.deployment import Options
    from cutover.engine.shift import Shift
    from cutover.journal.dynamodb import DynamoJournal
    from cutover.journal.lease import Lease
    from cutover.notifier import Notifier
    from cutover.outputs import parse_outputs
    from cutover.service import services_of

    lb = outputs["listenerArn"].replace(":listener/", ":loadbalancer/").rsplit("/", 1)[0]
    arns = outputs["targetGroupArns"]
    found = []
    journal = DynamoJournal(outputs["journalTable"])
    for i in range(count):
        listener = bench.elbv2.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=20000 + len(bench.listeners),
            DefaultActions=[_forward(arns, 100, 0)],
        )["Listeners"][0]["ListenerArn"]  # fmt: skip
        bench.listeners.append(listener)
        (service,) = services_of([parse_outputs({**outputs, "listenerArn": listener}, "bench")])
        clock = NoRenewals().clock
        lease = Lease(
            journal, [service.key], write_seconds=service.router.longest_write, clock=clock
        )
        shift = Shift([service], journal, Notifier([], lambda _: None), lambda _: None, Clock(),
                      lease=lease)  # fmt: skip
        shift.start(Options(target="green", steps=[10, 100], bake=600, interval=5))
        shift.lease.before_write()
        shift.write_step({"blue": 90, "green": 10})
        found.append(service)
        del i
    return found


def one_pass(bench: Bench, outputs: dict, count: int) -> dict[str, float]:
    from cutover.engine.watchdog import notifier_for_services, watch_once
    from cutover.journal.dynamodb import DynamoJournal

    services = dead_deployments(bench, outputs, count)
    time.sleep(LEASE + 0.5)  # their leases run out (nobody renews them)
    journal = DynamoJournal(outputs["journalTable"])
    started = time.time()
    findings = watch_once(services, journal, notifier_for_services(lambda _: None), lambda _: None)
    whole = time.time() - started
    restored = [f for f in findings if f.action == "restored"]
    assert len(restored) == count, [f.line() for f in findings if f.action != "restored"]
    mine = {s.key for s in services}
    docs = [d for d in journal_docs(bench, outputs["journalTable"]) if d["listeners"][0] in mine]
    last = max(d["timings"]["restoreAcceptedAt"] for d in docs) - started
    arns = outputs["targetGroupArns"]
    with ThreadPoolExecutor(max_workers=min(64, count)) as pool:
        start = time.perf_counter()
        list(pool.map(lambda s: bench.elbv2.modify_listener(
            ListenerArn=s.key, DefaultActions=[_forward(arns, 100, 0)]), services))  # fmt: skip
        bare = time.perf_counter() - start
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    with ProcessPoolExecutor() as processes:
        list(processes.map(bare_write, [(s.key, arns) for s in services]))
    forked = time.perf_counter() - start
    return {"deployments": count, "last_restore_seconds": round(last, 3),
            "pass_seconds": round(whole, 3), "bare_writes_seconds": round(bare, 3),
            "bare_writes_process_pool_seconds": round(forked, 3),
            "last_ratio": round(last / bare, 2),
            "last_ratio_process_pool": round(last / forked, 2)}  # fmt: skip


def bare_write(entry: tuple[str, dict[str, str]]) -> None:
    """One bare ModifyListener from a worker process (its own boto3 client)."""
    import boto3

    listener, arns = entry
    boto3.client("elbv2").modify_listener(
        ListenerArn=listener, DefaultActions=[_forward(arns, 100, 0)]
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        bench = Bench(endpoint, Path(tmp))
        outputs = bench.provision()
        bench.records(outputs)
        import boto3

        bench.dynamodb = boto3.client("dynamodb")
        bench.listeners = []
        journal = ["--journal", "dynamodb"]
        results = [trial(bench, outputs, journal) for _ in range(TRIALS)]
        restore = [r for r, _ in results]
        passes = [p for _, p in results]
        bound = LEASE + PERIOD + max(passes)
        figures: dict[str, Any] = {
            "watchdog_restore_seconds": round(statistics.median(restore), 3),
            "watchdog_restore_max_seconds": round(max(restore), 3),
            "lease_seconds": LEASE,
            "pass_period_seconds": PERIOD,
            "restore_pass_seconds": round(statistics.median(passes), 3),
            "bound_seconds": round(bound, 3),
            "within_bound": all(r <= bound for r in restore),
            "trials": TRIALS,
        }
        bench.reset(outputs)
        figures |= fence_ratio(bench, outputs)
        figures["passes"] = [one_pass(bench, outputs, n) for n in SIZES]
        print(json.dumps(figures))


if __name__ == "__main__":
    os.environ.setdefault("USER", "bench")
    main()
