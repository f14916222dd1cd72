"""`cutover promote`, `abort`, `rollback` and `resume`: parse, act through `cutover.engine.control`,
print. After any restore the stack's config follows what is served (`--stack-config`, or
`pulumi config set` with `--stack`), or the commands to make it follow are printed."""

from __future__ import annotations

import time
from pathlib import Path

import click
from cutover_gates.contract import APPROVAL, KINDS, SECURITY_SIGNOFF, Color, Status

from cutover.cli.common import (
    Context,
    duration,
    gate_options,
    outputs_options,
    stack_config_option,
    text,
)
from cutover.cli.output import output_option, result, say
from cutover.clock import Clock
from cutover.deployment import Deployment
from cutover.engine.control import give_back, nothing_to_give_back, request_and_wait, restored
from cutover.engine.requests import PROMOTE_FULL
from cutover.engine.requests import promote as promote_request
from cutover.errors import ConfigError, DeploymentFailed, GateRefused
from cutover.fleet import ensure_full_capacity
from cutover.interrupt import Interrupts
from cutover.journal.owner import newer_owner
from cutover.notifier import Notifier
from cutover.service import services_of_deployment
from cutover.summary import outcome_json


def timeout_option(default: str, what: str):  # type: ignore[no-untyped-def]
    return click.option(
        "--timeout",
        type=duration("1h"),
        default=default,
        show_default=True,
        help=f"How long to wait for {what}.",
    )


@click.command()
@outputs_options
@click.option(
    "--full",
    is_flag=True,
    help="Skip every remaining pause and bake (each step is still written, verified as served and its guards checked once).",
)
@timeout_option("60s", "the shift to act on it")
@output_option
def promote(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    full: bool,
    timeout: float,
    fmt: str,
) -> None:
    """Continue a paused shift (only while it is paused).

    \b
    Example:
      cutover promote --outputs prod.json
    """
    ctx = Context(outputs, stack, journal)
    latest = _active(ctx, "promote")
    if full:
        request = PROMOTE_FULL
    elif latest.status != Status.PAUSED:
        raise ConfigError(
            f"deployment {latest.id} is {latest.activity(time.time())}; `cutover promote` is "
            "accepted only while it is paused (`cutover promote --full` skips what remains)"
        )
    else:
        request = promote_request(latest.pause_index)
    if not request_and_wait(ctx.journal, latest.scope, latest.id, request, timeout, Clock()):
        raise DeploymentFailed(
            f"deployment {latest.id} has not acted on the promote after {timeout:g}s; it stays "
            "requested (see `cutover status`)"
        )
    now = ctx.deployment(latest.id) or latest
    activity = now.activity(time.time())
    result(f"Promoted deployment {latest.id}{' (full)' if full else ''}: {activity}.",
           {"deployment": latest.id, "full": full, "activity": activity})  # fmt: skip


@click.command()
@outputs_options
@stack_config_option
@timeout_option("60s", "the shift to give traffic back")
@output_option
def abort(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    stack_config: Path | None,
    timeout: float,
    fmt: str,
) -> None:
    """Stop the shift in progress and restore the weights it found; waits until they are served.

    \b
    Example:
      cutover abort --outputs prod.json --stack-config Pulumi.prod.yaml
    """
    ctx = Context(outputs, stack, journal)
    latest = ctx.deployment(None)
    if latest is None or not latest.status.active:
        result("No shift in progress; nothing to abort.", {"deployment": None})
        return
    _give_back(ctx, latest, timeout, 600, stack_config)


@click.command()
@outputs_options
@click.option(
    "--deployment",
    "deployment_id",
    type=text("a deployment id (an empty id file is not the latest)"),
    help="A deployment id (default: the latest).",
)
@click.option(
    "--if-moved",
    is_flag=True,
    help="Only if that deployment moved traffic and neither succeeded nor gave it back (what a "
    "pipeline runs for the deployment its own run started); otherwise say why not, exit 0.",
)
@click.option(
    "--scale-timeout",
    type=duration("1h"),
    default="10m",
    show_default=True,
    help="How long to wait for a scaled-down color to be healthy again.",
)
@timeout_option("60s", "a running shift to give traffic back")
@stack_config_option
@output_option
def rollback(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    deployment_id: str | None,
    if_moved: bool,
    scale_timeout: float,
    timeout: float,
    stack_config: Path | None,
    fmt: str,
) -> None:
    """Restore the weights a deployment found: at once when its process is gone, by asking it
    to abort (and waiting) while it still runs.

    \b
    Examples:
      cutover rollback --outputs prod.json --stack-config Pulumi.prod.yaml
      cutover rollback --outputs prod.json --deployment "$(cat id)" --if-moved
    """
    ctx = Context(outputs, stack, journal)
    deployment = ctx.deployment(deployment_id)
    if deployment is None:
        result("No deployment in the journal; nothing to roll back.", {"deployment": None})
        return
    if if_moved:
        why = nothing_to_give_back(ctx.journal, deployment)
        if why is not None:
            result(f"Deployment {deployment.id}: {why}; nothing to give back.",
                   {**outcome_json(deployment), "gaveBack": False})  # fmt: skip
            return
    newer = newer_owner(ctx.journal, deployment)
    if newer is not None:
        raise ConfigError(
            f"deployment {deployment.id}: deployment {newer[1].deployment} took {newer[0]} "
            "since; a newer release is never undone by rolling back an older deployment (roll "
            f"back {newer[1].deployment} instead)"
        )
    _give_back(ctx, deployment, timeout, scale_timeout, stack_config)


def _give_back(
    ctx: Context,
    deployment: Deployment,
    timeout: float,
    scale_timeout: float,
    stack_config: Path | None,
) -> None:
    services = services_of_deployment(deployment, ctx.services)
    if services is None:
        raise ConfigError(
            f"deployment {deployment.id} moves {', '.join(deployment.listeners)}; give the "
            "--outputs of every stack it moves (it journaled no outputs for them)"
        )

    def capacity(color: Color) -> None:
        for s in services:
            ensure_full_capacity(s.outputs, s.fleet, color, scale_timeout, say)

    notifier = Notifier([s.outputs for s in services], say)
    done = give_back(services, ctx.journal, notifier, deployment, ctx.live_holder(), capacity,
                     timeout, say, Interrupts(say))  # fmt: skip
    message = restored(done)
    say(message)
    ctx.write_back_restored(stack_config, done)
    result(None, {**outcome_json(done), "gaveBack": done.moved_traffic})


@click.command()
@outputs_options
@gate_options
@stack_config_option
@output_option
def resume(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    gates_config: Path,
    records: Path,
    stack_config: Path | None,
    fmt: str,
) -> None:
    """Continue an interrupted shift from its last verified step, once its gates hold again
    (the same judgement as `cutover shift` and the pack: approvals still valid, no key
    revoked, outside a freeze, no rollback of the release since).

    \b
    Example:
      cutover resume --outputs prod.json --gates-config gates/pack-config.json \\
        --records gates/prod --stack-config Pulumi.prod.yaml
    """
    from cutover.preflight import gate_judge  # loads cryptography: a rollback never needs it

    ctx = Context(outputs, stack, journal)
    deployment = ctx.deployment(None)
    if deployment is None or not deployment.status.active:
        result("No interrupted shift to resume.", {"deployment": None})
        return
    if ctx.live_holder() is not None:
        raise ConfigError(
            f"deployment {deployment.id} is still running (its holder renews its lease); "
            "`cutover status` shows it"
        )
    kinds = list(KINDS) if deployment.options.kind == "shift" else [APPROVAL, SECURITY_SIGNOFF]
    gates = gate_judge(ctx.services, ctx.journal, deployment.target, kinds, gates_config, records)
    refused = gates()
    if refused:
        raise GateRefused(
            f"deployment {deployment.id} stays interrupted; resuming it is refused, nothing "
            "was changed:\n  "
            + "\n  ".join(refused)
            + "\n`cutover rollback` gives its traffic back"
        )
    interrupts = Interrupts(say)
    with interrupts:
        shifter = ctx.shift(gates, interrupts)
        with interrupts.shielded():
            shifter.resume(deployment)
        step = max(deployment.step, 0)
        say(f"Resuming deployment {deployment.id} at step {step + 1}/{len(deployment.plan)}.")
        try:
            done = shifter.run(from_step=step)
        except DeploymentFailed:
            with interrupts.shielded():
                ctx.write_back_restored(stack_config, ctx.deployment(deployment.id))
            raise
        say(f"Shift {deployment.id} succeeded.")
        with interrupts.shielded():
            ctx.write_back(stack_config, done.plan[-1], f"shift {done.id} succeeded")
    result(None, outcome_json(done))


def _active(ctx: Context, command: str) -> Deployment:
    """The latest deployment, when a live process is running it; ConfigError otherwise."""
    latest = ctx.deployment(None)
    if latest is None or not latest.status.active:
        raise ConfigError(f"no shift in progress; nothing to {command}")
    if ctx.live_holder() is None:
        raise ConfigError(
            f"deployment {latest.id} was interrupted (its process is gone); `cutover resume` "
            "continues it, `cutover rollback` gives traffic back"
        )
    return latest
