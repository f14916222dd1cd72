"""cutover's Pulumi program: one user of the `cutover_components` package, as a team's own
program is (examples/team-program/): the stack's config, its gate records, one service."""

from pathlib import Path

from cutover_components import (
    BlueGreenService,
    BlueGreenServiceArgs,
    load_config,
    read_gate_records,
)

config = load_config()
records = read_gate_records(config.gate_records, Path(__file__).resolve().parent)
BlueGreenService(config.service.name, BlueGreenServiceArgs(config, records))
