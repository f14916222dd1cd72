"""Giving traffic back: the one implementation of "restore a deployment's snapshot".

`restore_snapshot` writes every listener or route back at once (one call each,
concurrently), then reads them back until they serve the weights the deployment found,
bounded by the deployment's verify timeout. `restore_and_journal` is the one way anyone
gives traffic back on a deployment's behalf: restore, record the event, journal, and raise
when a write failed. The shift gives back through it on a failed guard, an abort, a
deadline or a signal; a takeover (`cutover rollback`, the watchdog) and a woken driver's
give-back through `takeover`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cutover.clock import Clock, poll_until
from cutover.deployment import Deployment
from cutover.engine.session import Log, Session
from cutover.errors import DeploymentFailed
from cutover.journal import Journal
from cutover.journal.lease import LeaseLost, live_holder
from cutover.routers import TrafficRouter
from cutover.service import Service
from cutover.timeline import EventType, Timings
from cutover.weights import Weights, format_weights


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
        except Exception as e:  # noqa: BLE001 - not yet: read again until the timeout
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


def restore_snapshot(session: Session, deployment: Deployment) -> Restored:
    """Write every snapshot back at once, then wait (bounded) until it is served."""
    services, clock = session.services, session.clock
    pairs = [(s.router, deployment.snapshot[s.key]) for s in services]
    started = clock.now()
    errors = [e for e in session.pool.map(_restore_one, pairs) if e]
    accepted = clock.now()
    if errors:
        return Restored(started, accepted, accepted, False, errors)
    expected = snapshot_weights(services, deployment)
    verified = wait_served(services, expected, deployment.options.verify_timeout,
                           session.pool, clock, session.log)  # fmt: skip
    return Restored(started, accepted, clock.now(), verified, [])


def _restore_one(entry: tuple[TrafficRouter, dict[str, Any]]) -> str | None:
    """Restore one router; the error as text instead of raising, so every router is tried."""
    router, snapshot = entry
    try:
        router.restore(snapshot)
    except Exception as e:  # noqa: BLE001 - every router is tried; the errors are said together
        return f"{router.name}: {type(e).__name__}: {e}"
    return None


def restore_failed(deployment: Deployment, errors: list[str]) -> DeploymentFailed:
    return DeploymentFailed(
        f"deployment {deployment.id}: restoring the weights it found failed on "
        f"{len(errors)} listener(s) or route(s) ({'; '.join(errors)}); run `cutover rollback` "
        "to retry"
    )


def restore_and_journal(
    session: Session,
    reason: str,
    detected_at: float,
    event: EventType = EventType.RESTORED,
    timed: bool = True,
    **detail: object,
) -> Restored:
    """Give the session's deployment's traffic back: write its snapshot, wait until it is
    served, record `event` (with whether it was verified) and journal it; `timed`: the
    deployment's rollback timings are this restore's. A failed write is recorded as
    `restore-failed`, journaled, and raised (DeploymentFailed)."""
    d = session.deployment
    restored = restore_snapshot(session, d)
    if restored.errors:
        d.event(
            EventType.RESTORE_FAILED, session.clock.now(), reason=reason, errors=restored.errors
        )
        journal_after_restore(session.journal, d, session.services)
        raise restore_failed(d, restored.errors)
    if timed:
        d.timings = Timings(detected_at, restored.started, restored.accepted, restored.done,
                            restored.verified)  # fmt: skip
    d.event(event, session.clock.now(), reason=reason, verified=restored.verified, **detail)
    journal_after_restore(session.journal, d, session.services)
    return restored


def journal_after_restore(
    journal: Journal, deployment: Deployment, services: list[Service]
) -> None:
    """Save after traffic was given back: a journal that cannot be written then must not
    hide that the traffic is back."""
    try:
        journal.save(deployment)
    except LeaseLost:
        raise  # another process took it over: not a journal that cannot be written
    except Exception as e:  # noqa: BLE001 - said with where the traffic is, never hidden
        raise DeploymentFailed(
            f"deployment {deployment.id}: traffic was given back "
            f"({format_weights(snapshot_weights(services, deployment)[0])}), but the journal "
            f"could not be updated ({type(e).__name__}: {e})"
        ) from None


def wait_for_release(journal: Journal, keys: list[str], clock: Clock, timeout: float) -> bool:
    """Wait until nobody holds `keys` (a taker finishing its restore); False if still held."""
    return (
        poll_until(
            lambda: True if live_holder(journal, keys, clock.now()) is None else None,
            timeout,
            clock,
        )
        is not None
    )
