"""Traffic routers: one small interface, one module per kind of load balancer.

"I asked for 90/10" and "the load balancer now serves 90/10" are different facts: `set`
writes, `served` reads back, and the shift verifies one against the other.
"""

from __future__ import annotations

from typing import Any, Protocol

from cutover.routers.fence import Fence, no_fence
from cutover.weights import Weights


class TrafficRouter(Protocol):
    """Moves traffic between the two colors of one service."""

    name: str

    @property
    def longest_write(self) -> float:
        """The longest one write can take, retries included (seconds)."""
        ...

    def served(self) -> Weights:
        """The weights the load balancer reports serving now."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to restore the current routing exactly (JSON-safe)."""
        ...

    def set(self, weights: Weights, fence: Fence = no_fence) -> None:
        """Write new weights (one API call), after `fence` lets it."""
        ...

    def restore(self, snapshot: dict[str, Any], fence: Fence = no_fence) -> None:
        """Write back a snapshot taken by `snapshot` (one API call), after `fence` lets it."""
        ...

    def weights_of(self, snapshot: dict[str, Any]) -> Weights:
        """The weights a snapshot holds."""
        ...
