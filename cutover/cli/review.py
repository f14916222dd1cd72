"""Reviewing: the offline preview of an update with the policy pack, and deployment reports."""

from __future__ import annotations

import json
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cutover.cli.common import (
    FILE,
    FOLDER,
    OUT_FOLDER,
    Context,
    duration,
    gate_options_of,
    outputs_options,
    text,
)
from cutover.cli.output import output_option, result
from cutover.deployment import new_deployment_id
from cutover.errors import ConfigError, JudgedUnmet
from cutover.exit_gates import judge_stage_exit
from cutover.pack_config import load_gates_config, load_pack_config
from cutover.preflight import load_records
from cutover.report import kpis as key_figures
from cutover.report import kpis_markdown, report_json, report_markdown

if TYPE_CHECKING:
    from cutover.deployment import Deployment


@click.command()
@outputs_options
@click.option(
    "--deployment",
    "deployment_id",
    type=text("a deployment id"),
    help="A deployment id (default: the latest).",
)
@output_option
@click.option(
    "--out",
    type=OUT_FOLDER,
    default=".",
    show_default=True,
    help="Folder for the report (Markdown, or JSON with --output json) and its plot.",
)
@click.option("--plot", is_flag=True, help="Also draw the weights and guards (cutover[plots]).")
@gate_options_of(required=False)
def report(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    deployment_id: str | None,
    fmt: str,
    out: Path,
    plot: bool,
    gates_config: Path | None,
    records: Path | None,
) -> None:
    """Timeline, success rate, downtime and rollback time of a deployment (--plot: with a plot).

    \b
    With --records and --gates-config it also judges the stage's exit gates (as
    `cutover exit-gates` does).

    \b
    Example:
      cutover report --outputs prod.json --out reports --plot --records gates/prod \\
        --gates-config gates/pack-config.json
    """
    draw: Callable[[Deployment, Path], Path] | None = None
    if plot:  # before anything is read or written: without cutover[plots], exit 2 naming it
        from cutover.plot import plot as draw  # needs matplotlib: cutover[plots]

    ctx = Context(outputs, stack, journal)
    doc = ctx.deployment(deployment_id)
    if doc is None:
        result("No deployment in the journal yet.", {"report": None})
        return
    gates = None
    if records is not None and gates_config is not None:
        found = load_records(records)
        pack = load_gates_config(gates_config)
        judged = judge_stage_exit(ctx.services, ctx.journal, ctx.scope, found, pack)
        gates = [j.to_json() for j in judged]
    data = report_json(doc, ctx.journal.summaries(ctx.scope), gates)
    plot_to = (lambda path: draw(doc, path)) if draw else None
    written = write_out(out, f"deployment-{doc.id}", fmt, plot_to,
                        lambda image: report_markdown(data, image),
                        lambda image: {**data, **({"plot": str(image)} if image else {})})  # fmt: skip
    result(written.line("Report"), {"report": str(written.path), "plot": written.image})


@click.command("preview")
@click.option(
    "--stack",
    default="prod",
    show_default=True,
    help="The stack whose Pulumi.<stack>.yaml is previewed.",
)
@click.option(
    "--project-dir",
    type=FOLDER,
    default=".",
    show_default=True,
    help="The cutover project folder (with Pulumi.yaml).",
)
@click.option(
    "--stack-file",
    type=FILE,
    help="A stack config file to use instead of <project-dir>/Pulumi.<stack>.yaml.",
)
@click.option(
    "--policy-pack",
    "pack_dir",
    type=FOLDER,
    default="policies",
    show_default=True,
    help="The policy pack folder, started as the Pulumi engine starts it.",
)
@click.option(
    "--policy-pack-config",
    "pack_config_file",
    type=FILE,
    help="The pack config JSON, as for `pulumi preview --policy-pack-config`.",
)
@click.option(
    "--previous",
    "previous_file",
    type=FILE,
    help="`pulumi stack output --json` of the stack now: what traffic moves from.",
)
@click.option(
    "--previous-stack-file",
    type=FILE,
    help="An earlier version of the stack file (a pull request's base branch): the update is "
    "compared with what the program left for it.",
)
@output_option
def preview_command(
    stack: str,
    project_dir: Path,
    stack_file: Path | None,
    pack_dir: Path,
    pack_config_file: Path | None,
    previous_file: Path | None,
    previous_stack_file: Path | None,
    fmt: str,
) -> None:
    """What an update would declare, and whether the gates let it through, without cloud credentials.

    Exit 0 when no mandatory policy is violated, 1 when one is, 2 for bad input.

    \b
    Example:
      cutover preview --stack prod --policy-pack-config policies/config/prod.json \\
        --previous outputs.json
    """
    from cutover.preview import preview, render_json, render_text  # needs cutover[preview]

    project_dir = project_dir.resolve()
    if not (project_dir / "Pulumi.yaml").is_file():
        raise ConfigError(
            f"--project-dir {project_dir}: no Pulumi.yaml; expected the cutover project folder"
        )
    if stack_file is None and not (project_dir / f"Pulumi.{stack}.yaml").is_file():
        raise ConfigError(f"--stack {stack}: no {project_dir / f'Pulumi.{stack}.yaml'}")
    previous = None
    if previous_file is not None and previous_stack_file is not None:
        raise ConfigError("give --previous or --previous-stack-file, not both")
    if previous_stack_file is not None:
        from cutover.preview import previous_of_stack_file  # needs cutover[preview]

        previous = previous_of_stack_file(project_dir, stack, previous_stack_file.resolve())
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
        raise JudgedUnmet()  # the text already ends with the one "Blocked" line


@click.command()
@outputs_options
@click.option(
    "--since",
    type=duration("36500d"),
    default="30d",
    show_default=True,
    help="How far back: deployments started since then.",
)
@output_option
@click.option(
    "--out",
    type=OUT_FOLDER,
    help="Folder to write kpis.md (or kpis.json with --output json) into (default: print only).",
)
@click.option("--plot", is_flag=True, help="Also draw kpis.png into --out (cutover[plots]).")
def kpis(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    since: float,
    fmt: str,
    out: Path | None,
    plot: bool,
) -> None:
    """The stage's key figures across deployments: success rate, downtime, rollback time.

    From each deployment's summary in the journal (a paginated query from --since on, never
    a scan, reading no whole document): how many shifts finished and succeeded, total and
    per-deployment downtime, rollback time as p50, p95 and max, the mean shift duration, and
    the DORA figures: deployment frequency, change failure rate, time to restore.

    \b
    Example:
      cutover kpis --outputs prod.json --since 90d --out reports
    """
    kpi_plot: Callable[[dict[str, Any], Path], Path] | None = None
    if plot:  # before anything is read or written: without cutover[plots], exit 2 naming it
        if out is None:
            raise click.UsageError("--plot writes kpis.png: give --out FOLDER")
        from cutover.plot import kpi_plot  # needs matplotlib: cutover[plots]

    ctx = Context(outputs, stack, journal)
    since_id = new_deployment_id(clock.time() - since).split("-", 1)[0]
    summaries = ctx.journal.summaries(ctx.scope, since_id)
    data = {"since": since_id, **key_figures(summaries, since / 86400)}
    data["skippedJournalItems"] = len(ctx.journal.skipped)  # named on stderr
    if out is None:
        click.echo(json.dumps(data, indent=2) if fmt == "json" else kpis_markdown(data))
        return
    plot_to = (lambda path: kpi_plot(data, path)) if kpi_plot else None
    written = write_out(out, "kpis", fmt, plot_to, lambda _: kpis_markdown(data) + "\n",
                        lambda _: data)  # fmt: skip
    result(written.line("KPIs"), {"kpis": str(written.path), "plot": written.image})


@dataclass(frozen=True)
class Written:
    path: Path
    image: str | None

    def line(self, what: str) -> str:
        return f"{what}: {self.path}" + (f"\nPlot: {self.image}" if self.image else "")


def write_out(
    out: Path,
    name: str,
    fmt: str,
    draw: Callable[[Path], Path] | None,
    markdown: Callable[[Path | None], str],
    document: Callable[[Path | None], dict[str, Any]],
) -> Written:
    """Write `name`.md (or .json) and its plot into `out` (made if missing); ConfigError
    naming --out when the folder refuses them (checked before, but a disk can fill)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        image = draw(out / f"{name}.png") if draw else None
        if fmt == "json":
            path = out / f"{name}.json"
            path.write_text(json.dumps(document(image), indent=2) + "\n")
        else:
            path = out / f"{name}.md"
            path.write_text(markdown(image))
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write into it ({e.strerror})") from None
    return Written(path, str(image) if image else None)
