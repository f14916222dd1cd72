"""`cutover promote`, `abort`, `rollback` and `resume`: parse, act through `cutover.engine.control`,
print. After any restore the stack's config follows what is served (`--stack-config`, or
`pulumi config set` with `--stack`), or the commands to make it follow are printed."""

from __future__ import annotations

import time
from pathlib import Path

import click
from cutover_gates.contract import Color, Status

from cutover.cli.common import DURATION, Context, outputs_options, say, stack_config_option
from cutover.deployment import Deployment
from cutover.errors import ConfigError, DeploymentFailed


def timeout_option(default: str, what: str):  # type: ignore[no-untyped-def]
    return click.option(
        "--timeout",
        type=DURATION,
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
def promote(
    outputs: tuple[Path, ...], stack: str | None, journal: str, full: bool, timeout: float
) -> None:
    """Continue a paused shift (only while it is paused).

    \b
    Example:
      cutover promote --outputs prod.json
    """
    from cutover.clock import Clock
    from cutover.engine.control import PROMOTE_FULL, promote_request, request_and_wait

    ctx = Context(outputs, stack, journal)
    latest = _active(ctx, "promote")
    if full:
        command = PROMOTE_FULL
    elif latest.status != Status.PAUSED:
        raise ConfigError(
            f"deployment {latest.id} is {latest.activity(time.time())}; `cutover promote` is "
            "accepted only while it is paused (`cutover promote --full` skips what remains)"
        )
    else:
        command = promote_request(latest.pause_index)
    if not request_and_wait(ctx.journal, ctx.scope, latest.id, command, timeout, Clock()):
        raise DeploymentFailed(
            f"deployment {latest.id} has not acted on the promote after {timeout:g}s; it stays "
            "requested (see `cutover status`)"
        )
    now = ctx.deployment(latest.id) or latest
    say(f"Promoted deployment {latest.id}{' (full)' if full else ''}: {now.activity(time.time())}.")


@click.command()
@outputs_options
@stack_config_option
@timeout_option("60s", "the shift to give traffic back")
def abort(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    stack_config: Path | None,
    timeout: float,
) -> None:
    """Stop the shift in progress and restore the weights it found; waits until they are served.

    \b
    Example:
      cutover abort --outputs prod.json --stack-config Pulumi.prod.yaml
    """
    ctx = Context(outputs, stack, journal)
    latest = ctx.deployment(None)
    if latest is None or not latest.status.active:
        say("No shift in progress; nothing to abort.")
        return
    _give_back(ctx, latest, timeout, 600, stack_config)


@click.command()
@outputs_options
@click.option("--deployment", "deployment_id", help="A deployment id (default: the latest).")
@click.option(
    "--if-moved",
    is_flag=True,
    help="Only if that deployment moved traffic and neither succeeded nor gave it back (what a "
    "pipeline runs for the deployment its own run started); otherwise say why not, exit 0.",
)
@click.option(
    "--scale-timeout",
    type=DURATION,
    default="10m",
    show_default=True,
    help="How long to wait for a scaled-down color to be healthy again.",
)
@timeout_option("60s", "a running shift to give traffic back")
@stack_config_option
def rollback(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    deployment_id: str | None,
    if_moved: bool,
    scale_timeout: float,
    timeout: float,
    stack_config: Path | None,
) -> None:
    """Restore the weights a deployment found: at once when its process is gone, by asking it
    to abort (and waiting) while it still runs.

    \b
    Examples:
      cutover rollback --outputs prod.json --stack-config Pulumi.prod.yaml
      cutover rollback --outputs prod.json --deployment "$(cat id)" --if-moved
    """
    from cutover.engine.control import nothing_to_give_back

    ctx = Context(outputs, stack, journal)
    deployment = ctx.deployment(deployment_id)
    if deployment is None:
        say("No deployment in the journal; nothing to roll back.")
        return
    if if_moved:
        why = nothing_to_give_back(deployment)
        if why is not None:
            say(f"Deployment {deployment.id}: {why}; nothing to give back.")
            return
    _give_back(ctx, deployment, timeout, scale_timeout, stack_config)


def _give_back(
    ctx: Context,
    deployment: Deployment,
    timeout: float,
    scale_timeout: float,
    stack_config: Path | None,
) -> None:
    from cutover.engine.control import give_back, restored
    from cutover.fleet import ensure_full_capacity
    from cutover.interrupt import Interrupts
    from cutover.notifier import Notifier

    def capacity(color: Color) -> None:
        for s in ctx.services:
            ensure_full_capacity(s.outputs, s.fleet, color, scale_timeout, say)

    done = give_back(ctx.services, ctx.journal, Notifier(ctx.all_outputs, say), deployment,
                     ctx.live_holder(), capacity, timeout, say, Interrupts(say))  # fmt: skip
    message = restored(done)
    say(message)
    ctx.write_back_restored(stack_config, done)


@click.command()
@outputs_options
@stack_config_option
def resume(
    outputs: tuple[Path, ...], stack: str | None, journal: str, stack_config: Path | None
) -> None:
    """Continue an interrupted shift from its last verified step.

    \b
    Example:
      cutover resume --outputs prod.json --stack-config Pulumi.prod.yaml
    """
    from cutover.interrupt import Interrupts

    ctx = Context(outputs, stack, journal)
    deployment = ctx.deployment(None)
    if deployment is None or not deployment.status.active:
        say("No interrupted shift to resume.")
        return
    if ctx.live_holder() is not None:
        raise ConfigError(
            f"deployment {deployment.id} is still running (its holder renews its lease); "
            "`cutover status` shows it"
        )
    interrupts = Interrupts(say)
    with interrupts:
        shifter = ctx.shift(interrupts)
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
