"""`cutover kpis` over a long history, beside a bare paginated Query of the same partition.

Against moto's server on 127.0.0.1: DEPLOYMENTS (default 10,000) finished deployments of
production size (a canary 10% -> 50% -> 100% with ten minutes of verification, sampled every
5 s with an analysis verdict a minute), journaled by the DynamoDB journal itself; and, in a
table of its own, OLD_DEPLOYMENTS (default 2,000) of the same as the previous release journaled
them: without the per-deployment summary `kpis` reads. Prints one JSON object, per journal:
`kpis_seconds` and `kpis_peak_mib` (a fresh `cutover kpis --journal dynamodb` process, start to
exit), `bare_query_seconds` and `bare_query_peak_mib` (a fresh Python process paging through
the whole partition with boto3 and keeping nothing), their ratio (targets: time <= 1.5x, memory
<= 100 MiB), and the document's size; for the old journal, also a second `kpis` run (after
the first one read it).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from cutover_gates.contract import Status  # noqa: E402

from cutover.deployment import Deployment, Options, scope_of  # noqa: E402
from cutover.journal.dynamodb import DynamoJournal  # noqa: E402
from cutover.timeline import EventType, Sample  # noqa: E402
from rehearsal.aws import aws_env, moto_server  # noqa: E402

DEPLOYMENTS = int(os.environ.get("DEPLOYMENTS", "10000"))
OLD_DEPLOYMENTS = int(os.environ.get("OLD_DEPLOYMENTS", "2000"))
LISTENER = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/checkout/1/2"
TABLE = "checkout-journal"
OLD_TABLE = "checkout-journal-before-summaries"
T0 = 1_700_000_000.0


def production_deployment(index: int) -> Deployment:
    started = T0 + 3600 * index
    d = Deployment(
        id=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + f"-{index:06x}",
        scope=scope_of([LISTENER]),
        listeners=[LISTENER],
        services=["prod/checkout"],
        options=Options(target="green", steps=[10, 50, 100], bake=300.0),
        snapshot={LISTENER: {"weights": {"blue": 100, "green": 0}}},
        plan=[{"blue": 90, "green": 10}, {"blue": 50, "green": 50}, {"blue": 0, "green": 100}],
        started_at=started,
        generation=1,
    )
    rng = random.Random(index)
    t = started
    for step, weights in enumerate(d.plan):
        d.event(EventType.STEP, t, index=step, weights=weights)
        seconds = 300 if step < 2 else 300 + 600  # the last step's bake and its verification
        for i in range(seconds // 5):
            analysis = None
            if i % 12 == 0:
                analysis = {"state": "ok", "target": {"requests": rng.randrange(900, 1100),
                            "errorRate": 0.01, "latency": 0.12}, "looks": i // 12}  # fmt: skip
            guards = {"alarms": "ok", "targets": "ok", "analysis": "ok"}
            d.add_sample(Sample(t, weights, True, guards, analysis), sparse=False)
            t += 5
    d.status = Status.SUCCEEDED
    d.finished_at = t
    return d


def fill(endpoint: str, table: str, deployments: int, summaries: bool) -> int:
    """`deployments` items as the journal writes them (`summaries` False: as the previous
    release wrote them, without one); the document's size in bytes."""
    db = boto3.client("dynamodb", endpoint_url=endpoint)
    db.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
    )  # fmt: skip
    first = production_deployment(0)
    DynamoJournal(table).save(first)
    key = {"pk": {"S": f"deploy#{first.scope}"}, "sk": {"S": first.id}}
    template = db.get_item(TableName=table, Key=key)["Item"]
    size = len(json.dumps(first.to_json(), separators=(",", ":")))
    if not summaries:
        del template["summary"]
        db.put_item(TableName=table, Item=template)
    batch: list[dict[str, Any]] = []
    for index in range(1, deployments):
        started = T0 + 3600 * index
        sk = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + f"-{index:06x}"
        item = {**template, "sk": {"S": sk}}
        if summaries:
            summary = json.loads(template["summary"]["S"])
            summary.update(deployment=sk, startedAt=started)
            item["summary"] = {"S": json.dumps(summary)}
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25 or index == deployments - 1:
            db.batch_write_item(RequestItems={table: batch})
            batch = []
    return size


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds and peak MiB of a fresh process running `command`; its output."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.monotonic()\n"
        "out = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "elapsed = time.monotonic() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([elapsed, peak, out.returncode, out.stdout, out.stderr[-400:]]))\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *command], env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    elapsed, peak, code, out, err = json.loads(done.stdout)
    if code != 0:
        raise SystemExit(f"{command[:3]} exited {code}: {err}")
    return elapsed, peak, out


BARE_QUERY = """
import boto3, sys
pages = boto3.client("dynamodb").get_paginator("query").paginate(
    TableName=sys.argv[1], KeyConditionExpression="pk = :pk",
    ExpressionAttributeValues={":pk": {"S": sys.argv[2]}})
print(sum(len(p["Items"]) for p in pages))
"""


def outputs_file(folder: Path, table: str) -> Path:
    """The stack outputs `cutover kpis --outputs` reads, naming `table` as the journal."""
    path = folder / f"{table}-outputs.json"
    service = {"platform": "ecs", "cluster": "c", "service": "checkout-blue", "capacity": 6}
    path.write_text(json.dumps({
        "stack": "prod", "listenerArn": LISTENER, "journalTable": table, "topicArn": "arn:t",
        "loadBalancerDnsName": "alb.example", "testUrl": "https://alb.example:8443",
        "targetGroupArns": {"blue": "arn:b", "green": "arn:g"},
        "alarmNames": {"blue": [], "green": []}, "releases": {c: {"version": "1.0.0", "digest": ""} for c in ("blue", "green")},
        "services": {"blue": service, "green": {**service, "service": "checkout-green"}},
    }))  # fmt: skip
    return path


def compared(folder: Path, table: str, env: dict[str, str], trials: int) -> dict[str, Any]:
    """`cutover kpis` over `table` beside a bare Query of it: the fastest of `trials`."""
    kpis = [sys.executable, "-m", "cutover", "kpis", "--outputs", str(outputs_file(folder, table)),
            "--journal", "dynamodb", "--since", "36500d", "--output", "json"]  # fmt: skip
    bare = [sys.executable, "-c", BARE_QUERY, table, f"deploy#{scope_of([LISTENER])}"]
    runs = [(measured(kpis, env), measured(bare, env)) for _ in range(trials)]
    (k_s, k_mib, out), (b_s, b_mib, counted) = min(runs, key=lambda t: t[0][0])
    return {
        "kpis_seconds": round(k_s, 2),
        "kpis_peak_mib": round(k_mib, 1),
        "bare_query_seconds": round(b_s, 2),
        "bare_query_peak_mib": round(b_mib, 1),
        "time_ratio": round(k_s / b_s, 2),
        "kpis_counted": json.loads(out)["deployments"],
        "bare_counted": int(counted.strip() or 0),
    }


def main() -> None:
    with moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, **aws_env(endpoint)}
        os.environ.update(aws_env(endpoint))
        size = fill(endpoint, TABLE, DEPLOYMENTS, summaries=True)
        fill(endpoint, OLD_TABLE, OLD_DEPLOYMENTS, summaries=False)
        # the old journal first: its first read is the one that finds no summaries
        old = compared(Path(tmp), OLD_TABLE, env, trials=1)
        old_again = compared(Path(tmp), OLD_TABLE, env, trials=1)
        current = compared(Path(tmp), TABLE, env, trials=3)
    print(json.dumps({
        "deployments": DEPLOYMENTS,
        "document_kib": round(size / 1024, 1),
        **current,
        "time_target": 1.5,
        "memory_target_mib": 100,
        "old_journal": {
            "deployments": OLD_DEPLOYMENTS,
            "first_read": old,
            "second_read": old_again,
        },
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
