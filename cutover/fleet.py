"""A color's fleet: its ECS service's capacity and its healthy targets."""

from __future__ import annotations

import time
from collections.abc import Callable

from cutover.aws import client
from cutover.color import Color
from cutover.errors import DeploymentFailed
from cutover.guard import healthy_targets
from cutover.outputs import StackOutputs


def ensure_full_capacity(
    outputs: StackOutputs,
    color: Color,
    timeout: float,
    log: Callable[[str], None],
    poll: float = 5.0,
) -> None:
    """Scale `color` back to its full capacity if it was scaled down, and wait until that many
    targets are healthy. Traffic never moves onto a color below its full capacity."""
    service = outputs.services[color]
    capacity = int(service["capacity"])
    found = client("ecs").describe_services(
        cluster=service["cluster"], services=[service["service"]]
    )
    desired = found["services"][0]["desiredCount"] if found["services"] else 0
    if desired < capacity:
        log(
            f"{outputs.name}: {color} runs {desired} of {capacity} tasks; scaling it back up first."
        )
        client("ecs").update_service(
            cluster=service["cluster"], service=service["service"], desiredCount=capacity
        )
    deadline = time.monotonic() + timeout
    while True:
        healthy = healthy_targets(outputs.target_group_arns[color])
        if healthy >= capacity:
            return
        if time.monotonic() >= deadline:
            raise DeploymentFailed(
                f"{outputs.name}: {color} has {healthy} of {capacity} healthy targets after "
                f"{timeout:g}s; traffic was not moved onto it"
            )
        time.sleep(poll)
