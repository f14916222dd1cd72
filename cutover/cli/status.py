"""`cutover status`: what is served now, each color's fleet and alarms, and the latest deployment."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from cutover_gates.contract import Status

from cutover.cli.common import Context, duration, outputs_options
from cutover.cli.output import output_option, result, say
from cutover.deployment import Deployment
from cutover.errors import DeploymentFailed
from cutover.status import StatusReport
from cutover.view import exit_code, lines


@click.command()
@outputs_options
@output_option
@click.option(
    "--watch",
    "-w",
    is_flag=True,
    help="Follow the latest deployment until it finishes; exit 0 if it succeeded, 1 if not.",
)
@click.option(
    "--interval",
    type=duration("1h"),
    default="2s",
    show_default=True,
    help="How often --watch refreshes.",
)
@click.option("--timeout", type=duration("7d"), help="Stop watching after this long (exit 1).")
def status(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    fmt: str,
    watch: bool,
    interval: float,
    timeout: float | None,
) -> None:
    """Weights per color, ready instances, alarms, and the deployment in progress.

    With --watch: each step with its state (done, baking with time left, paused, pending),
    the served weights, the guards' last verdicts, the lock holder and the next action, live
    on a terminal, as plain lines when something changed (at least every 10 s) in a CI log.

    \b
    Examples:
      cutover status --outputs prod.json --output json
      cutover status --outputs prod.json --watch --timeout 2h
    """
    ctx = Context(outputs, stack, journal)
    if watch:
        follow(ctx, interval, timeout)
        return

    report = StatusReport.gather(
        ctx.services, ctx.deployment(None), ctx.live_holder(), len(ctx.journal.skipped), time.time()
    )
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    for line in report.render():
        say(line)


PLAIN_REPEAT_SECONDS = 10.0


def follow(ctx: Context, interval: float, timeout: float | None) -> None:
    """`status --watch`: refresh until the latest deployment finishes, then exit with its
    code: 0 succeeded, 1 rolled back, or gone from the journal (its outcome unknown)."""
    first = ctx.deployment(None)
    if first is None:
        say("no deployment in the journal")
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    terminal = sys.stdout.isatty()
    live = _live() if terminal else None
    shown: tuple[Any, ...] | None = None
    shown_at = 0.0
    try:
        while True:
            found = ctx.journal.load(ctx.scope, first.id)
            if found is None:
                raise DeploymentFailed(
                    f"deployment {first.id} is no longer in the journal; its outcome is unknown"
                )
            view, key, state = _view(ctx, found)
            if live is not None:
                live.update(_table(view), refresh=True)
            elif key != shown or time.monotonic() - shown_at >= PLAIN_REPEAT_SECONDS:
                say("\n".join(view))
                shown, shown_at = key, time.monotonic()
            if state.finished:
                result(None, {"deployment": first.id, "status": str(state)})
                code = exit_code(state)
                if code:
                    raise DeploymentFailed(f"deployment {first.id} {state}")
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise DeploymentFailed(
                    f"deployment {first.id} is still {state} after --timeout {timeout:g}s"
                )
            time.sleep(interval)
    finally:
        if live is not None:
            live.stop()


def _view(ctx: Context, latest: Deployment) -> tuple[list[str], tuple[Any, ...], Status]:
    """The lines to show, what they depend on (not the countdown), and the deployment's state."""
    holder = ctx.live_holder()
    state = latest.state(lease_live=holder is not None)
    served = {s.outputs.name: s.router.served() for s in ctx.services}
    guards = latest.samples[-1].guards if latest.samples else {}
    key = (state, latest.step, latest.pause_index, str(served), str(sorted(guards.items())))
    return lines(latest, state, served, holder, time.time()), key, state


def _live() -> Any:
    from rich.live import Live  # slow to import: only a terminal draws in place

    live = Live(auto_refresh=False, transient=False)
    live.start()
    return live


def _table(view: list[str]) -> Any:
    """The view as a rich table: the headline, then one row a fact."""
    from rich.table import Table  # slow to import: only a terminal draws in place

    table = Table(title=view[0], show_header=False, box=None, title_justify="left")
    for line in view[1:]:
        table.add_row(line.strip())
    return table
