"""Weight plans: the steps a shift takes from the weights it found to the target color. Pure."""

from __future__ import annotations

from cutover_gates.contract import Color, other_color, share

from cutover.weights import Weights

STRATEGIES: dict[str, list[int]] = {
    "all-at-once": [100],
    "canary": [5, 25, 50, 100],
    "linear": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
}


def parse_steps(text: str) -> list[int]:
    """`10,50,100` as percentages; ValueError unless increasing, 1-100, ending at 100."""
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(
            f"invalid --steps {text!r}; expected increasing percentages like 10,50,100"
        ) from None
    if not steps or any(not 1 <= s <= 100 for s in steps):
        raise ValueError(f"invalid --steps {text!r}; each step must be 1-100")
    if steps != sorted(set(steps)):
        raise ValueError(f"invalid --steps {text!r}; steps must increase")
    if steps[-1] != 100:
        raise ValueError(f"invalid --steps {text!r}; the last step must be 100")
    return steps


def plan_shift(start: Weights, target: Color, steps: list[int]) -> list[Weights]:
    """The weights of each step towards `target`, skipping steps at or below its current share."""
    current = share(start, target) * 100
    other = other_color(target)
    return [{target: p, other: 100 - p} for p in steps if p > current]
