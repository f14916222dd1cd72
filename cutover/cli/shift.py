"""`cutover shift` and `cutover drill`: move traffic under guards (a drill moves it back)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cutover_gates.contract import KINDS, Color

from cutover.cli.common import (
    BAKE,
    COLOR,
    DURATION_FORMS,
    INTERVAL,
    NEW_FILE,
    Context,
    Parsed,
    analysis_options,
    duration,
    gate_options,
    outputs_options,
    stack_config_option,
    text,
)
from cutover.cli.output import output_option, progress_in_place, result, say
from cutover.deployment import Options
from cutover.engine.plan import STRATEGIES, plan_shift
from cutover.errors import EXIT_CODES, ConfigError, DeploymentFailed
from cutover.exit_gates import judge_stage_exit
from cutover.inputs import probe, steps
from cutover.interrupt import Interrupted, Interrupts
from cutover.outputs import analysis_of
from cutover.pack_config import load_gates_config
from cutover.preflight import gate_judge, load_records, preflight
from cutover.summary import outcome_json
from cutover.timing import analysis_said, check_timing

if TYPE_CHECKING:
    from cutover_gates.stack_outputs import StackOutputs

    from cutover.deployment import Deployment, Options
    from cutover.engine.shift import Gates
    from cutover.weights import Weights


@click.command(epilog=EXIT_CODES)
@outputs_options
@click.option("--to", "target", required=True, type=COLOR, help="The color to move traffic to.")
@click.option(
    "--steps",
    "plan_steps",
    type=Parsed("PERCENTS", steps),
    help="Percentages to step through, e.g. 10,50,100.",
)
@click.option(
    "--strategy",
    type=click.Choice(["all-at-once", "canary", "linear"]),
    help="all-at-once: 100; canary: 5,25,50,100; linear (default): 10,20,...,100.",
)
@click.option(
    "--bake",
    type=BAKE,
    default="60s",
    show_default=True,
    help=f"How long each step is watched before the next ({DURATION_FORMS}; at most 1d).",
)
@click.option(
    "--interval", type=INTERVAL, default="5s", show_default=True, help="Guard polling interval."
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "assisted", "manual"]),
    default="auto",
    show_default=True,
    help="auto: no pauses; assisted: pause before the last step; manual: pause before every step.",
)
@click.option(
    "--deadline",
    type=duration("7d"),
    help="Bound on the whole shift; past it, roll back (longer than steps x bake + verification).",
)
@click.option(
    "--verify-timeout",
    type=duration("1h"),
    default="30s",
    show_default=True,
    help="How long a written split may take to be served before it counts as failed.",
)
@click.option(
    "--probe",
    "probes",
    multiple=True,
    type=Parsed("URL[=STATUS]", probe),
    help="URL[=STATUS] polled as a guard (default 200).",
)
@click.option(
    "--smoke",
    type=text("a command to run against the test listener"),
    help="Command run against the test listener first (CUTOVER_TEST_URL).",
)
@gate_options
@click.option(
    "--min-healthy",
    type=click.IntRange(min=1),
    help="Healthy targets or ready replicas the target color needs (default: its capacity).",
)
@analysis_options
@click.option(
    "--verify-for",
    type=BAKE,
    help="How long to keep watching at 100% before the shift counts as succeeded "
    "(default: the stack's cutover:analysis.verifyMinutes).",
)
@stack_config_option
@click.option(
    "--id-file",
    type=NEW_FILE,
    help="Write the deployment's id here once it is journaled, before any traffic moves (a "
    "pipeline gives back only what its own run started: `cutover rollback --deployment`); "
    "its folder must exist.",
)
@output_option
def shift(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    target: Color,
    plan_steps: list[int] | None,
    strategy: str | None,
    bake: float,
    interval: float,
    mode: str,
    deadline: float | None,
    verify_timeout: float,
    probes: tuple[tuple[str, int], ...],
    smoke: str | None,
    gates_config: Path,
    records: Path,
    min_healthy: int | None,
    max_inconclusive: int,
    analysis: str,
    verify_for: float | None,
    stack_config: Path | None,
    id_file: Path | None,
    fmt: str,
) -> None:
    """Move traffic to a color in steps under guards; roll back to the exact prior weights on
    failure, on `cutover abort`, past --deadline, or on Ctrl-C/SIGTERM.

    Guards (alarms, ready instances, probes, and the metric analysis of the target color
    against the other) run through every bake and every pause, and through the verification
    at 100% (--verify-for) before the shift counts as succeeded. While
    paused, `cutover promote` continues and `cutover promote --full` skips the remaining
    pauses and bakes. Every flag, file and the plan's timing are checked before anything is
    journaled, locked or moved.

    \b
    Example:
      cutover shift --outputs prod.json --to green --strategy canary --bake 5m \\
        --gates-config gates/pack-config.json --records gates/prod
    """
    if plan_steps and strategy:
        raise click.UsageError("give --steps or --strategy, not both")
    options = Options(
        target=target,
        steps=plan_steps or STRATEGIES[strategy or "linear"],
        bake=bake,
        interval=interval,
        mode=mode,  # type: ignore[arg-type]  # click.Choice of the same three
        deadline=deadline,
        probes=list(probes),
        max_inconclusive=max_inconclusive,
        verify_timeout=verify_timeout,
        analysis=analysis == "on",
    )
    pack_config = load_gates_config(gates_config)
    found_records = load_records(records)
    ctx = Context(outputs, stack, journal)
    options.verify_for = verify_seconds(ctx.all_outputs) if verify_for is None else verify_for
    analysis_line = analysis_said([analysis_of(o) for o in ctx.all_outputs], options)  # checks them
    steps_left = planned_steps([s.router.served() for s in ctx.services], options)
    if not steps_left:
        line = f"{target} already serves all traffic; nothing to shift."
        result(line, {"deployment": None, "status": "nothing to shift"})
        return
    check_timing([analysis_of(o) for o in ctx.all_outputs], options, steps_left)
    gates = gate_judge(ctx.services, ctx.journal, target, list(KINDS), gates_config, records)
    interrupts = Interrupts(say)
    with interrupts:  # from before the smoke test: a signal there moves nothing, exit 1
        try:
            preflight(ctx.services, options, gates, min_healthy, smoke, say)
        except Interrupted as e:
            raise DeploymentFailed(
                f"interrupted by {e.name} before any traffic moved; nothing was changed"
            ) from None
        done = run_shift(ctx, gates, interrupts, options, analysis_line, id_file, stack_config)
        with interrupts.shielded():  # the config follows an accepted success, always
            ctx.write_back(stack_config, done.plan[-1], f"shift {done.id} succeeded")
        if interrupts.pending:
            say(f"{interrupts.pending} after the shift succeeded: the exit gates were not "
                "judged; run `cutover exit-gates`.")  # fmt: skip
        else:
            try:
                say_exit_gates(ctx, found_records, pack_config)
            except Interrupted as e:
                say(f"{e.name} after the shift succeeded: the exit gates were not judged; run "
                    "`cutover exit-gates`.")  # fmt: skip
    result(None, outcome_json(done))  # said as it happened


def planned_steps(served: list[Weights], options: Options) -> int:
    """How many steps the shift takes from what is served now (the most of any service)."""
    return max(len(plan_shift(w, options.target, options.steps)) for w in served)


def run_shift(
    ctx: Context,
    gates: Gates,
    interrupts: Interrupts,
    options: Options,
    analysis_line: str,
    id_file: Path | None,
    stack_config: Path | None,
) -> Deployment:
    """Start and run the shift; on a rollback, the stack's config follows what is served
    again, then DeploymentFailed."""
    with progress_in_place() as log:
        shifter = ctx.shift(gates, interrupts, log)
        with interrupts.shielded():  # a signal while starting is acted on once it has started
            deployment = shifter.start(options)
            if id_file is not None:
                write_id(id_file, deployment.id)
        log(f"Deployment {deployment.id}: {len(deployment.plan)} step(s) towards {options.target}.")
        log(analysis_line)
        try:
            done = shifter.run()
        except DeploymentFailed:
            failed = ctx.deployment(deployment.id)
            with interrupts.shielded():
                ctx.write_back_restored(stack_config, failed)
            if failed is not None:
                result(None, outcome_json(failed))  # the error line says it for people
            raise
        log(f"Shift {deployment.id} succeeded: {options.target} serves all traffic.")
    return done


def write_id(path: Path, deployment_id: str) -> None:
    try:
        path.write_text(deployment_id + "\n")
    except OSError as e:
        raise ConfigError(f"--id-file {path}: cannot write it ({e.strerror})") from None


def verify_seconds(all_outputs: list[StackOutputs]) -> float:
    """The stacks' verification at 100%: the longest `cutover:analysis.verifyMinutes`."""
    found = [analysis_of(o) for o in all_outputs]
    return max((60 * s.verify_minutes for s in found if s), default=0.0)


def say_exit_gates(
    ctx: Context, found_records: list[tuple[Path, Any]], pack_config: dict[str, Any]
) -> None:
    """The stage's exit gates after a shift (informational; `cutover exit-gates` signs them)."""
    try:
        for judged in judge_stage_exit(
            ctx.services, ctx.journal, ctx.scope, found_records, pack_config
        ):
            say(judged.render())
    except Exception as e:  # noqa: BLE001 - the shift succeeded; its verdict is told, not fatal
        say(
            f"The exit gates could not be judged ({type(e).__name__}: {e}); run `cutover exit-gates`."
        )
