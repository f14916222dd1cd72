"""`make demo`: the whole product on an embedded AWS (moto's server on 127.0.0.1), in under a minute.

Every step runs the real `cutover` commands a platform engineer would run, and says what it
is doing. Output lands in demo-out/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from rehearsal.aws import aws_env, moto_server, sign_gates
from rehearsal.traffic import LiveTraffic, Traffic

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("demo-out")


def step(title: str) -> None:
    bold = sys.stdout.isatty() and not os.environ.get("NO_COLOR")  # never escapes into a pipe
    print(f"\n\033[1m== {title}\033[0m" if bold else f"\n== {title}", flush=True)


def echo(args: tuple[str, ...]) -> None:
    shown = " ".join(a if len(a) < 60 else "…" + a[-40:] for a in args)
    print(f"$ cutover {shown}", flush=True)


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """A `cutover` command the demo acts on while it runs (echoed like the others)."""
    echo(args)
    return subprocess.Popen([sys.executable, "-m", "cutover", *args], env=env, text=True)


def run(
    *args: str, env: dict[str, str], expect: int = 0, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    echo(args)
    result = subprocess.run(
        [sys.executable, "-m", "cutover", *args], env=env, text=True, capture_output=quiet
    )
    if result.returncode != expect:
        if quiet:
            print(result.stdout, result.stderr)
        raise SystemExit(f"demo: `cutover {args[0]}` exited {result.returncode}, expected {expect}")
    return result


def main() -> None:
    started = time.monotonic()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    step("1. Start an embedded AWS (moto's server) on a free port of 127.0.0.1")
    with moto_server() as endpoint:
        os.environ.update(aws_env(endpoint))  # the demo's own checks use boto3 too
        env = dict(os.environ)
        print(f"   endpoint {endpoint}; every AWS call below goes there and nowhere else")

        step("2. Create the prod stack's traffic resources from the Pulumi program itself")
        outputs = OUT / "outputs.json"
        subprocess.run(
            [sys.executable, "-m", "rehearsal.aws", "--stack", "prod", "--out", str(outputs)]
            + ["--analysis-period", "1"],
            env=env,
            check=True,
            cwd=ROOT,
        )
        data = json.loads(outputs.read_text())
        print(
            f"   load balancer {data['loadBalancerDnsName']}: blue serves 1.41.0, green is warm with 1.42.0"
        )
        import boto3

        # 400 requests a second with 1% errors on each color, published as the ALB's per-target-
        # group metrics (per second here, per minute on AWS), split by the weights served
        traffic = Traffic(per_second=400)
        live = LiveTraffic(boto3.client("cloudwatch"), boto3.client("elbv2"), data, traffic, seed=1)
        with live:
            _rest(env, data, outputs, endpoint, traffic)
    print(f"\nDone in {time.monotonic() - started:.0f}s. Everything is in {OUT.resolve()}/")


def _rest(
    env: dict[str, str], data: dict[str, Any], outputs: Path, endpoint: str, traffic: Traffic
) -> None:
    """Steps 3 to 12, with the traffic flowing."""
    import boto3

    print("   traffic: 400 requests/s, 1% errors on each color, in CloudWatch per target group")
    common = ["--outputs", str(outputs), "--journal", f"file:{OUT / 'journal.json'}"]
    run("status", *common, env=env)

    step("3. Make throwaway keys and sign the gates for green's release 1.42.0")
    signed = sign_gates(
        OUT, lambda *args: run(*args, env=env, quiet=args[0] == "keys"), ("green", "blue")
    )
    gates, records, keys = signed.config, signed.records, signed.keys
    gate_args = ["--gates-config", str(gates), "--records", str(records)]
    print("   a rollback drill: 5% to green and back, timed, then signed with the deploy key")
    drill = [
        "--percent",
        "5",
        "--bake",
        "1s",
        "--interval",
        "0.2s",
        *gate_args,
        "--key",
        str(keys / "deploy.key"),
    ]
    run("drill", "--to", "green", *drill, *common, env=env)

    step("4. Preview the flip to green with the policy pack, offline: the gates hold")
    flip = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    flip["config"]["cutover:activeColor"] = "green"
    flip["config"]["cutover:gateRecords"] = sorted(
        str(p.resolve()) for p in records.glob("green-*.json")
    ) + [str(p.resolve()) for p in records.glob("prod-green-*-rollback-drill.json")]
    (OUT / "Pulumi.prod.yaml").write_text(yaml.safe_dump(flip))
    preview = [
        "preview",
        "--stack",
        "prod",
        "--project-dir",
        str(ROOT),
        "--policy-pack",
        str(ROOT / "policies"),
        "--stack-file",
        str(OUT / "Pulumi.prod.yaml"),
        "--policy-pack-config",
        str(gates),
        "--previous",
        str(outputs),
    ]
    result = run(*preview, env=env, quiet=True)
    print(
        "\n".join(
            line
            for line in result.stdout.splitlines()
            if line.startswith(("  PASS", "  FAIL", "  blue", "  green", "No ", "Blocked"))
        )
    )

    step("5. The same preview with a forged approval (its expiry edited after signing): refused")
    approval = records / "green-approval.json"
    forged = json.loads(approval.read_text())
    forged["record"]["expiresAt"] = "2099-12-31T00:00:00Z"
    forged_file = OUT / "forged-approval.json"
    forged_file.write_text(json.dumps(forged))
    flip["config"]["cutover:gateRecords"] = [
        str(forged_file.resolve()) if p.endswith("green-approval.json") else p
        for p in flip["config"]["cutover:gateRecords"]
    ]
    (OUT / "Pulumi.prod.yaml").write_text(yaml.safe_dump(flip))
    result = run(*preview, env=env, expect=1, quiet=True)
    print("\n".join(line for line in result.stdout.splitlines() if "chairman-approval" in line))

    step("6. Progressive shift blue -> green: 10%, 50%, 100%, each step baked under guards")
    run(
        "shift",
        "--to",
        "green",
        "--steps",
        "10,50,100",
        "--bake",
        "4s",
        "--interval",
        "0.25s",
        "--smoke",
        'test -n "$CUTOVER_TEST_URL"',
        "--verify-for",
        "3s",
        *gate_args,
        *common,
        env=env,
    )

    step("7. The stage's exit gates, judged live and signed for the next stage")
    run("exit-gates", *gate_args, "--key", str(keys / "deploy.key"), *common, env=env)

    print("   with green serving, drill blue so it may take traffic back later")
    run("drill", "--to", "blue", *drill, *common, env=env)

    back = ["shift", "--to", "blue", "--steps", "25,100", "--interval", "0.25s", *gate_args]
    cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint)
    approvals = iter(range(2, 100))

    def approve_blue_again() -> None:
        """A release rolled back on this stack moves again only with an approval issued since
        (the pack's rule, and every door's): the chairman signs blue's again."""
        print("   blue's release was rolled back: the chairman approves it again", flush=True)
        run("approve", "--stack", "prod", "--color", "blue", "--stack-file",
            str(ROOT / "Pulumi.prod.yaml"), "--gates-config", str(gates), "--key",
            str(keys / "chairman.key"), "--out",
            str(records / f"blue-approval-{next(approvals)}.json"), env=env, quiet=True)  # fmt: skip

    step("8. Ctrl-C during a shift back to blue: the weights it found are given back")
    process = spawn(*back, "--bake", "30s", *common, env=env)
    _wait_for_weight(env, data, "blue", 25)
    print("   (the demo presses Ctrl-C: SIGINT to the shift)", flush=True)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    print(f"   shift exited {process.returncode}: interrupted, traffic given back", flush=True)
    approve_blue_again()

    step("9. A shift whose process is killed (SIGKILL): the stack's watchdog gives it back")
    process = spawn(*back, "--bake", "30s", *common, env=env)
    _wait_for_weight(env, data, "blue", 25)
    print("   (the demo kills the shift: SIGKILL, nothing of it runs any more)", flush=True)
    process.kill()
    process.wait(timeout=60)
    run("status", *common, env=env)
    run("watchdog", *common, env=env)
    approve_blue_again()

    step("10. A shift back to blue; blue's 5xx alarm fires at the first step")
    process = spawn(*back, "--bake", "5s", *common, env=env)
    _wait_for_weight(env, data, "blue", 25)
    print("   (the demo sets blue's 5xx-rate alarm to ALARM)", flush=True)
    cloudwatch.set_alarm_state(
        AlarmName=data["alarmNames"]["blue"][0],
        StateValue="ALARM",
        StateReason="demo: injected failure",
    )
    process.wait(timeout=60)
    print(f"   shift exited {process.returncode}: rolled back automatically", flush=True)
    run("status", *common, env=env)

    cloudwatch.set_alarm_state(
        AlarmName=data["alarmNames"]["blue"][0], StateValue="OK", StateReason="demo: fixed"
    )
    approve_blue_again()

    step("11. A shift back to blue whose release errs 5 points more: the analysis rolls back")
    traffic.error_percent["blue"] = 6.0
    run(*back, "--bake", "20s", *common, env=env, expect=1)
    traffic.error_percent["blue"] = 1.0

    step("12. Report the last deployment (timeline, analysis, exit gates, rollback time), then")
    print("   the stage's key figures across every deployment of the demo, each with a plot")
    run("report", *common, "--plot", "--out", str(OUT), *gate_args, env=env)
    run("kpis", *common, "--plot", "--out", str(OUT), env=env)


def _wait_for_weight(env: dict[str, str], data: dict[str, object], color: str, weight: int) -> None:
    import boto3

    client = boto3.client("elbv2", endpoint_url=env["AWS_ENDPOINT_URL"])
    arns = data["targetGroupArns"]
    assert isinstance(arns, dict)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        groups = client.describe_listeners(ListenerArns=[data["listenerArn"]])["Listeners"][0][
            "DefaultActions"
        ][0]["ForwardConfig"]["TargetGroups"]
        if any(g["TargetGroupArn"] == arns[color] and g["Weight"] == weight for g in groups):
            return
        time.sleep(0.05)
    raise SystemExit(f"demo: {color} never reached {weight}%")


if __name__ == "__main__":
    main()
