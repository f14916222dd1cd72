"""Giving traffic back: the one implementation of "restore a deployment's snapshot".

The state machine (on a failed guard, an abort, a deadline or a signal), `cutover rollback`
and the watchdog all restore through `restore_snapshot`: every listener or route is written
back at once (one call each, concurrently), then read back until it serves the weights the
deployment found, bounded by the deployment's verify timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cutover.deployment import Deployment
from cutover.routers import TrafficRouter
from cutover.service import Service
from cutover.weights import Weights


@dataclass
class Clock:
    """Time as the state machine sees it; tests and benchmarks use the real one."""

    now: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def busy_workers(services: list[Service]) -> int:
    """Threads for calls made to every service at once (writes, reads, guard polls)."""
    return min(64, max(1, len(services) * 2))


def describe(weights: Weights) -> str:
    return f"blue {weights['blue']} / green {weights['green']}"


def snapshot_weights(services: list[Service], deployment: Deployment) -> list[Weights]:
    """The weights each service's snapshot holds, in the order of `services`."""
    return [s.router.weights_of(deployment.snapshot[s.key]) for s in services]


def outcome(services: list[Service], deployment: Deployment) -> str:
    """Where the traffic is after a restore, honestly."""
    found = describe(snapshot_weights(services, deployment)[0])
    if deployment.timings.restore_verified:
        return f"traffic is back on {found}"
    return (
        f"restored weights written ({found}); not yet confirmed served after "
        f"{deployment.options.verify_timeout:g}s"
    )


def wait_served(
    services: list[Service],
    expected: list[Weights],
    timeout: float,
    pool: ThreadPoolExecutor,
    clock: Clock,
    log: Callable[[str], None],
) -> bool:
    """Read every router back until each serves its expected weights (bounded by `timeout`).

    A read that fails after its retries counts as "not yet", never as a crash.
    """
    deadline = clock.monotonic() + timeout
    while True:
        try:
            served = list(pool.map(lambda s: s.router.served(), services))
        except Exception as e:  # noqa: BLE001
            log(f"  (reading the weights back: {e})")
            served = None
        if served == expected:
            return True
        if clock.monotonic() >= deadline:
            return False
        clock.sleep(min(0.5, max(0.05, timeout / 20)))


@dataclass
class Restored:
    started: float
    accepted: float
    done: float
    verified: bool
    errors: list[str]


def restore_snapshot(
    services: list[Service],
    deployment: Deployment,
    pool: ThreadPoolExecutor,
    clock: Clock,
    log: Callable[[str], None],
) -> Restored:
    """Write every snapshot back at once, then wait (bounded) until it is served."""
    pairs = [(s.router, deployment.snapshot[s.key]) for s in services]
    started = clock.now()
    errors = [e for e in pool.map(_restore_one, pairs) if e]
    accepted = clock.now()
    if errors:
        return Restored(started, accepted, accepted, False, errors)
    expected = snapshot_weights(services, deployment)
    verified = wait_served(services, expected, deployment.options.verify_timeout, pool, clock, log)
    return Restored(started, accepted, clock.now(), verified, [])


def _restore_one(pair: tuple[TrafficRouter, dict[str, Any]]) -> str | None:
    """Restore one router; the error as text instead of raising, so every router is tried."""
    router, snapshot = pair
    try:
        router.restore(snapshot)
    except Exception as e:  # noqa: BLE001
        return f"{router.name}: {type(e).__name__}: {e}"
    return None
