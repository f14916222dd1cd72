"""How fast the watchdog gives traffic back after the process driving a shift dies.

Against moto's server on 127.0.0.1, with the stack created by the Pulumi program. A drill
(5% to green) runs as on another host (its own hostname, `unshare --uts`) so its lease can only
expire; it is SIGKILLed mid-bake, and `cutover watchdog --once` runs every second, as a
one-minute schedule would but faster. Prints one JSON object:

- watchdog_restore_seconds: holder killed -> the restoring write accepted (median);
- lease_seconds, pass_period_seconds, restore_seconds (one watchdog pass that restores, start
  to exit): the bound is lease + one pass period + one restore;
- within_bound: every trial's figure is within that bound.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollback import Bench  # noqa: E402

from rehearsal.aws import moto_server  # noqa: E402

TRIALS = 5
LEASE = 3
PERIOD = 1.0


def trial(bench: Bench, outputs: dict, journal: list[str]) -> tuple[float, float]:
    """(killed -> restoring write accepted, duration of the pass that restored)."""
    bench.reset(outputs)
    drill = [
        sys.executable, "-m", "cutover", "drill", "--to", "green", "--percent", "5",
        "--bake", "120s", "--interval", "0.2s", "--gates-config", str(bench.gates),
        "--records", str(bench.records_dir), "--outputs", str(bench.outputs_file), *journal,
    ]  # fmt: skip
    process = subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", "hostname elsewhere && exec " + " ".join(drill)],
        env={**bench.env, "CUTOVER_LEASE_SECONDS": str(LEASE)},
        cwd=bench.work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    listener = outputs["listenerArn"]
    while True:
        groups = bench.elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0][
            "DefaultActions"
        ][0]["ForwardConfig"]["TargetGroups"]
        if any(g["Weight"] == 5 for g in groups):
            break
        time.sleep(0.02)
    process.kill()
    process.wait()
    killed = time.time()
    while True:
        started = time.perf_counter()
        result = bench.cli("watchdog", "--once", "--outputs", str(bench.outputs_file), *journal)
        took = time.perf_counter() - started
        if "restored" in result.stdout:
            break
        time.sleep(max(0.0, PERIOD - took))
    table = outputs["journalTable"]
    items = bench.dynamodb.scan(TableName=table)["Items"]
    docs = [json.loads(i["doc"]["S"]) for i in items if "doc" in i]
    latest = max(docs, key=lambda d: d["id"])
    return latest["timings"]["restoreAcceptedAt"] - killed, took


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        bench = Bench(endpoint, Path(tmp))
        outputs = bench.provision()
        bench.records(outputs)
        import boto3

        bench.dynamodb = boto3.client("dynamodb")
        journal = ["--journal", "dynamodb"]
        results = [trial(bench, outputs, journal) for _ in range(TRIALS)]
        restore = [r for r, _ in results]
        passes = [p for _, p in results]
        bound = LEASE + PERIOD + max(passes)
        figures = {
            "watchdog_restore_seconds": round(statistics.median(restore), 3),
            "watchdog_restore_max_seconds": round(max(restore), 3),
            "lease_seconds": LEASE,
            "pass_period_seconds": PERIOD,
            "restore_seconds": round(statistics.median(passes), 3),
            "bound_seconds": round(bound, 3),
            "within_bound": all(r <= bound for r in restore),
            "trials": TRIALS,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    os.environ.setdefault("USER", "bench")
    main()
