"""`cutover status`: what is served now, each color's fleet and alarms, and the latest deployment."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from cutover_gates.contract import COLORS, Status

from cutover.cli.common import Context, outputs_options, say


@click.command()
@outputs_options
@click.option(
    "--output",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Text for people, JSON for scripts.",
)
def status(outputs: tuple[Path, ...], stack: str | None, journal: str, fmt: str) -> None:
    """Weights per color, ready instances, alarms, and the deployment in progress.

    \b
    Example:
      cutover status --outputs prod.json --output json
    """
    ctx = Context(outputs, stack, journal)
    services: list[dict[str, Any]] = []
    for service in ctx.services:
        o = service.outputs
        names = [n for c in COLORS for n in o.alarm_names[c]]
        alarms = []
        if names:
            from cutover.aws import client

            alarms = client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
        services.append(
            {
                "service": o.name,
                "route": o.route_key,
                "weights": service.router.served(),
                "ready": {c: service.fleet.ready(c) for c in COLORS},
                "readyUnit": service.fleet.unit,
                "releases": {c: o.releases[c].get("version") for c in COLORS},
                "alarms": {a["AlarmName"]: a["StateValue"] for a in alarms},
            }
        )
    latest = ctx.deployment(None)
    holder = ctx.live_holder()
    deployment = None
    if latest is not None:
        state = latest.state(lease_live=holder is not None)
        deployment = {
            "id": latest.id,
            "status": str(state),
            "target": latest.target,
            "step": latest.step + 1,
            "steps": len(latest.plan),
            "startedBy": latest.holder.get("who"),
            "doing": latest.activity(time.time())
            if state.active and state != Status.INTERRUPTED
            else None,
        }
    result: dict[str, Any] = {"services": services, "deployment": deployment, "lock": holder}
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    for s in services:
        w = s["weights"]
        say(f"{s['service']}: blue {w['blue']} / green {w['green']}")
        for c in COLORS:
            say(f"  {c}: release {s['releases'][c]}, {s['ready'][c]} {s['readyUnit']}")
        for name, value in sorted(s["alarms"].items()):
            say(f"  alarm {name}: {value}")
    if deployment:
        say(
            f"deployment {deployment['id']}: {deployment['status']} towards {deployment['target']} "
            f"(step {deployment['step']}/{deployment['steps']})"
        )
        if deployment["doing"]:
            say(f"  now: {deployment['doing']}")
        if deployment["status"] == Status.INTERRUPTED:
            say(
                "  its process is gone: `cutover rollback` restores the weights it found, `cutover resume` continues"
            )
    else:
        say("no deployment in the journal")
    if holder:
        say(
            f"lock held by deployment {holder['deployment']} ({holder['who']} on {holder['host']}, pid {holder['pid']})"
        )
