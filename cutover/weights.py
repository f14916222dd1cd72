"""Listener weights per color: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from cutover_gates.contract import COLORS, MAX_WEIGHT, Color, other_color

Weights = dict[str, int]


def weights_for(color: Color, percent: int) -> Weights:
    """`percent` of traffic to `color`, the rest to the other color."""
    if not 0 <= percent <= 100:
        raise ValueError(f"traffic percent {percent} is out of range; expected 0-100")
    return {color: percent, other_color(color): 100 - percent}


def check_weights(weights: Mapping[str, int]) -> Weights:
    """Both colors, each 0-MAX_WEIGHT, and some traffic flowing; ValueError otherwise."""
    if set(weights) != set(COLORS):
        raise ValueError(f"weights {dict(weights)} must name exactly blue and green")
    for color, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
            raise ValueError(
                f"weight {weight!r} for {color} is out of range; expected 0-{MAX_WEIGHT}"
            )
    if sum(weights.values()) == 0:
        raise ValueError("weights sum to zero: no traffic would be served")
    return {"blue": weights["blue"], "green": weights["green"]}


def format_weights(weights: Mapping[str, int]) -> str:
    """`blue 70 / green 30`: how every message and report writes a split."""
    return f"blue {weights['blue']} / green {weights['green']}"


def shares(weights: Mapping[str, int]) -> tuple[Color, int]:
    """The color with the larger share (blue on a tie) and its share in whole percent, as
    `cutover:activeColor` and `cutover:trafficPercent` say it."""
    total = sum(weights.values()) or 1
    color: Color = "green" if weights["green"] > weights["blue"] else "blue"
    return color, round(100 * weights[color] / total)
