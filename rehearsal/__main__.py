"""`python -m rehearsal up|traffic|down`: a rehearsal of the prod stack you can use by hand.

`up` starts moto's server on 127.0.0.1 (it keeps running after `up` returns), creates the
stack in it from the Pulumi program, signs throwaway gates, writes everything into a folder
(default `rehearsal-out/`) and prints the environment and commands to paste; with
`--per-second`, it also starts steady traffic. `traffic` (re)starts the traffic with chosen
error rates per color (its targets' 5xx, `--error-percent`, and the load balancer's own on the
requests sent to it, `--elb-error-percent`); `down` stops the traffic and the server. Nothing
is contacted but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rehearsal.aws import ROOT, aws_env, free_port, provision, sign_gates, wait_until_up

DEFAULT_DIR = Path("rehearsal-out")
STATE = "rehearsal.json"
# The rehearsal's analysis windows: seconds, where an ALB's are minutes (its traffic is
# published at high resolution).
PERIOD = 5


def _state(folder: Path) -> dict[str, Any]:
    path = folder / STATE
    if not path.exists():
        raise SystemExit(f"error: no rehearsal in {folder}/ (run `python -m rehearsal up` first)")
    return dict(json.loads(path.read_text()))


def _save(folder: Path, state: dict[str, Any]) -> None:
    (folder / STATE).write_text(json.dumps(state, indent=2) + "\n")


def _stop(pid: int | None) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)  # ProcessLookupError once it is gone
            time.sleep(0.05)
        os.killpg(pid, signal.SIGKILL)


def _detached(command: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start `command` in a session of its own that outlives this process; its pid."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    return process.pid


def _percents(text: str, flag: str = "--error-percent", default: float = 1.0) -> dict[str, float]:
    """`blue=N,green=N` as each color's percent (`default` for a color not named)."""
    found = {"blue": default, "green": default}
    for part in filter(None, text.split(",")):
        color, _, value = part.partition("=")
        if color not in found:
            raise ValueError(f"{flag} {text!r}: expected blue=N,green=N")
        try:
            found[color] = float(value)
        except ValueError:
            raise ValueError(f"{flag} {text!r}: {value!r} is not a number") from None
    return found


def _elb_errors(text: str) -> dict[str, float]:
    return _percents(text, "--elb-error-percent", 0.0)


def up(folder: Path, per_second: float | None, errors: str, elb_errors: str) -> None:
    if (folder / STATE).exists():
        down(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    pid = _detached(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        folder / "moto.log",
    )
    _save(folder, {"endpoint": endpoint, "moto": pid})
    wait_until_up(f"{endpoint}/moto-api/", "moto server")
    env = {**os.environ, **aws_env(endpoint)}
    os.environ.update(aws_env(endpoint))
    stack_file = folder / "Pulumi.prod.yaml"
    outputs = provision(ROOT, "prod", analysis_period=PERIOD, written_stack_file=stack_file)
    (folder / "outputs.json").write_text(json.dumps(outputs, indent=2) + "\n")

    def cutover(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "cutover", *args], check=True, env=env,
                       stdout=subprocess.DEVNULL)  # fmt: skip

    sign_gates(folder, cutover, stack_file=stack_file)
    lines = [f"export {k}={v}" for k, v in aws_env(endpoint).items()]
    (folder / "env.sh").write_text("\n".join(lines) + "\n")
    if per_second:
        traffic(folder, per_second, errors, elb_errors)
    print(f"A rehearsal of the prod stack runs on {endpoint} (moto, pid {pid}); its files are "
          f"in {folder}/:")  # fmt: skip
    print("  outputs.json       the stack's outputs, as `pulumi stack output --json` gives them")
    print("  gates.json         the pack config trusting the throwaway keys in keys/")
    print("  records/           an approval and a security sign-off of each color's release")
    print("  Pulumi.prod.yaml   the config the stack runs, for --stack-config")
    said = f"{per_second:g} requests a second" if per_second else "none yet"
    print(f"Traffic: {said} (`python -m rehearsal traffic --per-second 400`).")
    print("Paste:\n  " + "\n  ".join(lines))
    print(f"then, for example:\n  cutover status --outputs {folder}/outputs.json")
    print("Stop it with `python -m rehearsal down`.")


def traffic(folder: Path, per_second: float, errors: str, elb_errors: str) -> None:
    state = _state(folder)
    _stop(state.get("traffic"))
    env = {**os.environ, **aws_env(state["endpoint"])}
    command = [sys.executable, "-m", "rehearsal", "serve-traffic", "--dir", str(folder),
               "--per-second", str(per_second), "--error-percent", errors,
               "--elb-error-percent", elb_errors]  # fmt: skip
    ready = folder / "traffic.ready"
    ready.unlink(missing_ok=True)
    state["traffic"] = pid = _detached(command, folder / "traffic.log", env)
    _save(folder, state)
    print(f"Waiting for a whole {PERIOD}s window of traffic in CloudWatch...", flush=True)
    while not ready.exists():  # written by the traffic itself; it fails or it comes
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            raise SystemExit(f"error: the traffic stopped; see {folder}/traffic.log") from None
        time.sleep(0.2)
    print(f"Traffic: {per_second:g} requests a second, errors {errors or 'blue=1,green=1'}, "
          f"load balancer errors {elb_errors or 'blue=0,green=0'} (pid {state['traffic']}).")  # fmt: skip


def serve_traffic(folder: Path, per_second: float, errors: str, elb_errors: str) -> None:
    """Publish the traffic until stopped (what `traffic` starts in the background)."""
    import boto3

    from rehearsal.traffic import LiveTraffic, Traffic

    outputs = json.loads((folder / "outputs.json").read_text())
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    running = LiveTraffic(
        boto3.client("cloudwatch"), boto3.client("elbv2"), outputs,
        Traffic(per_second=per_second, error_percent=_percents(errors),
                elb_error_percent=_elb_errors(elb_errors)), seed=1,
    )  # fmt: skip
    with running:
        running.wait_published(2 * PERIOD)  # a whole aligned window, however slow the machine
        (folder / "traffic.ready").touch()
        while not stop["now"] and running.thread.is_alive():
            time.sleep(0.2)


def down(folder: Path) -> None:
    state = _state(folder)
    _stop(state.get("traffic"))
    _stop(state.get("moto"))
    (folder / STATE).unlink()
    print(f"Stopped the rehearsal in {folder}/ (its files stay).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rehearsal")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "traffic", "serve-traffic", "down"):
        command = commands.add_parser(name)
        command.add_argument("--dir", type=Path, default=DEFAULT_DIR)
        if name != "down":
            command.add_argument("--per-second", type=float, default=None if name == "up" else 400)
            command.add_argument("--error-percent", default="blue=1,green=1",
                                 help="each color's 5xx rate, e.g. blue=1,green=6")  # fmt: skip
            command.add_argument("--elb-error-percent", default="blue=0,green=0",
                                 help="the load balancer's own 5xx rate on the requests sent to "
                                 "each color (its targets refusing connections), e.g. green=5")  # fmt: skip
    args = parser.parse_args(argv)
    if args.command != "down":  # refused before anything starts or changes
        try:
            _percents(args.error_percent)
            _elb_errors(args.elb_error_percent)
        except ValueError as e:
            parser.exit(2, f"error: {e}\n")
        if args.per_second is not None and not args.per_second > 0:
            parser.exit(2, f"error: --per-second {args.per_second:g}: expected more than 0\n")
    if args.command == "up":
        up(args.dir, args.per_second, args.error_percent, args.elb_error_percent)
    elif args.command == "traffic":
        traffic(args.dir, args.per_second, args.error_percent, args.elb_error_percent)
    elif args.command == "serve-traffic":
        serve_traffic(args.dir, args.per_second, args.error_percent, args.elb_error_percent)
    else:
        down(args.dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
