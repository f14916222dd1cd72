"""The rollback window: which colors must stay at full capacity.

The program exports a traffic state (weights, releases, when the weights last changed) and
reads its previous value back through a StackReference to its own stack; it exports that
previous value too (`previousTraffic`), since the engine shows a policy pack the stack's
outputs but not the reads behind them. A color keeps its
full capacity while it receives traffic, in the update that moves traffic away from it, and
for the rollback window after that. Pure logic, shared by the program and the pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cutover_gates.contract import COLORS


@dataclass(frozen=True)
class TrafficState:
    """The `traffic` stack output: weights, releases and desired counts per color, and when
    the weights last changed."""

    weights: dict[str, int]
    releases: dict[str, str]
    desired_counts: dict[str, int]
    changed_at: datetime

    def to_output(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "releases": dict(self.releases),
            "desiredCounts": dict(self.desired_counts),
            "changedAt": self.changed_at.isoformat(timespec="seconds"),
        }


FIRST_UPDATE = "first-update"  # output previousTraffic of a stack's first update


def parse_traffic_state(value: Any) -> TrafficState | None:
    """The previous `traffic` output, or None when there is none (first update) or it is malformed."""
    if not isinstance(value, Mapping):
        return None
    try:
        weights: dict[str, int] = {c: int(value["weights"][c]) for c in COLORS}
        releases: dict[str, str] = {c: str(value.get("releases", {}).get(c, "")) for c in COLORS}
        counts: dict[str, int] = {c: int(value.get("desiredCounts", {}).get(c, 0)) for c in COLORS}
        changed_at = datetime.fromisoformat(str(value["changedAt"]))
    except (KeyError, TypeError, ValueError):
        return None
    if changed_at.tzinfo is None:
        return None
    return TrafficState(weights, releases, counts, changed_at)


def next_traffic_state(
    previous: TrafficState | None,
    weights: Mapping[str, int],
    releases: Mapping[str, str],
    desired_counts: Mapping[str, int],
    now: datetime,
) -> TrafficState:
    """The traffic state this update leaves; `changedAt` moves only when the weights move."""
    changed_at = now
    if previous is not None and previous.weights == weights:
        changed_at = previous.changed_at
    return TrafficState(dict(weights), dict(releases), dict(desired_counts), changed_at)


def keeps_full_capacity(
    color: str,
    weights: Mapping[str, int],
    previous: TrafficState | None,
    window_minutes: int,
    now: datetime,
) -> bool:
    """True when `color` may not run below its full capacity in this update.

    It must while it receives traffic; when nothing is known of the previous update (fail
    safe); in the update that moves traffic away from it; and until the rollback window after
    the last weight change has passed.
    """
    if weights.get(color, 0) > 0 or previous is None:
        return True
    if previous.weights.get(color, 0) > 0:
        return True
    return now < previous.changed_at + timedelta(minutes=window_minutes)
