"""Tags every cutover resource carries; color resources also name their color, release and
capacity, and what the stack declares of the application (contract.py's markers)."""

from __future__ import annotations

from cutover_gates.markers import KEEP_ALIVE_MARKER, LONGEST_REQUEST_MARKER

from cutover_components.stack import ColorConfig, StackConfig

COLOR_TAG = "cutover:color"
RELEASE_TAG = "cutover:release"
CAPACITY_TAG = "cutover:capacity"


def stack_tags(config: StackConfig) -> dict[str, str]:
    return {
        "cutover:project": config.project,
        "cutover:stack": config.stack,
        "cutover:service": config.service.name,
    }


def color_tags(config: StackConfig, color: ColorConfig) -> dict[str, str]:
    return {
        **stack_tags(config),
        COLOR_TAG: color.color,
        RELEASE_TAG: color.release,
        CAPACITY_TAG: str(color.capacity),
        # what the pack judges the stack's draining and idle timeouts against
        f"cutover:{LONGEST_REQUEST_MARKER}": str(config.service.longest_request_seconds),
        f"cutover:{KEEP_ALIVE_MARKER}": str(config.service.keep_alive_seconds),
    }
