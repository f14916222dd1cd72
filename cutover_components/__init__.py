"""cutover's Pulumi components, for a program of your own (`pip install 'cutover[program]'`).

    from cutover_components import (
        BlueGreenService, BlueGreenServiceArgs, load_config, read_gate_records,
    )

    config = load_config()  # the stack's `cutover:` config, validated
    records = read_gate_records(config.gate_records, Path(__file__).parent)
    BlueGreenService(config.service.name, BlueGreenServiceArgs(config, records))

Each name is imported when first used, so reading the config (or testing it) loads no
Pulumi SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cutover_components.config import load_config, parse_config
    from cutover_components.gate_records import GateRecordFile, read_gate_records
    from cutover_components.service import BlueGreenService, BlueGreenServiceArgs
    from cutover_components.stack import StackConfig

# The public names, by the module that defines them.
PUBLIC = {
    "BlueGreenService": "cutover_components.service",
    "BlueGreenServiceArgs": "cutover_components.service",
    "GateRecordFile": "cutover_components.gate_records",
    "StackConfig": "cutover_components.stack",
    "load_config": "cutover_components.config",
    "parse_config": "cutover_components.config",
    "read_gate_records": "cutover_components.gate_records",
}
__all__ = [
    "BlueGreenService",
    "BlueGreenServiceArgs",
    "GateRecordFile",
    "StackConfig",
    "load_config",
    "parse_config",
    "read_gate_records",
]


def __getattr__(name: str) -> Any:
    if name not in PUBLIC:
        raise AttributeError(f"module 'cutover_components' has no attribute {name!r}")
    return getattr(importlib.import_module(PUBLIC[name]), name)
