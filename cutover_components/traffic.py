"""This update's traffic state and each color's desired count under the rollback window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pulumi
from cutover_gates.contract import COLORS, Color
from cutover_gates.rollback_window import (
    FIRST_UPDATE,
    keeps_full_capacity,
    next_traffic_state,
    parse_traffic_state,
)
from cutover_gates.stack_outputs import PREVIOUS_TRAFFIC, TRAFFIC

from cutover_components.stack import StackConfig


def previous_update() -> pulumi.StackReference:
    """This stack's outputs after its last update, read through a self StackReference; what
    they say of traffic is exported again as `previousTraffic` (what this update moves traffic
    from), for the pack: the engine shows a policy pack the stack's outputs, never its reads."""
    own = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    reference = pulumi.StackReference(f"{pulumi.get_stack()}-previous", stack_name=own)
    pulumi.export(PREVIOUS_TRAFFIC, reference.outputs.apply(_previous_traffic_output))
    return reference


def _previous_traffic_output(previous_outputs: dict[str, Any] | None) -> Any:
    """Output `previousTraffic`: the `traffic` output of the update before, as it was (the pack
    parses it, and fails closed on what it cannot), or FIRST_UPDATE when no update left any
    output."""
    if not previous_outputs:
        return FIRST_UPDATE
    return previous_outputs.get(TRAFFIC)


def previous_traffic(reference: pulumi.StackReference) -> pulumi.Output[Any]:
    """The `traffic` output of this stack's last update."""
    return reference.get_output(TRAFFIC)


def plan_traffic(config: StackConfig, previous_raw: Any, now: datetime) -> dict[str, Any]:
    """The desired count per color and the `traffic` output this update leaves.

    A color runs at full capacity while it must (keeps_full_capacity), at its idle capacity
    otherwise.
    """
    previous = parse_traffic_state(previous_raw)
    weights: dict[str, int] = {c: w for c, w in config.weights.items()}
    counts: dict[str, int] = {
        c: config.color(c).capacity
        if keeps_full_capacity(c, weights, previous, config.rollback_window_minutes, now)
        else config.color(c).idle_capacity
        for c in COLORS
    }
    releases: dict[str, str] = {c: config.color(c).release for c in COLORS}
    state = next_traffic_state(previous, weights, releases, counts, now)
    return {"desiredCounts": counts, "traffic": state.to_output()}


class TrafficPlan:
    """plan_traffic over the previous update's output, as Pulumi outputs."""

    def __init__(self, config: StackConfig, previous: pulumi.Output[Any], now: datetime) -> None:
        plan: pulumi.Output[dict[str, Any]] = previous.apply(
            lambda raw: plan_traffic(config, raw, now)
        )
        self.desired_counts: dict[Color, pulumi.Output[int]] = {
            c: plan.apply(_count_of(c)) for c in COLORS
        }
        self.state: pulumi.Output[dict[str, Any]] = plan.apply(lambda p: p["traffic"])


def _count_of(color: Color) -> Callable[[dict[str, Any]], int]:
    return lambda plan: int(plan["desiredCounts"][color])
