"""`cutover shift` and `cutover drill`: move traffic under guards (a drill moves it back)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cutover_gates.contract import APPROVAL, KINDS, ROLLBACK_DRILL, SECURITY_SIGNOFF, Color

from cutover.cli.common import (
    COLOR,
    DURATION,
    DURATION_FORMS,
    DURATION_OR_ZERO,
    Context,
    deploy_key_options,
    gate_options,
    outputs_options,
    progress_in_place,
    say,
    stack_config_option,
)
from cutover.errors import EXIT_CODES, ConfigError, DeploymentFailed
from cutover.interrupt import Interrupted, Interrupts

if TYPE_CHECKING:
    from cutover.deployment import Deployment, Options
    from cutover.engine.shift import Gates
    from cutover.outputs import StackOutputs


def analysis_options(fn: Any) -> Any:
    """--max-inconclusive and --analysis: how the guards' verdicts count (shift and drill)."""
    fn = click.option(
        "--analysis",
        type=click.Choice(["on", "off"]),
        default="on",
        show_default=True,
        help="off: no metric analysis of the target against the baseline this time (journaled).",
    )(fn)
    return click.option(
        "--max-inconclusive",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="Guard polls in a row that may be inconclusive before traffic is given back.",
    )(fn)


@click.command(epilog=EXIT_CODES)
@outputs_options
@click.option("--to", "target", required=True, type=COLOR, help="The color to move traffic to.")
@click.option("--steps", help="Percentages to step through, e.g. 10,50,100.")
@click.option(
    "--strategy",
    type=click.Choice(["all-at-once", "canary", "linear"]),
    help="all-at-once: 100; canary: 5,25,50,100; linear (default): 10,20,...,100.",
)
@click.option(
    "--bake",
    type=DURATION_OR_ZERO,
    default="60s",
    show_default=True,
    help=f"How long each step is watched before the next ({DURATION_FORMS}).",
)
@click.option(
    "--interval", type=DURATION, default="5s", show_default=True, help="Guard polling interval."
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "assisted", "manual"]),
    default="auto",
    show_default=True,
    help="auto: no pauses; assisted: pause before the last step; manual: pause before every step.",
)
@click.option("--deadline", type=DURATION, help="Bound on the whole shift; past it, roll back.")
@click.option(
    "--verify-timeout",
    type=DURATION,
    default="30s",
    show_default=True,
    help="How long a written split may take to be served before it counts as failed.",
)
@click.option(
    "--probe", "probes", multiple=True, help="URL[=STATUS] polled as a guard (default 200)."
)
@click.option("--smoke", help="Command run against the test listener first (CUTOVER_TEST_URL).")
@gate_options
@click.option(
    "--min-healthy",
    type=click.IntRange(min=1),
    help="Healthy targets or ready replicas the target color needs (default: its capacity).",
)
@analysis_options
@click.option(
    "--verify-for",
    type=DURATION_OR_ZERO,
    help="How long to keep watching at 100% before the shift counts as succeeded "
    "(default: the stack's cutover:analysis.verifyMinutes).",
)
@stack_config_option
@click.option(
    "--id-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the deployment's id here once it is journaled, before any traffic moves (a "
    "pipeline gives back only what its own run started: `cutover rollback --deployment`).",
)
def shift(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    target: Color,
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
    analysis: str,
    verify_for: float | None,
    stack_config: Path | None,
    id_file: Path | None,
) -> None:
    """Move traffic to a color in steps under guards; roll back to the exact prior weights on
    failure, on `cutover abort`, past --deadline, or on Ctrl-C/SIGTERM.

    Guards (alarms, ready instances, probes, and the metric analysis of the target color
    against the other) run through every bake and every pause, and through the verification
    at 100% (--verify-for) before the shift counts as succeeded. While
    paused, `cutover promote` continues and `cutover promote --full` skips the remaining
    pauses and bakes.

    \b
    Example:
      cutover shift --outputs prod.json --to green --strategy canary --bake 5m \\
        --gates-config gates/pack-config.json --records gates/prod
    """
    from cutover_gates.contract import share

    from cutover.deployment import Options
    from cutover.engine.plan import STRATEGIES, parse_steps, plan_shift
    from cutover.pack_config import load_gates_config
    from cutover.preflight import gate_judge, load_records, preflight
    from cutover.timing import check_timing

    if steps and strategy:
        raise click.BadParameter("give --steps or --strategy, not both")
    try:
        plan_steps = parse_steps(steps) if steps else STRATEGIES[strategy or "linear"]
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    options = Options(
        target=target,
        steps=plan_steps,
        bake=bake,
        interval=interval,
        mode=mode,  # type: ignore[arg-type]  # click.Choice of the same three
        deadline=deadline,
        probes=[_probe(p) for p in probes],
        max_inconclusive=max_inconclusive,
        verify_timeout=verify_timeout,
        analysis=analysis == "on",
    )
    pack_config = load_gates_config(gates_config)
    found_records = load_records(records)
    ctx = Context(outputs, stack, journal)
    options.verify_for = verify_seconds(ctx.all_outputs) if verify_for is None else verify_for
    analysis_line = analysis_said(ctx.all_outputs, options)  # reads (and checks) `analysis`
    served = [s.router.served() for s in ctx.services]
    if all(share(w, target) == 1.0 for w in served):
        say(f"{target} already serves all traffic; nothing to shift.")
        return
    steps_left = max(len(plan_shift(w, target, options.steps)) for w in served)
    check_timing([o.analysis for o in ctx.all_outputs], options, steps_left)
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
            return
        try:
            say_exit_gates(ctx, found_records, pack_config)
        except Interrupted as e:
            say(f"{e.name} after the shift succeeded: the exit gates were not judged; run "
                "`cutover exit-gates`.")  # fmt: skip


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
    return max((60 * o.analysis.verify_minutes for o in all_outputs if o.analysis), default=0.0)


def analysis_said(all_outputs: list[StackOutputs], options: Options) -> str:
    """One line on what judges the target against the baseline during this shift."""
    from cutover.analysis import points

    on = [o.analysis for o in all_outputs if o.analysis and o.analysis.enabled]
    if not options.analysis:
        return "Metric analysis off for this shift (--analysis off)."
    if not on:
        return "Metric analysis: not enabled on the stack (cutover:analysis.enabled)."
    period = max(a.period_seconds for a in on)
    return (
        f"Metric analysis: {options.target} against the other color per {period}s window "
        f"(error rate +{points(on[0].max_error_rate_increase)}, {on[0].latency_statistic} "
        f"latency +{on[0].max_latency_increase_percent:g}%, at least {on[0].min_requests} "
        "requests a window)."
    )


def say_exit_gates(
    ctx: Context, found_records: list[tuple[Path, Any]], pack_config: dict[str, Any]
) -> None:
    """The stage's exit gates after a shift (informational; `cutover exit-gates` signs them)."""
    from cutover.exit_gates import judge_stage_exit

    try:
        for judged in judge_stage_exit(
            ctx.services, ctx.journal, ctx.scope, found_records, pack_config
        ):
            say(judged.render())
    except Exception as e:  # noqa: BLE001 - the shift succeeded; its verdict is told, not fatal
        say(
            f"The exit gates could not be judged ({type(e).__name__}: {e}); run `cutover exit-gates`."
        )


def _probe(text: str) -> tuple[str, int]:
    url, _, status = text.partition("=")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"--probe {text!r}: expected URL or URL=STATUS")
    try:
        return url, int(status or 200)
    except ValueError:
        raise click.BadParameter(f"--probe {text!r}: status must be a number") from None


@click.command()
@outputs_options
@click.option("--to", "target", required=True, type=COLOR, help="The color to drill.")
@click.option(
    "--percent",
    type=click.IntRange(1, 50),
    default=5,
    show_default=True,
    help="The share of traffic the drill moves to the color and back.",
)
@click.option(
    "--bake",
    type=DURATION_OR_ZERO,
    default="30s",
    show_default=True,
    help="How long the drill step is watched.",
)
@click.option(
    "--interval", type=DURATION, default="5s", show_default=True, help="Guard polling interval."
)
@analysis_options
@gate_options
@deploy_key_options("drill")
def drill(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    target: Color,
    percent: int,
    bake: float,
    interval: float,
    analysis: str,
    max_inconclusive: int,
    gates_config: Path,
    records: Path,
    key_file: Path | None,
    kms_key: str | None,
    valid_for: float,
) -> None:
    """A timed rollback drill: a small step to a color and back; signs a rollback-drill record
    into --records, which the rollback-tested gate requires before a color reaches 100%.

    \b
    Example:
      cutover drill --outputs prod.json --to green --percent 5 \\
        --gates-config gates/pack-config.json --records gates/prod
    """
    from datetime import UTC, datetime

    from cutover_gates.contract import other_color

    from cutover.deployment import Options
    from cutover.gate_record import check_trusted, sign_release_record, signer_of
    from cutover.pack_config import load_gates_config
    from cutover.preflight import gate_judge, preflight
    from cutover.timing import check_timing

    pack_config = load_gates_config(gates_config)
    signer = signer_of(key_file, kms_key, "CUTOVER_DEPLOY_KEY")
    check_trusted(signer, ROLLBACK_DRILL, pack_config, datetime.now(UTC))  # before moving traffic
    ctx = Context(outputs, stack, journal)
    for service in ctx.services:
        if service.router.served()[other_color(target)] == 0:
            raise ConfigError(
                f"{service.outputs.name}: {target} already serves all traffic; drill the color "
                "that does not, so the drill moves real traffic to it and back"
            )
    gates = [APPROVAL, SECURITY_SIGNOFF]
    options = Options(target=target, steps=[percent], bake=bake, interval=interval,
                      kind="drill", analysis=analysis == "on",
                      max_inconclusive=max_inconclusive)  # fmt: skip
    analysis_line = analysis_said(ctx.all_outputs, options)
    check_timing([o.analysis for o in ctx.all_outputs], options, 1)
    say(analysis_line)
    interrupts = Interrupts(say)
    judge = gate_judge(ctx.services, ctx.journal, target, gates, gates_config, records)
    with interrupts, progress_in_place() as log:
        preflight(ctx.services, options, judge, 1, None, say)
        shifter = ctx.shift(judge, interrupts, log)
        with interrupts.shielded():
            shifter.start(options)
        done = shifter.run()
    seconds = round(done.timings.rollback_seconds or 0.0, 3)
    say(f"Drill {done.id}: {percent}% to {target} and back; restored and verified in {seconds}s.")
    for o in ctx.all_outputs:
        details = {
            "deployment": done.id,
            "percent": percent,
            "rollbackSeconds": seconds,
            "restoreVerified": done.timings.restore_verified,
        }
        path = sign_release_record(
            o, target, ROLLBACK_DRILL, details, signer, valid_for, records, pack_config
        )
        say(f"Signed rollback-drill record: {path}")
