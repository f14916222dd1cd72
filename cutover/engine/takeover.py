"""Taking a deployment over, from either side.

The taker (`cutover rollback`, the watchdog) gives a deployment's traffic back when its own
process is gone or frozen: take the lease, claim the deployment (its generation fences the old
holder's saves), scale the color it goes back to up where it was scaled down, restore, and,
when the old holder may still be alive (its lease ran out rather than being released), wait
the longest time one of its writes can take and restore once more if a late one landed.

The old holder, woken (`give_back_after_takeover`), finds its lease or its journal item taken:
whatever it wrote may have landed after the taker's restore, so where traffic is not on the
weights the deployment found, it takes the listeners again (once the taker is done) and
gives them back, unless a newer deployment holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cutover_gates.contract import COLORS, Color, Status

from cutover.clock import Clock
from cutover.deployment import Deployment
from cutover.engine.restore import (
    Log,
    busy_workers,
    journal_after_restore,
    restore_failed,
    restore_snapshot,
    snapshot_weights,
    wait_for_release,
    write_seconds,
)
from cutover.errors import DeploymentFailed, LockHeld
from cutover.interrupt import Interrupts, NoInterrupts
from cutover.journal import Journal
from cutover.journal.lease import LEASE_SECONDS, Lease, LeaseLost, LeaseState
from cutover.notifier import Notifier
from cutover.service import Service
from cutover.timeline import EventType, Failure, Timings
from cutover.weights import Weights, format_weights

if TYPE_CHECKING:
    from cutover.engine.shift import Shift


def may_still_write(leases: list[LeaseState], now: float) -> bool:
    """Whether the holder these leases were taken from could still land a write: its lease
    ran out (a frozen or cut-off process), rather than being released or dying here."""
    from cutover.journal.lease import dead_here

    return any(not s.live(now) and not dead_here(s.holder) for s in leases)


@dataclass
class Restoring:
    """A takeover whose restore is written and served, its lease still held: what is left
    is the re-verify (when the old holder may still write), the journal and telling people."""

    deployment: Deployment
    lease: Lease
    pool: ThreadPoolExecutor
    by: Failure
    verified: bool
    reverify: bool  # the old holder's lease ran out: a late write of its may still land


@dataclass
class TakeOver:
    """What a takeover needs besides the deployment: its stack's services, journal and
    notifier, and how to bring a scaled-down color back to full capacity."""

    services: list[Service]
    journal: Journal
    notifier: Notifier
    log: Log
    ensure_capacity: Callable[[Color], None]
    clock: Clock
    interrupts: Interrupts

    def give_back(self, deployment: Deployment, by: Failure) -> Deployment:
        """Take `deployment` over and restore its snapshot; the finished deployment.

        LockHeld when another process holds its lease; LeaseLost when it changed since it
        was read (another took it over first); DeploymentFailed when the restore failed.
        """
        return self.finish(self.begin(deployment, by))

    def begin(
        self, deployment: Deployment, by: Failure, leases: list[LeaseState] | None = None
    ) -> Restoring:
        """Take the lease, claim, scale up where needed, restore and verify it served
        (`leases`: the deployment's leases as the caller just read them)."""
        services, clock = self.services, self.clock
        keys = [s.key for s in services]
        if leases is None:
            leases = [s for s in (self.journal.lease_state(k) for k in keys) if s is not None]
        lease = Lease(self.journal, keys, self.log, write_seconds(services), clock)
        pool = ThreadPoolExecutor(max_workers=busy_workers(services) + len(COLORS))
        deployment.holder = lease.acquire(deployment.id)
        try:
            with self.interrupts, self.interrupts.shielded():
                detected = clock.now()
                colors = [
                    c
                    for c in COLORS
                    if any(w[c] > 0 for w in snapshot_weights(services, deployment))
                ]
                # the claim and the capacity of what it goes back to, at once
                claimed = pool.submit(self.journal.claim, deployment)
                list(pool.map(self.ensure_capacity, colors))
                claimed.result()
                deployment.event(
                    EventType.ROLLBACK_REQUESTED, detected, previousStatus=str(deployment.status)
                )
                restored = restore_snapshot(services, deployment, pool, clock, self.log)
                if restored.errors:
                    deployment.event(EventType.RESTORE_FAILED, clock.now(), errors=restored.errors)
                    journal_after_restore(self.journal, deployment, services)
                    raise restore_failed(deployment, restored.errors)
                deployment.timings = Timings(
                    detected, restored.started, restored.accepted, restored.done, restored.verified
                )
        except BaseException:
            lease.release()
            pool.shutdown(wait=False)
            raise
        reverify = may_still_write(leases, detected)
        return Restoring(deployment, lease, pool, by, restored.verified, reverify)

    def finish(self, restoring: Restoring, waited: bool = False) -> Deployment:
        """Re-verify (after the longest write, unless the caller `waited` already), journal
        the rollback, tell the stack, release."""
        deployment, clock = restoring.deployment, self.clock
        try:
            with self.interrupts, self.interrupts.shielded():
                if restoring.reverify:
                    if not waited:
                        self.wait_for_late_writes()
                    self._verify_after_late_writes(deployment, restoring.pool)
                by = restoring.by
                if deployment.status.active or deployment.failure is None:
                    deployment.failure = by
                deployment.status = Status.ROLLED_BACK
                deployment.finished_at = clock.now()
                deployment.event(EventType.RESTORED, clock.now(), reason=by.detail,
                                 verified=restoring.verified)  # fmt: skip
                deployment.event(EventType.FINISHED, clock.now(), status=str(deployment.status))
                journal_after_restore(self.journal, deployment, self.services)
                self.notifier.event(deployment, Status.ROLLED_BACK, by.detail)
                self.notifier.event(deployment, EventType.FINISHED, str(deployment.status))
                self.notifier.metrics(deployment)
                return deployment
        finally:
            restoring.lease.release()
            restoring.pool.shutdown(wait=False)

    def wait_for_late_writes(self) -> None:
        """Wait the longest time one write of the old holder can take."""
        wait = write_seconds(self.services)
        self.log(f"  (re-verifying in {wait:g}s, once no late write of the old holder can land)")
        self.clock.sleep(wait)

    def _verify_after_late_writes(self, deployment: Deployment, pool: ThreadPoolExecutor) -> None:
        """Once no write of the old holder can still land, read back, and restore once more
        if one did."""
        services = self.services
        expected = snapshot_weights(services, deployment)
        try:
            served = list(pool.map(lambda s: s.router.served(), services))
        except Exception as e:  # noqa: BLE001 - unreadable: restore again to be sure
            self.log(f"  (reading the weights back: {e})")
            served = []
        if served == expected:
            return
        late = ", ".join(format_weights(w) for w in served) or "unreadable"
        self.log(f"A late write of the old holder landed ({late}); restoring once more.")
        again = restore_snapshot(services, deployment, pool, self.clock, self.log)
        deployment.event(EventType.RESTORED_AGAIN, self.clock.now(), found=served,
                         verified=again.verified)  # fmt: skip
        if again.errors:
            raise restore_failed(deployment, again.errors)
        deployment.timings.restore_verified = again.verified
        deployment.timings.restored_at = again.done


def take_over(
    services: list[Service],
    journal: Journal,
    notifier: Notifier,
    log: Log,
    ensure_capacity: Callable[[Color], None],
    clock: Clock | None = None,
    interrupts: Interrupts | None = None,
) -> TakeOver:
    return TakeOver(
        services, journal, notifier, log, ensure_capacity, clock or Clock(),
        interrupts or NoInterrupts(),
    )  # fmt: skip


def give_back_after_takeover(shift: Shift, lost: LeaseLost) -> None:
    """The old holder's side: it lost its lease or journal item while it was not running
    (frozen, suspended, cut off). Raises DeploymentFailed saying what it found and did."""
    d = shift.deployment
    if not d.moved_traffic:
        raise DeploymentFailed(f"deployment {d.id}: {lost}; it stopped without touching traffic")
    expected = snapshot_weights(shift.services, d)
    found = format_weights(expected[0])
    if _served(shift) == expected:
        raise DeploymentFailed(
            f"deployment {d.id}: {lost}; traffic is on the weights it found ({found}), as the "
            "takeover left it, and this process stopped"
        )
    _give_back_late_write(shift, lost, found)


def _served(shift: Shift) -> list[Weights] | None:
    try:
        return list(shift.pool.map(lambda s: s.router.served(), shift.services))
    except Exception as e:  # noqa: BLE001
        shift.log(f"  (reading the weights back: {e})")
        return None


def _give_back_late_write(shift: Shift, lost: LeaseLost, found: str) -> None:
    """Take the listeners again once the taker is done, and give them back."""
    d = shift.deployment
    shift.lease.release()
    wait_for_release(shift.journal, shift.keys, shift.clock, LEASE_SECONDS + shift.write_seconds)
    try:
        shift.lease.acquire(d.id)
    except LockHeld:
        raise DeploymentFailed(
            f"deployment {d.id}: {lost}; a write of it may have landed late, but the "
            "listeners are now another deployment's to move (see `cutover status`); this "
            "process left them"
        ) from None
    try:
        restored = restore_snapshot(shift.services, d, shift.pool, shift.clock, shift.log)
        if restored.errors:
            raise restore_failed(d, restored.errors)
        _journal_late_write(shift, restored.verified)
    finally:
        shift.lease.release()
    raise DeploymentFailed(
        f"deployment {d.id}: {lost}; a write it made may have landed after that, so it "
        f"gave back the weights it found ({found}"
        + ("" if restored.verified else "; not yet confirmed served")
        + ")"
    )


def _journal_late_write(shift: Shift, verified: bool) -> None:
    """Say in the journal what the old holder gave back (best effort: the takeover already
    finished the deployment)."""
    d = shift.deployment
    try:
        fresh = shift.journal.load(d.scope, d.id)
        if fresh is None:
            return
        shift.journal.claim(fresh)
        fresh.event(EventType.LATE_WRITE_GIVEN_BACK, shift.clock.now(), verified=verified,
                    by=shift.lease.holder.describe())  # fmt: skip
        shift.journal.save(fresh)
    except Exception as e:  # noqa: BLE001
        shift.log(f"  (the journal could not record the give-back: {e})")
