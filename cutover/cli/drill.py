"""`cutover drill`: a timed rollback drill, a small step to a color and back, signed as a
rollback-drill record (what the rollback-tested gate requires)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from cutover_gates.contract import APPROVAL, ROLLBACK_DRILL, SECURITY_SIGNOFF, Color, other_color

from cutover.cli.common import (
    BAKE,
    COLOR,
    INTERVAL,
    Context,
    analysis_options,
    deploy_key_options,
    gate_options,
    outputs_options,
)
from cutover.cli.output import output_option, progress_in_place, result, say
from cutover.deployment import Options
from cutover.errors import ConfigError
from cutover.gate_record import check_trusted, check_valid_for, sign_release_record, signer_of
from cutover.interrupt import Interrupts
from cutover.outputs import analysis_of
from cutover.pack_config import load_gates_config
from cutover.preflight import gate_judge, load_records, preflight
from cutover.summary import outcome_json
from cutover.timing import analysis_said, check_timing


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
    type=BAKE,
    default="30s",
    show_default=True,
    help="How long the drill step is watched.",
)
@click.option(
    "--interval", type=INTERVAL, default="5s", show_default=True, help="Guard polling interval."
)
@analysis_options
@gate_options
@deploy_key_options("drill")
@output_option
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
    fmt: str,
) -> None:
    """A timed rollback drill: a small step to a color and back; signs a rollback-drill record
    into --records, which the rollback-tested gate requires before a color reaches 100%.

    \b
    Example:
      cutover drill --outputs prod.json --to green --percent 5 \\
        --gates-config gates/pack-config.json --records gates/prod
    """
    pack_config = load_gates_config(gates_config)
    check_valid_for(ROLLBACK_DRILL, valid_for, pack_config)
    signer = signer_of(key_file, kms_key, "CUTOVER_DEPLOY_KEY")
    check_trusted(signer, ROLLBACK_DRILL, pack_config, datetime.now(UTC))  # before moving traffic
    load_records(records)  # a record that cannot be read is refused before anything moves
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
    settings = [analysis_of(o) for o in ctx.all_outputs]
    analysis_line = analysis_said(settings, options)
    check_timing(settings, options, 1)
    say(analysis_line)
    judge = gate_judge(ctx.services, ctx.journal, target, gates, gates_config, records)
    interrupts = Interrupts(say)
    with interrupts, progress_in_place() as log:
        preflight(ctx.services, options, judge, 1, None, say)
        shifter = ctx.shift(judge, interrupts, log)
        with interrupts.shielded():
            shifter.start(options)
        done = shifter.run()
    seconds = round(done.timings.rollback_seconds or 0.0, 3)
    say(f"Drill {done.id}: {percent}% to {target} and back; restored and verified in {seconds}s.")
    signed = []
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
        signed.append(str(path))
        say(f"Signed rollback-drill record: {path}")
    result(None, {**outcome_json(done), "records": signed})
