"""Rollback speed of the helper, each figure beside its floor measured in the same run.

Against one moto server on 127.0.0.1, with the stack created by the Pulumi program
(rehearsal.aws). Medians over repeated trials. Prints one JSON object:

- restore_ratio: guard failure observed -> restoring write accepted, over one bare
  modify_listener round trip (target <= 1.5);
- restore_verify_ratio: -> restored weights read back as served, over one bare
  modify_listener plus one describe_listeners (target <= 1.5);
- detection_ratio: alarm entering ALARM -> rollback starting, over the polling interval
  (target <= 1.2);
- many_services_ratio: 50 listeners restored at once, over 50 bare modify_listener calls from a
  plain thread pool (target <= 1.5);
- startup_ratio: a fresh `cutover rollback` process, start to exit, over a fresh Python
  process doing one bare boto3 modify_listener, start to exit;
- rollback_process_ratio: what matters in an incident: a fresh `cutover rollback` process from
  its start to its restoring write accepted, over a fresh Python process from its start to one
  bare boto3 modify_listener answered (target <= 1.5);
- peak_rss_mib: peak memory of a `cutover shift` process, beside a bare boto3 process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rehearsal.aws import aws_env, moto_server, sign_gates  # noqa: E402

TRIALS = 7
INTERVAL = 0.5
MANY = 50


def median(values: list[float]) -> float:
    return statistics.median(values)


class Bench:
    def __init__(self, endpoint: str, work: Path) -> None:
        self.endpoint = endpoint
        self.work = work
        self.env = {**os.environ, **aws_env(endpoint)}
        os.environ.update(aws_env(endpoint))
        self.config = Config(max_pool_connections=MANY, retries={"mode": "standard"})
        self.elbv2 = boto3.client("elbv2", config=self.config)
        self.cloudwatch = boto3.client("cloudwatch")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cutover", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.work,
        )
        if check and result.returncode not in (0, 1):
            raise RuntimeError(result.stderr)
        return result

    def provision(self) -> dict[str, Any]:
        out = self.work / "outputs.json"
        subprocess.run(
            [sys.executable, "-m", "rehearsal.aws", "--stack", "prod", "--out", str(out)],
            check=True,
            cwd=ROOT,
            env=self.env,
        )
        self.outputs_file = out
        return dict(json.loads(out.read_text()))

    def records(self, outputs: dict[str, Any]) -> None:
        signed = sign_gates(self.work, self.cli, ("green",))
        self.gates, self.records_dir = signed.config, signed.records
        self.env["CUTOVER_DEPLOY_KEY"] = (signed.keys / "deploy.key").read_text()

    def reset(self, outputs: dict[str, Any]) -> None:
        arns = outputs["targetGroupArns"]
        self.elbv2.modify_listener(
            ListenerArn=outputs["listenerArn"], DefaultActions=[_forward(arns, 100, 0)]
        )
        for name in outputs["alarmNames"]["green"]:
            self.cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="bench")

    def drill_shift(
        self, outputs_files: list[Path], journal: Path, alarm: str, outputs: dict[str, Any]
    ) -> dict[str, Any]:
        """A drill (5% to green) during which the benchmark raises an alarm; returns the deployment."""
        args = [
            "drill",
            "--to",
            "green",
            "--percent",
            "5",
            "--bake",
            "20s",
            "--interval",
            f"{INTERVAL}s",
            "--gates-config",
            str(self.gates),
            "--records",
            str(self.records_dir),
            "--journal",
            f"file:{journal}",
        ]
        for f in outputs_files:
            args += ["--outputs", str(f)]
        process = subprocess.Popen(
            [sys.executable, "-m", "cutover", *args],
            env=self.env,
            cwd=self.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while True:
            groups = self.elbv2.describe_listeners(ListenerArns=[outputs["listenerArn"]])[
                "Listeners"
            ][0]["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
            if any(g["Weight"] == 5 for g in groups):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"drill did not reach its step: {process.communicate()}")
            time.sleep(0.02)
        time.sleep(INTERVAL * 0.37)  # land at an arbitrary phase of the polling interval
        raised = time.time()
        self.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="bench")
        process.communicate(timeout=120)
        doc = max(json.loads(journal.read_text())["deployments"].values(), key=lambda d: d["id"])
        doc["raisedAt"] = raised
        return dict(doc)


def peak_rss(command: list[str], env: dict[str, str]) -> int:
    """Peak RSS (KiB) of one command, measured by a fresh parent that runs only it."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, env=env
    )
    return int(out.stdout.strip().splitlines()[-1])


def _forward(arns: dict[str, str], blue: int, green: int) -> dict[str, Any]:
    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": arns["blue"], "Weight": blue},
                {"TargetGroupArn": arns["green"], "Weight": green},
            ],
            "TargetGroupStickinessConfig": {"Enabled": False},
        },
    }


def many_listeners(bench: Bench, outputs: dict[str, Any]) -> list[Path]:
    """MANY more listeners (own load balancer and target groups each), as outputs files."""
    elbv2, ec2 = bench.elbv2, boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    files = []
    for i in range(MANY):
        lb = elbv2.create_load_balancer(Name=f"svc{i}", Subnets=subnets)["LoadBalancers"][0][
            "LoadBalancerArn"
        ]
        arns = {
            c: elbv2.create_target_group(
                Name=f"svc{i}-{c}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip"
            )["TargetGroups"][0]["TargetGroupArn"]
            for c in ("blue", "green")
        }
        for n, arn in enumerate(arns.values()):
            elbv2.register_targets(
                TargetGroupArn=arn,
                Targets=[{"Id": f"10.1.{n}.{k + 10}", "Port": 8080} for k in range(6)],
            )
        listener = elbv2.create_listener(
            LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[_forward(arns, 100, 0)]
        )["Listeners"][0]["ListenerArn"]
        data = {
            **outputs,
            "listenerArn": listener,
            "targetGroupArns": arns,
            "services": {
                c: {**outputs["services"][c], "service": f"svc{i}-{c}"} for c in ("blue", "green")
            },
        }
        path = bench.work / f"svc{i}.json"
        path.write_text(json.dumps(data))
        files.append(path)
    return files


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
        bench = Bench(endpoint, Path(tmp))
        outputs = bench.provision()
        bench.records(outputs)
        listener = outputs["listenerArn"]
        arns = outputs["targetGroupArns"]
        alarm = outputs["alarmNames"]["green"][0]

        # floors: bare calls on a warm client
        modify, modify_describe = [], []
        for _ in range(20):
            start = time.perf_counter()
            bench.elbv2.modify_listener(
                ListenerArn=listener, DefaultActions=[_forward(arns, 100, 0)]
            )
            middle = time.perf_counter()
            bench.elbv2.describe_listeners(ListenerArns=[listener])
            end = time.perf_counter()
            modify.append(middle - start)
            modify_describe.append(end - start)

        restore, verify, detection = [], [], []
        for i in range(TRIALS):
            bench.reset(outputs)
            doc = bench.drill_shift([bench.outputs_file], Path(tmp) / f"j{i}.json", alarm, outputs)
            t = doc["timings"]
            restore.append(t["restoreAcceptedAt"] - t["detectedAt"])
            verify.append(t["restoredAt"] - t["detectedAt"])
            detection.append(t["restoreStartedAt"] - doc["raisedAt"])

        # many services
        files = many_listeners(bench, outputs)
        many, many_floor = [], []
        for i in range(3):
            for f in files:
                data = json.loads(f.read_text())
                bench.elbv2.modify_listener(
                    ListenerArn=data["listenerArn"],
                    DefaultActions=[_forward(data["targetGroupArns"], 100, 0)],
                )
            bench.reset(outputs)
            doc = bench.drill_shift(
                [bench.outputs_file, *files], Path(tmp) / f"m{i}.json", alarm, outputs
            )
            many.append(doc["timings"]["restoreAcceptedAt"] - doc["timings"]["detectedAt"])
            datas = [json.loads(f.read_text()) for f in [bench.outputs_file, *files]]
            with ThreadPoolExecutor(max_workers=len(datas)) as pool:
                start = time.perf_counter()
                list(
                    pool.map(
                        lambda d: bench.elbv2.modify_listener(
                            ListenerArn=d["listenerArn"],
                            DefaultActions=[_forward(d["targetGroupArns"], 100, 0)],
                        ),
                        datas,
                    )
                )
                many_floor.append(time.perf_counter() - start)

        # start-up: a fresh `cutover rollback` of an interrupted deployment vs bare boto3
        bare = (
            "import boto3, json, sys; d = json.load(open(sys.argv[1])); "
            "boto3.client('elbv2').modify_listener(ListenerArn=d['listenerArn'], DefaultActions=["
            "{'Type': 'forward', 'ForwardConfig': {'TargetGroups': ["
            "{'TargetGroupArn': d['targetGroupArns']['blue'], 'Weight': 100}, "
            "{'TargetGroupArn': d['targetGroupArns']['green'], 'Weight': 0}]}}]); "
            "print(__import__('time').time())"
        )
        startup, startup_floor, to_write, to_write_floor = [], [], [], []
        for i in range(TRIALS):
            journal = Path(tmp) / f"s{i}.json"
            bench.reset(outputs)
            bench.drill_shift([bench.outputs_file], journal, alarm, outputs)
            started, start = time.time(), time.perf_counter()
            bench.cli(
                "rollback", "--outputs", str(bench.outputs_file), "--journal", f"file:{journal}"
            )
            startup.append(time.perf_counter() - start)
            latest = max(
                json.loads(journal.read_text())["deployments"].values(), key=lambda d: d["id"]
            )
            to_write.append(latest["timings"]["restoreAcceptedAt"] - started)
            started, start = time.time(), time.perf_counter()
            answered = subprocess.run(
                [sys.executable, "-c", bare, str(bench.outputs_file)],
                check=True,
                env=bench.env,
                capture_output=True,
                text=True,
            )
            startup_floor.append(time.perf_counter() - start)
            to_write_floor.append(float(answered.stdout.strip()) - started)

        # peak memory of a shift process, beside a bare boto3 process
        bench.reset(outputs)
        bare_rss = peak_rss([sys.executable, "-c", bare, str(bench.outputs_file)], bench.env)
        bench.reset(outputs)
        shift_rss = peak_rss(
            [
                sys.executable,
                "-m",
                "cutover",
                "shift",
                "--to",
                "green",
                "--steps",
                "50,100",
                "--bake",
                "1s",
                "--interval",
                "0.1s",
                "--gates-config",
                str(bench.gates),
                "--records",
                str(bench.records_dir),
                "--outputs",
                str(bench.outputs_file),
                "--journal",
                f"file:{tmp}/peak.json",
            ],
            bench.env,
        )

        figures = {
            "restore_seconds": median(restore),
            "bare_modify_listener_seconds": median(modify),
            "restore_ratio": median(restore) / median(modify),
            "restore_verify_seconds": median(verify),
            "bare_modify_describe_seconds": median(modify_describe),
            "restore_verify_ratio": median(verify) / median(modify_describe),
            "detection_seconds": median(detection),
            "polling_interval_seconds": INTERVAL,
            "detection_ratio": median(detection) / INTERVAL,
            "many_services": len(files) + 1,
            "many_restore_seconds": median(many),
            "many_bare_thread_pool_seconds": median(many_floor),
            "many_services_ratio": median(many) / median(many_floor),
            "rollback_process_seconds": median(startup),
            "bare_boto3_process_seconds": median(startup_floor),
            "startup_ratio": median(startup) / median(startup_floor),
            "rollback_process_to_write_seconds": median(to_write),
            "bare_boto3_process_to_write_seconds": median(to_write_floor),
            "rollback_process_ratio": median(to_write) / median(to_write_floor),
            "peak_rss_mib": round(shift_rss / 1024, 1),
            "bare_boto3_peak_rss_mib": round(bare_rss / 1024, 1),
            "trials": TRIALS,
        }
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()})
        )


if __name__ == "__main__":
    main()
