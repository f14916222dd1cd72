"""Acting on a deployment: promote, abort, rollback and resume.

A running shift is told through the journal (a request it reads at every guard poll) and the
command waits, bounded, until the shift has acted: an operator is told what happened, not
that something may happen later.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from cutover_gates.contract import Status

from cutover.cli.common import DURATION, Context, outputs_options, say
from cutover.deployment import Deployment
from cutover.errors import ConfigError, DeploymentFailed

POLL_SECONDS = 0.2


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
    from cutover.shift import PROMOTE_FULL, promote_request

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
    ctx.journal.request(ctx.scope, latest.id, command)
    deadline = time.monotonic() + timeout
    while ctx.journal.requested(ctx.scope, latest.id) == command:
        if time.monotonic() >= deadline:
            raise DeploymentFailed(
                f"deployment {latest.id} has not acted on the promote after {timeout:g}s; it stays "
                "requested (see `cutover status`)"
            )
        time.sleep(POLL_SECONDS)
    now = ctx.deployment(latest.id) or latest
    say(f"Promoted deployment {latest.id}{' (full)' if full else ''}: {now.activity(time.time())}.")


@click.command()
@outputs_options
@timeout_option("60s", "the shift to give traffic back")
def abort(outputs: tuple[Path, ...], stack: str | None, journal: str, timeout: float) -> None:
    """Stop the shift in progress and restore the weights it found; waits until they are served.

    \b
    Example:
      cutover abort --outputs prod.json
    """
    ctx = Context(outputs, stack, journal)
    latest = ctx.deployment(None)
    if latest is None or not latest.status.active:
        say("No shift in progress; nothing to abort.")
        return
    _give_back(ctx, latest, timeout, 600)


@click.command()
@outputs_options
@click.option("--deployment", "deployment_id", help="A deployment id (default: the latest).")
@click.option(
    "--scale-timeout",
    type=DURATION,
    default="10m",
    show_default=True,
    help="How long to wait for a scaled-down color to be healthy again.",
)
@timeout_option("60s", "a running shift to give traffic back")
def rollback(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    deployment_id: str | None,
    scale_timeout: float,
    timeout: float,
) -> None:
    """Restore the weights a deployment found: at once when its process is gone, by asking it
    to abort (and waiting) while it still runs.

    \b
    Example:
      cutover rollback --outputs prod.json
    """
    ctx = Context(outputs, stack, journal)
    deployment = ctx.deployment(deployment_id)
    if deployment is None:
        say("No deployment in the journal; nothing to roll back.")
        return
    _give_back(ctx, deployment, timeout, scale_timeout)


def _give_back(ctx: Context, deployment: Deployment, timeout: float, scale_timeout: float) -> None:
    """Ask a live shift to abort and wait for its restore; otherwise restore here."""
    from cutover.shift import ABORT

    holder = ctx.live_holder()
    if (
        deployment.status.active
        and holder is not None
        and holder.get("deployment") == deployment.id
    ):
        ctx.journal.request(ctx.scope, deployment.id, ABORT)
        say(
            f"Asked deployment {deployment.id} ({holder.get('who')} on {holder.get('host')}) to give traffic back."
        )
        _await_restore(ctx, deployment.id, timeout)
        return
    if deployment.status.active:
        say(
            f"Deployment {deployment.id} was interrupted (its process is gone); restoring the weights it found."
        )
    _rollback_here(ctx, deployment, scale_timeout)


def _await_restore(ctx: Context, deployment_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = ctx.deployment(deployment_id)
        if found is not None and found.status.finished:
            break
        if time.monotonic() >= deadline:
            raise DeploymentFailed(
                f"deployment {deployment_id} has not given traffic back after {timeout:g}s; its "
                "process is not responding. When its lease expires, `cutover rollback` restores "
                "the weights it found"
            )
        time.sleep(POLL_SECONDS)
    _report_restore(found)


def _report_restore(deployment: Deployment) -> None:
    from cutover.restore import describe

    found = deployment.start_weights
    split = describe(found[0]) if found else "the weights it found"
    timings = deployment.timings
    if timings.restore_verified:
        seconds = timings.rollback_seconds or 0.0
        say(
            f"Deployment {deployment.id} rolled back: {split} served again (restored in {seconds:.3f}s)."
        )
        return
    raise DeploymentFailed(
        f"deployment {deployment.id}: restored weights written ({split}); not yet confirmed "
        f"served after {deployment.options.verify_timeout:g}s"
    )


def _rollback_here(ctx: Context, deployment: Deployment, scale_timeout: float) -> None:
    from cutover.fleet import ensure_full_capacity
    from cutover.interrupt import Interrupts

    def capacity(color: str) -> None:
        for s in ctx.services:
            ensure_full_capacity(s.outputs, s.fleet, color, scale_timeout, say)  # type: ignore[arg-type]

    done = ctx.shift(Interrupts(say)).rollback(deployment, capacity)
    _report_restore(done)


@click.command()
@outputs_options
def resume(outputs: tuple[Path, ...], stack: str | None, journal: str) -> None:
    """Continue an interrupted shift from its last verified step.

    \b
    Example:
      cutover resume --outputs prod.json
    """
    from cutover.interrupt import Interrupts

    ctx = Context(outputs, stack, journal)
    deployment = ctx.deployment(None)
    if deployment is None or not deployment.status.active:
        say("No interrupted shift to resume.")
        return
    shifter = ctx.shift(Interrupts(say))
    shifter.resume(deployment)
    step = max(deployment.step, 0)
    say(f"Resuming deployment {deployment.id} at step {step + 1}/{len(deployment.plan)}.")
    shifter.run(from_step=step)
    say(f"Shift {deployment.id} succeeded.")


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
