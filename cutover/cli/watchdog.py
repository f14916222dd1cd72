"""`cutover watchdog`: one watchdog pass from the command line (and the CronJob)."""

from __future__ import annotations

from pathlib import Path

import click

from cutover.cli.common import Context, outputs_options
from cutover.cli.output import output_option, result, say
from cutover.engine.watchdog import notifier_for_services, watch_once
from cutover.errors import DeploymentFailed
from cutover.interrupt import Interrupts
from cutover.journal.items import damaged


@click.command()
@outputs_options
@click.option(
    "--once",
    is_flag=True,
    help="One pass and exit, which is what it always does (the stack's schedule, EventBridge "
    "or a CronJob, runs the passes); accepted for the schedules that pass it.",
)
@output_option
def watchdog(
    outputs: tuple[Path, ...], stack: str | None, journal: str, once: bool, fmt: str
) -> None:
    """Give back the traffic of every deployment whose process stopped renewing its lease.

    Never touches a deployment whose holder is alive; takes the lease with the same
    conditional write as every other command, so concurrent passes never both act. Exit 0
    when nothing needed doing or everything found was restored; 1 when a restore failed or a
    journal item could not be read, once every other deployment was looked after.

    \b
    Example:
      cutover watchdog --outputs prod.json
    """
    ctx = Context(outputs, stack, journal)
    interrupts = Interrupts(say)
    with interrupts, interrupts.shielded():  # a pass is bounded: a signal never cuts a restore
        findings = watch_once(ctx.services, ctx.journal, notifier_for_services(say), say)
    lines = [finding.line() for finding in findings] or ["nothing to do: no deployment in progress"]
    found = [{"deployment": f.deployment, "action": f.action, "detail": f.detail} for f in findings]
    result("\n".join(lines), {"findings": found})
    failed = [f for f in findings if f.action == "failed"]
    unreadable = damaged(ctx.journal.skipped)
    if failed or unreadable:
        said = [f"{len(failed)} restore(s) failed"] if failed else []
        said += [f"{len(unreadable)} journal item(s) could not be read"] if unreadable else []
        raise DeploymentFailed("; ".join(said) + " (every other deployment was looked after)")
