"""`cutover exit-gates`: the production-deployment stage's exit gates as one verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from cutover_gates.contract import STAGE_EXIT

from cutover.cli.common import Context, deploy_key_options, gate_options, outputs_options
from cutover.cli.output import output_option, result, say
from cutover.environment import text
from cutover.errors import ConfigError, JudgedUnmet
from cutover.exit_gates import judge_stage_exit, stage_exit_details
from cutover.gate_record import check_trusted, check_valid_for, sign_release_record, signer_of
from cutover.pack_config import load_gates_config
from cutover.preflight import load_records


@click.command("exit-gates")
@outputs_options
@gate_options
@deploy_key_options("stage-exit")
@output_option
def exit_gates(
    outputs: tuple[Path, ...],
    stack: str | None,
    journal: str,
    gates_config: Path,
    records: Path,
    key_file: Path | None,
    kms_key: str | None,
    valid_for: float,
    fmt: str,
) -> None:
    """Judge the stage's exit gates, each with its evidence: deployment successful (the latest
    shift succeeded and verified, and the routing serves what it left), monitoring active
    (read live: alarms with actions and not in ALARM, the dashboard, the watchdog's schedule)
    and rollback tested (a valid drill record for the serving release). With --key (or
    $CUTOVER_DEPLOY_KEY), sign a
    stage-exit record binding stack, release, color and the verdicts, which the next stage
    can require (`cutover records verify` checks it). Exit 0 when all three hold, 1 otherwise.

    \b
    Example:
      cutover exit-gates --outputs prod.json --records gates/prod \\
        --gates-config gates/pack-config.json --key ~/.cutover/deploy.key
    """
    pack_config = load_gates_config(gates_config)
    signing = key_file is not None or bool(kms_key) or bool(text("CUTOVER_DEPLOY_KEY"))
    key = signer_of(key_file, kms_key, "CUTOVER_DEPLOY_KEY") if signing else None
    if key is not None:
        check_valid_for(STAGE_EXIT, valid_for, pack_config)
        check_trusted(key, STAGE_EXIT, pack_config, datetime.now(UTC))
    found = load_records(records)
    ctx = Context(outputs, stack, journal)
    judged = judge_stage_exit(ctx.services, ctx.journal, ctx.scope, found, pack_config)
    split = [one.service.outputs.name for one in judged if one.color is None]
    if key is not None and split:
        raise ConfigError(
            f"{', '.join(split)}: traffic is split; a stage-exit record binds the one color "
            "serving all traffic (nothing was signed)"
        )
    verdicts = []
    for one in judged:
        entry = one.to_json()
        say(one.render())
        if key is not None and one.color is not None:
            details = stage_exit_details(one.gates)
            path = sign_release_record(
                one.service.outputs,
                one.color,
                STAGE_EXIT,
                details,
                key,
                valid_for,
                records,
                pack_config,
            )
            entry["record"] = str(path)
            say(f"Signed stage-exit record ({'passed' if one.passed else 'failed'}): {path}")
        verdicts.append(entry)
    passed = all(one.passed for one in judged)
    result(None, {"passed": passed, "services": verdicts})  # text: said service by service
    if not passed:
        raise JudgedUnmet()  # each service's verdict is printed above
