"""Giving traffic back: the one implementation of "restore a deployment's snapshot".

`restore_snapshot` writes every listener or route back at once (one call each,
concurrently), then reads them back until they serve the weights the deployment found,
bounded by the deployment's verify timeout. The state machine restores through it on a
failed guard, an abort, a deadline or a signal; `cutover rollback` and the watchdog through
`takeover.TakeOver`, which takes the deployment over first.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cutover.clock import Clock, poll_until
from cutover.deployment import Deployment
from cutover.errors import DeploymentFailed
from cutover.journal import Journal
from cutover.routers import TrafficRouter
from cutover.routers.fence import Fence, no_fence
from cutover.service import Service
from cutover.weights import Weights, format_weights

Log = Callable[[str], None]


def busy_workers(services: list[Service]) -> int:
    """Threads for calls made to every service at once (writes, reads, guard polls)."""
    return min(64, max(1, len(services) * 2))


def write_seconds(services: list[Service]) -> float:
    """The longest one write to any of these routers can take, retries included."""
    return max((s.router.longest_write for s in services), default=0.0)


def snapshot_weights(services: list[Service], deployment: Deployment) -> list[Weights]:
    """The weights each service's snapshot holds, in the order of `services`."""
    return [s.router.weights_of(deployment.snapshot[s.key]) for s in services]


def outcome(services: list[Service], deployment: Deployment) -> str:
    """Where the traffic is after a restore, honestly."""
    found = format_weights(snapshot_weights(services, deployment)[0])
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
    log: Log,
) -> bool:
    """Read every router back until each serves its expected weights (bounded by `timeout`).

    A read that fails after its retries counts as "not yet", never as a crash.
    """

    def served() -> bool | None:
        try:
            found = list(pool.map(lambda s: s.router.served(), services))
        except Exception as e:  # noqa: BLE001
            log(f"  (reading the weights back: {e})")
            return None
        return True if found == expected else None

    every = min(0.5, max(0.05, timeout / 20))
    return poll_until(served, timeout, clock, every) is not None


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
    log: Log,
    fence: Fence = no_fence,
) -> Restored:
    """Write every snapshot back at once, then wait (bounded) until it is served."""
    pairs = [(s.router, deployment.snapshot[s.key], fence) for s in services]
    started = clock.now()
    errors = [e for e in pool.map(_restore_one, pairs) if e]
    accepted = clock.now()
    if errors:
        return Restored(started, accepted, accepted, False, errors)
    expected = snapshot_weights(services, deployment)
    verified = wait_served(services, expected, deployment.options.verify_timeout, pool, clock, log)
    return Restored(started, accepted, clock.now(), verified, [])


def _restore_one(entry: tuple[TrafficRouter, dict[str, Any], Fence]) -> str | None:
    """Restore one router; the error as text instead of raising, so every router is tried."""
    router, snapshot, fence = entry
    try:
        router.restore(snapshot, fence)
    except Exception as e:  # noqa: BLE001
        return f"{router.name}: {type(e).__name__}: {e}"
    return None


def restore_failed(deployment: Deployment, errors: list[str]) -> DeploymentFailed:
    return DeploymentFailed(
        f"deployment {deployment.id}: restoring the weights it found failed on "
        f"{len(errors)} listener(s) or route(s) ({'; '.join(errors)}); run `cutover rollback` "
        "to retry"
    )


def journal_after_restore(
    journal: Journal, deployment: Deployment, services: list[Service]
) -> None:
    """Save after traffic was given back: a journal that cannot be written then must not
    hide that the traffic is back."""
    from cutover.journal.lease import LeaseLost

    try:
        journal.save(deployment)
    except LeaseLost:
        raise  # another process took it over: not a journal that cannot be written
    except Exception as e:  # noqa: BLE001
        raise DeploymentFailed(
            f"deployment {deployment.id}: traffic was given back "
            f"({format_weights(snapshot_weights(services, deployment)[0])}), but the journal "
            f"could not be updated ({type(e).__name__}: {e})"
        ) from None


def wait_for_release(journal: Journal, keys: list[str], clock: Clock, timeout: float) -> bool:
    """Wait until nobody holds `keys` (a taker finishing its restore); False if still held."""
    from cutover.journal.lease import live_holder

    return (
        poll_until(
            lambda: True if live_holder(journal, keys, clock.now()) is None else None,
            timeout,
            clock,
        )
        is not None
    )
