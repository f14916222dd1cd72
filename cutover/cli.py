"""The `cutover` command line.

Imports stay inside the commands: a rollback must start fast, so `cutover rollback` loads
boto3 and its own modules, not Pulumi, matplotlib or cryptography.

Exit codes: 0 success; 1 the deployment failed or was rolled back; 2 bad input or a refused
gate (nothing was changed); 3 the lock is held by another deployment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from cutover.journal import Journal
    from cutover.outputs import StackOutputs
    from cutover.shift import Service


def say(message: str) -> None:
    click.echo(message)


def _bad(message: str) -> click.BadParameter:
    return click.BadParameter(message)


def _color(_: Any, __: Any, value: str | None) -> str | None:
    if value is not None and value not in ("blue", "green"):
        raise _bad(f"unknown color {value!r}; expected blue or green")
    return value


def _duration(_: Any, param: click.Parameter, value: str | None) -> float | None:
    from cutover.durations import parse_duration

    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise _bad(str(e)) from None
    if seconds <= 0 and param.name != "bake":
        raise _bad(f"{value!r} must be longer than zero")
    return seconds


def outputs_options(fn: Any) -> Any:
    fn = click.option(
        "--journal",
        default="stack",
        show_default=True,
        help="stack (its DynamoDB table, or a Kubernetes stack's namespace), dynamodb, kubernetes or file:PATH.",
    )(fn)
    fn = click.option(
        "--stack", "stack", help="Read outputs with `pulumi stack output --json --stack NAME`."
    )(fn)
    fn = click.option(
        "--outputs",
        "outputs",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="JSON of `pulumi stack output --json`; repeat for each service of a release train.",
    )(fn)
    return fn


def load_all_outputs(outputs: tuple[Path, ...], stack: str | None) -> list[StackOutputs]:
    import shutil
    import subprocess

    from cutover.errors import ConfigError
    from cutover.outputs import StackOutputs, load_outputs

    if outputs and stack:
        raise ConfigError("give --outputs or --stack, not both")
    if stack:
        if shutil.which("pulumi") is None:
            raise ConfigError(
                "--stack needs the Pulumi CLI on PATH; save the outputs and use --outputs FILE"
            )
        result = subprocess.run(
            ["pulumi", "stack", "output", "--json", "--stack", stack],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ConfigError(
                f"--stack {stack}: `pulumi stack output` failed: {result.stderr.strip()}"
            )
        return [StackOutputs(json.loads(result.stdout), f"--stack {stack}")]
    if not outputs:
        raise ConfigError(
            "no stack given; pass --outputs FILE (the JSON of `pulumi stack output --json`) or --stack NAME"
        )
    return [load_outputs(str(p)) for p in outputs]


def router_of(o: StackOutputs) -> Any:
    """The stack's router: its ALB listener, or its Gateway API HTTPRoute."""
    if o.routing == "gateway":
        from cutover.routers.gateway import GatewayRouter

        services = {c: str(o.services[c]["service"]) for c in ("blue", "green")}
        return GatewayRouter(o.route["namespace"], o.route["name"], services, o.name)
    from cutover.routers.alb import AlbRouter

    return AlbRouter(o.listener_arn, o.target_group_arns, o.name)


def services_of(all_outputs: list[StackOutputs]) -> list[Service]:
    from cutover.errors import ConfigError
    from cutover.fleet import fleet_of
    from cutover.shift import Service

    keys = [o.route_key for o in all_outputs]
    if len(set(keys)) != len(keys):
        raise ConfigError("two --outputs name the same listener or route; give each service once")
    return [Service(o, router_of(o), fleet_of(o)) for o in all_outputs]


def journal_of(spec: str, all_outputs: list[StackOutputs]) -> Journal:
    from cutover.journal import open_journal

    first = all_outputs[0]
    return open_journal(spec, first.journal_table, first.services["blue"].get("namespace"))


class Context:
    """What every helper command needs, loaded from its options."""

    def __init__(self, outputs: tuple[Path, ...], stack: str | None, journal: str) -> None:
        from cutover.journal import scope_of

        self.all_outputs = load_all_outputs(outputs, stack)
        self.services = services_of(self.all_outputs)
        self.journal = journal_of(journal, self.all_outputs)
        self.scope = scope_of([o.route_key for o in self.all_outputs])

    def shift(self) -> Any:
        from cutover.shift import Shift

        return Shift(self.services, self.journal, say)

    def deployment(self, deployment_id: str | None) -> dict[str, Any] | None:
        from cutover.errors import ConfigError

        found = self.journal.load(self.scope, deployment_id)
        if deployment_id and found is None:
            raise ConfigError(f"--deployment {deployment_id}: no such deployment in the journal")
        return found

    def live_holder(self) -> dict[str, Any] | None:
        """Who holds the lock now; a lease whose process died on this host holds nothing."""
        from cutover.journal import dead_here

        for o in self.all_outputs:
            holder = self.journal.lock_holder(o.route_key)
            if holder and not dead_here(holder):
                return holder
        return None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cutover")
def cli() -> None:
    """Zero-downtime blue-green deployments: gated, progressive, rolled back automatically."""


# -- traffic ------------------------------------------------------------------------------


@cli.command()
@outputs_options
@click.option("--output", "fmt", type=click.Choice(["text", "json"]), default="text")
def status(outputs: tuple[Path, ...], stack: str | None, journal: str, fmt: str) -> None:
    """Weights per color, ready instances, alarms, and the deployment in progress."""
    ctx = Context(outputs, stack, journal)
    services: list[dict[str, Any]] = []
    for service in ctx.services:
        o = service.outputs
        names = [n for c in ("blue", "green") for n in o.alarm_names[c]]
        alarms = []
        if names:
            from cutover.aws import client

            alarms = client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
        services.append(
            {
                "service": o.name,
                "route": o.route_key,
                "weights": service.router.served(),
                "ready": {c: service.fleet.ready(c) for c in ("blue", "green")},
                "readyUnit": service.fleet.unit,
                "releases": {c: o.releases[c].get("version") for c in ("blue", "green")},
                "alarms": {a["AlarmName"]: a["StateValue"] for a in alarms},
            }
        )
    latest = ctx.deployment(None)
    holder = ctx.live_holder()
    deployment = None
    if latest is not None:
        state = latest["status"]
        if state in ("in-progress", "paused") and holder is None:
            state = "interrupted"
        deployment = {
            "id": latest["id"],
            "status": state,
            "target": latest["options"]["target"],
            "step": latest["step"] + 1,
            "steps": len(latest["plan"]),
            "startedBy": latest.get("holder", {}).get("who"),
        }
    result: dict[str, Any] = {"services": services, "deployment": deployment, "lock": holder}
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    for s in services:
        w = s["weights"]
        say(f"{s['service']}: blue {w['blue']} / green {w['green']}")
        for c in ("blue", "green"):
            say(f"  {c}: release {s['releases'][c]}, {s['ready'][c]} {s['readyUnit']}")
        for name, value in sorted(s["alarms"].items()):
            say(f"  alarm {name}: {value}")
    if deployment:
        say(
            f"deployment {deployment['id']}: {deployment['status']} towards {deployment['target']} "
            f"(step {deployment['step']}/{deployment['steps']})"
        )
        if deployment["status"] == "interrupted":
            say(
                "  its process is gone: `cutover rollback` restores the weights it found, `cutover resume` continues"
            )
    else:
        say("no deployment in the journal")
    if holder:
        say(
            f"lock held by deployment {holder['deployment']} ({holder['who']} on {holder['host']}, pid {holder['pid']})"
        )


@cli.command()
@outputs_options
@click.option(
    "--to", "target", required=True, callback=_color, help="The color to move traffic to."
)
@click.option("--steps", help="Percentages to step through, e.g. 10,50,100.")
@click.option(
    "--strategy",
    type=click.Choice(["all-at-once", "canary", "linear"]),
    help="all-at-once: 100; canary: 5,25,50,100; linear: 10,20,...,100.",
)
@click.option(
    "--bake",
    default="60s",
    show_default=True,
    callback=_duration,
    help="Time each step is watched.",
)
@click.option(
    "--interval",
    default="5s",
    show_default=True,
    callback=_duration,
    help="Guard polling interval.",
)
@click.option(
    "--mode", type=click.Choice(["auto", "assisted", "manual"]), default="auto", show_default=True
)
@click.option(
    "--deadline", callback=_duration, help="Bound on the whole shift; past it, roll back."
)
@click.option(
    "--verify-timeout",
    default="30s",
    show_default=True,
    callback=_duration,
    help="How long a written split may take to be served (listener or Gateway) before it counts as failed.",
)
@click.option(
    "--probe", "probes", multiple=True, help="URL[=STATUS] polled as a guard (default 200)."
)
@click.option("--smoke", help="Command run against the test listener first (CUTOVER_TEST_URL).")
@click.option(
    "--gates-config",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The policy pack config JSON (trusted keys, limits).",
)
@click.option(
    "--records",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of gate record files.",
)
@click.option(
    "--min-healthy",
    type=click.IntRange(min=1),
    help="Healthy targets or ready replicas the target color needs (default: its capacity).",
)
@click.option("--max-inconclusive", type=click.IntRange(min=0), default=3, show_default=True)
@click.option(
    "--stack-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pulumi.<stack>.yaml to write the finished shift back into.",
)
def shift(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    target: str,
    steps: str | None,
    strategy: str | None,
    bake: float,
    interval: float,
    mode: str,
    deadline: float | None,
    verify_timeout: float,
    probes: tuple[str, ...],
    smoke: str | None,
    gates_config: Path,
    records: Path,
    min_healthy: int | None,
    max_inconclusive: int,
    stack_config: Path | None,
) -> None:
    """Move traffic to a color in steps under guards; roll back to the exact prior weights on failure."""
    from cutover.analyzer import load_pack_config
    from cutover.gates import load_records
    from cutover.plan import STRATEGIES, parse_steps
    from cutover.shift import ShiftOptions
    from cutover.weights import share

    if steps and strategy:
        raise _bad("give --steps or --strategy, not both")
    try:
        plan_steps = parse_steps(steps) if steps else STRATEGIES[strategy or "linear"]
    except ValueError as e:
        raise _bad(str(e)) from None
    options = ShiftOptions(
        target=target,  # type: ignore[arg-type]
        steps=plan_steps,
        bake=bake,
        interval=interval,
        mode=mode,
        deadline=deadline,
        probes=[_probe(p) for p in probes],
        max_inconclusive=max_inconclusive,
        verify_timeout=verify_timeout,
    )
    pack_config = load_pack_config(gates_config)
    found_records = load_records(records)
    ctx = Context(outputs, stack, journal)
    if all(share(s.router.served(), target) == 1.0 for s in ctx.services):  # type: ignore[arg-type]
        say(f"{target} already serves all traffic; nothing to shift.")
        return
    kinds = ["approval", "security-signoff", "rollback-drill"]
    preflight(ctx, target, kinds, pack_config, found_records, min_healthy, smoke)
    shifter = ctx.shift()
    doc = shifter.start(options)
    say(f"Deployment {doc['id']}: {len(doc['plan'])} step(s) towards {target}.")
    done = shifter.run()
    say(f"Shift {done['id']} succeeded: {target} serves all traffic.")
    _write_back(stack, stack_config, target)


def _write_back(stack: str | None, stack_config: Path | None, target: str) -> None:
    """Make the stack's config follow the finished shift, so `pulumi up` keeps it."""
    from cutover.stack_config import config_commands, write_back_cli, write_back_file

    if stack_config is not None:
        write_back_file(stack_config, target, 100)
        say(f"Wrote cutover:activeColor={target}, cutover:trafficPercent=100 into {stack_config}.")
    elif stack is not None:
        write_back_cli(stack, target, 100)
        say(f"Set cutover:activeColor={target} in stack {stack}.")
    else:
        commands = "\n  ".join(" ".join(c) for c in config_commands(None, target, 100))
        say(
            f"Now make the stack's config follow, so the next `pulumi up` keeps this:\n  {commands}"
        )


def _probe(text: str) -> tuple[str, int]:
    url, _, status = text.partition("=")
    if not url.startswith(("http://", "https://")):
        raise _bad(f"--probe {text!r}: expected URL or URL=STATUS")
    try:
        return url, int(status or 200)
    except ValueError:
        raise _bad(f"--probe {text!r}: status must be a number") from None


def preflight(
    ctx: Context,
    target: str,
    kinds: list[str],
    pack_config: dict[str, Any],
    records: list[Any],
    min_healthy: int | None,
    smoke: str | None,
) -> None:
    """Gates, target capacity and health, the other color intact, smoke test. Exit 2 on refusal."""
    import os
    import subprocess

    from cutover.color import other_color
    from cutover.errors import ConfigError, GateRefused
    from cutover.gates import check_gates

    if smoke:
        for o in ctx.all_outputs:
            if not o.test_url:
                raise ConfigError(
                    f"--smoke: {o.name} has no test listener (Gateway routing); smoke-test the "
                    "inactive color's Service before shifting, and drop --smoke"
                )
    problems: list[str] = []
    for service in ctx.services:
        o, fleet = service.outputs, service.fleet
        problems += check_gates(o, target, kinds, pack_config, records)
        need = min_healthy or int(o.services[target].get("capacity", 1))
        ready = fleet.ready(target)  # type: ignore[arg-type]
        if ready < need:
            problems.append(
                f"{o.name}: {target} has {ready} {fleet.unit}; it needs {need} before it takes traffic"
            )
        other = other_color(target)  # type: ignore[arg-type]
        if fleet.ready(other) == 0:
            problems.append(
                f"{o.name}: {other} has no {fleet.unit}; it could not take traffic back"
            )
    if problems:
        raise GateRefused("refused, nothing was changed:\n  " + "\n  ".join(problems))
    if smoke:
        for o in ctx.all_outputs:
            say(f"Smoke test against {o.test_url}: {smoke}")
            result = subprocess.run(
                smoke, shell=True, env={**os.environ, "CUTOVER_TEST_URL": str(o.test_url)}
            )
            if result.returncode != 0:
                raise GateRefused(
                    f"smoke test failed (exit {result.returncode}) against {o.test_url}; nothing was changed"
                )


@cli.command()
@outputs_options
def promote(outputs: tuple[Path, ...], stack: str | None, journal: str) -> None:
    """Continue a paused shift."""
    _control(Context(outputs, stack, journal), "promote")


@cli.command()
@outputs_options
def abort(outputs: tuple[Path, ...], stack: str | None, journal: str) -> None:
    """Stop the shift in progress and restore the weights it found."""
    _control(Context(outputs, stack, journal), "abort")


def _control(ctx: Context, command: str) -> None:
    latest = ctx.deployment(None)
    if latest is None or latest["status"] not in ("in-progress", "paused"):
        say(f"No shift in progress; nothing to {command}.")
        return
    if ctx.live_holder() is None:
        if command == "promote":
            say(
                f"Deployment {latest['id']} was interrupted (its process is gone); run `cutover resume` to continue it."
            )
            return
        say(f"Deployment {latest['id']} was interrupted; restoring the weights it found.")
        _rollback(ctx, latest)
        return
    if ctx.journal.requested(ctx.scope, latest["id"]) == command:
        say(f"{command} was already requested for deployment {latest['id']}.")
        return
    ctx.journal.request(ctx.scope, latest["id"], command)
    say(f"Requested {command} of deployment {latest['id']}; the shift acts on it at its next poll.")


@cli.command()
@outputs_options
@click.option("--deployment", "deployment_id", help="A deployment id (default: the latest).")
@click.option(
    "--scale-timeout",
    default="10m",
    show_default=True,
    callback=_duration,
    help="How long to wait for a scaled-down color to be healthy again.",
)
def rollback(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    deployment_id: str | None,
    scale_timeout: float,
) -> None:
    """Restore the weights a deployment found, also after its process was killed."""
    ctx = Context(outputs, stack, journal)
    doc = ctx.deployment(deployment_id)
    if doc is None:
        say("No deployment in the journal; nothing to roll back.")
        return
    _rollback(ctx, doc, scale_timeout)


def _rollback(ctx: Context, doc: dict[str, Any], scale_timeout: float = 600) -> None:
    from cutover.fleet import ensure_full_capacity

    def capacity(color: Any) -> None:
        for s in ctx.services:
            ensure_full_capacity(s.outputs, s.fleet, color, scale_timeout, say)

    done = ctx.shift().rollback(doc, capacity)
    say(f"Deployment {done['id']} rolled back.")


@cli.command()
@outputs_options
def resume(outputs: tuple[Path, ...], stack: str | None, journal: str) -> None:
    """Continue an interrupted shift from its last verified step."""
    ctx = Context(outputs, stack, journal)
    doc = ctx.deployment(None)
    if doc is None or doc["status"] not in ("in-progress", "paused"):
        say("No interrupted shift to resume.")
        return
    shifter = ctx.shift()
    shifter.resume(doc)
    step = max(doc["step"], 0)
    say(f"Resuming deployment {doc['id']} at step {step + 1}/{len(doc['plan'])}.")
    shifter.run(from_step=step)
    say(f"Shift {doc['id']} succeeded.")


@cli.command()
@outputs_options
@click.option("--to", "target", required=True, callback=_color, help="The color to drill.")
@click.option("--percent", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--bake", default="30s", show_default=True, callback=_duration)
@click.option("--interval", default="5s", show_default=True, callback=_duration)
@click.option("--gates-config", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--records",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder of gate records; the drill record is written here.",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Deploy key (PEM); default: $CUTOVER_DEPLOY_KEY.",
)
@click.option("--valid-for", default="7d", show_default=True, callback=_duration)
def drill(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    target: str,
    percent: int,
    bake: float,
    interval: float,
    gates_config: Path,
    records: Path,
    key_file: Path | None,
    valid_for: float,
) -> None:
    """A timed rollback drill: a small step to a color and back; signs a rollback-drill record."""
    from datetime import UTC, datetime, timedelta

    from cutover_gates.record import make_record, sign

    from cutover.analyzer import load_pack_config
    from cutover.color import other_color
    from cutover.errors import ConfigError
    from cutover.gates import load_records
    from cutover.shift import ShiftOptions

    key = _private_key(key_file, "CUTOVER_DEPLOY_KEY")
    pack_config = load_pack_config(gates_config)
    ctx = Context(outputs, stack, journal)
    for service in ctx.services:
        if service.router.served()[other_color(target)] == 0:  # type: ignore[arg-type]
            raise ConfigError(
                f"{service.outputs.name}: {target} already serves all traffic; drill the color "
                "that does not, so the drill moves real traffic to it and back"
            )
    preflight(
        ctx, target, ["approval", "security-signoff"], pack_config, load_records(records), 1, None
    )
    shifter = ctx.shift()
    shifter.start(
        ShiftOptions(
            target=target,  # type: ignore[arg-type]
            steps=[percent],
            bake=bake,
            interval=interval,  # type: ignore[arg-type]
            kind="drill",
        )
    )
    done = shifter.run()
    timings = done["timings"]
    seconds = round(timings["restoredAt"] - timings["detectedAt"], 3)
    say(
        f"Drill {done['id']}: {percent}% to {target} and back; restored and verified in {seconds}s."
    )
    for o in ctx.all_outputs:
        release = o.releases[target]
        body = make_record(
            kind="rollback-drill",
            project=o.project,
            stack=o.stack,
            version=release["version"],
            digest=release["digest"],
            color=target,
            issued_at=datetime.now(UTC),
            valid_for=timedelta(seconds=valid_for),
            details={
                "deployment": done["id"],
                "percent": percent,
                "rollbackSeconds": seconds,
                "restoreVerified": timings["restoreVerified"],
            },
        )
        path = records / f"{o.stack}-{target}-{release['version']}-rollback-drill.json"
        path.write_text(json.dumps(sign(body, key), indent=2) + "\n")
        say(f"Signed rollback-drill record: {path}")


@cli.command()
@outputs_options
@click.option("--deployment", "deployment_id", help="A deployment id (default: the latest).")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder for the report and its plot.",
)
def report(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    deployment_id: str | None,
    fmt: str,
    out: Path,
) -> None:
    """Timeline, success rate, downtime and rollback time of a deployment, with a plot."""
    from cutover.report import plot, report_json, report_markdown

    ctx = Context(outputs, stack, journal)
    doc = ctx.deployment(deployment_id)
    if doc is None:
        say("No deployment in the journal yet.")
        return
    data = report_json(doc, ctx.journal.history(ctx.scope))
    out.mkdir(parents=True, exist_ok=True)
    image = plot(doc, out / f"deployment-{doc['id']}.png")
    if fmt == "json":
        path = out / f"deployment-{doc['id']}.json"
        path.write_text(json.dumps({**data, "plot": str(image)}, indent=2) + "\n")
    else:
        path = out / f"deployment-{doc['id']}.md"
        path.write_text(report_markdown(data, image))
    say(f"Report: {path}\nPlot: {image}")


# -- keys and gate records -------------------------------------------------------------------


@cli.group()
def keys() -> None:
    """Signing keys for gate records."""


@keys.command("new")
@click.option("--name", required=True, help="e.g. chairman, security, deploy")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def keys_new(name: str, out: Path) -> None:
    """Make an Ed25519 key pair: NAME.key (mode 0600) and NAME.pub; prints the public key."""
    import os

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cutover_gates.record import key_id, private_key_pem, public_key_text

    out.mkdir(parents=True, exist_ok=True)
    private, public = out / f"{name}.key", out / f"{name}.pub"
    if private.exists():
        from cutover.errors import ConfigError

        raise ConfigError(f"{private} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    text = public_key_text(key.public_key())
    public.write_text(text + "\n")
    say(
        f"private key: {private} (keep it secret)\npublic key:  {public}\nkey id:      {key_id(key.public_key())}"
    )
    say(text)


def _private_key(path: Path | None, env: str) -> Any:
    import os

    from cutover_gates.record import load_private_key

    from cutover.errors import ConfigError

    if path is not None:
        try:
            pem = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"--key {path}: cannot read it ({e.strerror})") from None
    elif os.environ.get(env):
        pem = os.environ[env].encode()
    else:
        raise ConfigError(f"no signing key: pass --key FILE or set ${env} to the PEM")
    try:
        return load_private_key(pem)
    except ValueError as e:
        raise ConfigError(f"the signing key is not an Ed25519 PEM private key ({e})") from None


def record_options(fn: Any) -> Any:
    for option in reversed(
        [
            click.option("--project", default="cutover", show_default=True),
            click.option(
                "--stack",
                "stack_name",
                required=True,
                help="The stack the release goes to, e.g. prod.",
            ),
            click.option("--color", required=True, callback=_color),
            click.option(
                "--release", "version", help="Release version (default: from --stack-file)."
            ),
            click.option("--digest", help="Image digest sha256:... (default: from --stack-file)."),
            click.option(
                "--stack-file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Pulumi.<stack>.yaml to read the color's release and digest from.",
            ),
            click.option("--valid-for", default="24h", show_default=True, callback=_duration),
            click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path)),
            click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True),
        ]
    ):
        fn = option(fn)
    return fn


def _write_record(
    kind: str,
    env: str,
    project: str,
    stack_name: str,
    color: str,
    version: str | None,
    digest: str | None,
    stack_file: Path | None,
    valid_for: float,
    key_file: Path | None,
    out: Path,
    details: dict[str, Any],
) -> None:
    import re
    from datetime import UTC, datetime, timedelta

    from cutover_gates.record import DIGEST, make_record, sign

    from cutover.errors import ConfigError

    if stack_file is not None and (version is None or digest is None):
        from cutover.offline import stack_config

        colors = stack_config(stack_file).get("cutover:colors", {})
        fleet = colors.get(color, {}) if isinstance(colors, dict) else {}
        version = version or fleet.get("release")
        image = str(fleet.get("image", ""))
        digest = digest or (image.split("@", 1)[1] if "@" in image else None)
    if not version or not digest:
        raise ConfigError(
            "give --release and --digest, or --stack-file with the color's release and pinned image"
        )
    if not re.fullmatch(DIGEST, digest):
        raise ConfigError(f"--digest {digest!r}; expected sha256:<64 hex digits>")
    key = _private_key(key_file, env)
    body = make_record(
        kind=kind,
        project=project,
        stack=stack_name,
        version=version,
        digest=digest,
        color=color,
        issued_at=datetime.now(UTC),
        valid_for=timedelta(seconds=valid_for),
        details=details,
    )
    out.write_text(json.dumps(sign(body, key), indent=2) + "\n")
    say(f"Signed {kind} for {stack_name} {color} release {version}: {out}")


@cli.command()
@record_options
def approve(**kw: Any) -> None:
    """The chairman's approval of one release for one stack and color."""
    _write_record("approval", "CUTOVER_SIGNING_KEY", details={}, **kw)


@cli.command()
@record_options
@click.option("--scanner", required=True, help="The scanner that produced the findings.")
@click.option(
    "--findings",
    "findings_text",
    default="",
    help="Counts by severity, e.g. critical=0,high=2,medium=5.",
)
def signoff(scanner: str, findings_text: str, **kw: Any) -> None:
    """A security sign-off of one release, with findings counts by severity."""
    from cutover_gates.record import SEVERITIES

    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in findings_text.split(","))):
        severity, _, number = part.partition("=")
        if severity not in SEVERITIES or not number.isdigit():
            raise _bad(
                f"--findings {part!r}; expected SEVERITY=COUNT with SEVERITY in {', '.join(SEVERITIES)}"
            )
        counts[severity] = int(number)
    _write_record(
        "security-signoff",
        "CUTOVER_SIGNING_KEY",
        details={"scanner": scanner, "findings": counts},
        **kw,
    )


@cli.group()
def records() -> None:
    """Gate record files."""


@records.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gates-config", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--outputs",
    "outputs_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also check each record binds this stack's current release for its color.",
)
def records_verify(files: tuple[Path, ...], gates_config: Path, outputs_file: Path | None) -> None:
    """Check records against the pack config's trusted keys; exit 2 if any is not valid."""
    from datetime import UTC, datetime

    from cutover_gates.gate import POLICY_OF_KIND, judge
    from cutover_gates.record import Expected, RecordInvalid

    from cutover.analyzer import load_pack_config
    from cutover.errors import GateRefused
    from cutover.outputs import load_outputs

    pack_config = load_pack_config(gates_config)
    outputs = load_outputs(str(outputs_file)) if outputs_file else None
    bad = 0
    for path in files:
        try:
            document = json.loads(path.read_text())
            body = document["record"]
            kind, color = body["kind"], body["color"]
            release = outputs.releases[color] if outputs else body["release"]
            expected = Expected(
                kind,
                outputs.project if outputs else body["project"],
                outputs.stack if outputs else body["stack"],
                release["version"],
                release["digest"],
                color,
            )
            judge(
                kind,
                document,
                expected,
                pack_config.get(POLICY_OF_KIND[kind], {}),
                datetime.now(UTC),
            )
            say(
                f"valid   {path}: {kind} for {body['stack']} {color} {body['release']['version']} (key {body['keyId']}, expires {body['expiresAt']})"
            )
        except (OSError, ValueError, KeyError, TypeError, RecordInvalid) as e:
            bad += 1
            say(f"INVALID {path}: {e}")
    if bad:
        raise GateRefused(f"{bad} of {len(files)} record(s) are not valid")


def main() -> None:
    """Entry point: CutoverError becomes its message and exit code."""
    from cutover.errors import CutoverError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except CutoverError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:
        message = api_failure(e)
        if message is None:
            raise
        click.echo(f"error: {message}", err=True)
        sys.exit(1)


def api_failure(error: Exception) -> str | None:
    """What an AWS or Kubernetes call that failed after its retries said; None for anything else
    (a bug keeps its traceback)."""
    module = type(error).__module__
    if module.startswith("kubernetes."):
        status, reason = getattr(error, "status", None), getattr(error, "reason", None)
        try:
            detail = json.loads(getattr(error, "body", None) or "{}").get("message", "")
        except (TypeError, ValueError):
            detail = ""
        return f"the Kubernetes API answered {status} {reason}: {detail or error}".rstrip(": ")
    if module.startswith(("botocore.", "boto3.")):
        return f"an AWS call failed after its retries: {error}"
    if module.startswith("urllib3."):
        return f"could not reach the Kubernetes API after its retries: {error}"
    return None


# -- preview -----------------------------------------------------------------------------------


@cli.command("preview")
@click.option(
    "--stack",
    default="prod",
    show_default=True,
    help="The stack whose Pulumi.<stack>.yaml is previewed.",
)
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
)
@click.option(
    "--stack-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A stack config file to use instead of <project-dir>/Pulumi.<stack>.yaml.",
)
@click.option(
    "--policy-pack",
    "pack_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("policies"),
    show_default=True,
)
@click.option(
    "--policy-pack-config",
    "pack_config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The pack config JSON, as for `pulumi preview --policy-pack-config`.",
)
@click.option(
    "--previous",
    "previous_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="`pulumi stack output --json` of the stack now: what traffic moves from.",
)
@click.option(
    "--output", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def preview_command(
    stack: str,
    project_dir: Path,
    stack_file: Path | None,
    pack_dir: Path,
    pack_config_file: Path | None,
    previous_file: Path | None,
    fmt: str,
) -> None:
    """What an update would declare, and whether the gates let it through, without cloud credentials.

    Exit 0 when no mandatory policy is violated, 1 when one is, 2 for bad input.
    """
    from cutover.analyzer import load_pack_config
    from cutover.errors import ConfigError, DeploymentFailed
    from cutover.preview import preview, render_json, render_text

    project_dir = project_dir.resolve()
    if not (project_dir / "Pulumi.yaml").is_file():
        raise ConfigError(
            f"--project-dir {project_dir}: no Pulumi.yaml; expected the cutover project folder"
        )
    if stack_file is None and not (project_dir / f"Pulumi.{stack}.yaml").is_file():
        raise ConfigError(f"--stack {stack}: no {project_dir / f'Pulumi.{stack}.yaml'}")
    previous = None
    if previous_file is not None:
        try:
            previous = json.loads(previous_file.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"--previous {previous_file}: not readable JSON ({e})") from None
    result = preview(
        project_dir,
        stack,
        stack_file.resolve() if stack_file else None,
        pack_dir.resolve(),
        load_pack_config(pack_config_file),
        previous,
    )
    if fmt == "json":
        click.echo(json.dumps(render_json(result), indent=2))
    else:
        click.echo(render_text(result))
    if result.blocked:
        raise DeploymentFailed("the update would be refused by a mandatory policy")
