"""Taking a deployment over, from either side.

The taker (`cutover rollback`, the watchdog) gives a deployment's traffic back when its own
process is gone or frozen: take the lease, check the deployment is still the newest owner of
its listeners (a newer release is never undone), claim it (its generation fences the old
holder's saves), scale the color it goes back to up where it was scaled down, restore, and,
when the old holder may still be alive (its lease ran out rather than being released), wait
the longest time one of its writes can take and restore once more if a late one landed.

The old holder, woken (`give_back_after_takeover`), finds its lease or its journal item
taken: whatever it wrote may have landed after the taker's restore. Once the taker is done
it takes the listeners again and, while its deployment is still their newest owner, gives
them back; when a newer deployment took them meanwhile, it puts back what that deployment
left, if (and only if) its own late write is what is served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cutover_gates.contract import COLORS, Color, Status

from cutover.deployment import Deployment
from cutover.engine.restore import (
    restore_and_journal,
    snapshot_weights,
    wait_for_release,
)
from cutover.engine.session import Session
from cutover.errors import DeploymentFailed, LockHeld
from cutover.journal.lease import LEASE_SECONDS, LeaseLost, LeaseState, dead_here
from cutover.journal.owner import Owner, check_newest, newer_owner
from cutover.timeline import EventType, Failure
from cutover.weights import Weights, format_weights


def may_still_write(leases: list[LeaseState], now: float) -> bool:
    """Whether the holder these leases were taken from could still land a write: its lease
    ran out (a frozen or cut-off process), rather than being released or dying here."""
    return any(not s.live(now) and not dead_here(s.holder) for s in leases)


@dataclass
class Restoring:
    """A takeover whose restore is written and served, its lease still held: what is left
    is the re-verify (when the old holder may still write), the journal and telling people."""

    session: Session
    by: Failure
    verified: bool
    reverify: bool  # the old holder's lease ran out: a late write of its may still land

    @property
    def deployment(self) -> Deployment:
        return self.session.deployment


@dataclass
class TakeOver:
    """Giving back a deployment whose process is gone: a session over its services (with a
    lease of its own), and how to bring a scaled-down color back to full capacity."""

    session: Session
    ensure_capacity: Callable[[Color], None]

    def give_back(self, deployment: Deployment, by: Failure) -> Deployment:
        """Take `deployment` over and restore its snapshot; the finished deployment.

        LockHeld when another process holds its lease; LeaseLost when it changed since it
        was read (another took it over first), Superseded when a newer deployment took its
        listeners; DeploymentFailed when the restore failed.
        """
        return self.finish(self.begin(deployment, by))

    def begin(
        self, deployment: Deployment, by: Failure, leases: list[LeaseState] | None = None
    ) -> Restoring:
        """Take the lease, check it is the newest owner, claim, scale up where needed,
        restore and verify it served (`leases`: the deployment's leases as the caller just
        read them)."""
        s = self.session
        if leases is None:
            leases = [x for x in (s.journal.lease_state(k) for k in s.keys) if x is not None]
        s.deployment = deployment
        deployment.holder = s.lease.acquire(deployment.id)
        try:
            with s.interrupts, s.interrupts.shielded():
                check_newest(s.journal, deployment)
                detected = s.clock.now()
                colors = [
                    c
                    for c in COLORS
                    if any(w[c] > 0 for w in snapshot_weights(s.services, deployment))
                ]
                # the claim and the capacity of what it goes back to, at once
                claimed = s.pool.submit(s.journal.claim, deployment)
                list(s.pool.map(self.ensure_capacity, colors))
                claimed.result()
                deployment.event(
                    EventType.ROLLBACK_REQUESTED, detected, previousStatus=str(deployment.status)
                )
                restored = restore_and_journal(s, by.detail, detected)
        except BaseException:
            s.close()
            raise
        return Restoring(s, by, restored.verified, may_still_write(leases, detected))

    def finish(self, restoring: Restoring, waited: bool = False) -> Deployment:
        """Re-verify (after the longest write, unless the caller `waited` already), journal
        the rollback, tell the stack, release."""
        s, deployment = restoring.session, restoring.deployment
        try:
            with s.interrupts, s.interrupts.shielded():
                if restoring.reverify:
                    if not waited:
                        self.wait_for_late_writes()
                    self._verify_after_late_writes()
                by = restoring.by
                if deployment.status.active or deployment.failure is None:
                    deployment.failure = by
                deployment.status = Status.ROLLED_BACK
                deployment.finished_at = s.clock.now()
                s.record(EventType.FINISHED, status=str(deployment.status))
                s.notifier.event(deployment, Status.ROLLED_BACK, f"{by.reason}: {by.detail}")
                s.notifier.event(deployment, EventType.FINISHED, str(deployment.status))
                s.notifier.metrics(deployment)
                return deployment
        finally:
            s.close()

    def wait_for_late_writes(self) -> None:
        """Wait the longest time one write of the old holder can take."""
        s = self.session
        s.log(f"  (re-verifying in {s.write_seconds:g}s, once no late write of the old holder "
              "can land)")  # fmt: skip
        s.clock.sleep(s.write_seconds)

    def _verify_after_late_writes(self) -> None:
        """Once no write of the old holder can still land, read back, and restore once more
        if one did."""
        s = self.session
        served = s.served()
        if served == snapshot_weights(s.services, s.deployment):
            return
        late = ", ".join(format_weights(w) for w in served or []) or "unreadable"
        s.log(f"A late write of the old holder landed ({late}); restoring once more.")
        restore_and_journal(s, "a late write of the old holder", s.clock.now(),
                            EventType.RESTORED_AGAIN, timed=False, found=served)  # fmt: skip


def give_back_after_takeover(session: Session, lost: LeaseLost) -> None:
    """The old holder's side: it lost its lease or journal item while it was not running
    (frozen, suspended, cut off). Raises DeploymentFailed saying what it found and did."""
    d = session.deployment
    if not d.moved_traffic:
        raise DeploymentFailed(f"deployment {d.id}: {lost}; it stopped without touching traffic")
    expected = snapshot_weights(session.services, d)
    if session.served() == expected:
        raise DeploymentFailed(
            f"deployment {d.id}: {lost}; traffic is on the weights it found "
            f"({format_weights(expected[0])}), as the takeover left it, and this process stopped"
        )
    session.lease.release()
    wait_for_release(session.journal, session.keys, session.clock,
                     LEASE_SECONDS + session.write_seconds)  # fmt: skip
    try:
        session.lease.acquire(d.id)
    except LockHeld:
        raise DeploymentFailed(
            f"deployment {d.id}: {lost}; a write of it may have landed late, but the "
            "listeners are now another deployment's to move (see `cutover status`); this "
            "process left them"
        ) from None
    try:
        _give_back_late_write(session, lost)
    finally:
        session.lease.release()


def _give_back_late_write(session: Session, lost: LeaseLost) -> None:
    """Under the listeners' lease again: give back what this deployment may have written
    late, only ever on behalf of their newest owner."""
    d = session.deployment
    newer = newer_owner(session.journal, d)
    if newer is not None:
        _undo_over_newer(session, lost, newer[1])
    fresh = session.journal.load(d.scope, d.id)
    if fresh is None:
        raise DeploymentFailed(f"deployment {d.id}: {lost}; it is no longer in the journal, "
                               "and this process left the listeners as they are")  # fmt: skip
    session.journal.claim(fresh)
    session.deployment = fresh
    restored = restore_and_journal(session, f"late write of {d.id}", session.clock.now(),
                                   EventType.LATE_WRITE_GIVEN_BACK, timed=False,
                                   by=session.lease.holder.describe())  # fmt: skip
    found = format_weights(snapshot_weights(session.services, d)[0])
    raise DeploymentFailed(
        f"deployment {d.id}: {lost}; a write it made may have landed after that, so it "
        f"gave back the weights it found ({found}"
        + ("" if restored.verified else "; not yet confirmed served")
        + ")"
    )


def _undo_over_newer(session: Session, lost: LeaseLost, owner: Owner) -> None:
    """A newer deployment took the listeners since: this one's snapshot is never written
    again. Only where this process's own last write is what is served does it put back what
    the newer one left (its last step, or the weights it found if it gave them back); a
    newer deployment still in progress is its own holder's (or the watchdog's) to finish.
    Always raises DeploymentFailed."""
    d = session.deployment
    newer = session.journal.load(owner.scope, owner.deployment)
    intents = [e.weights for e in d.events if e.type == EventType.STEP_INTENT and e.weights]
    mine = intents[-1] if intents else None
    served = session.served()
    left = _left_by(session, newer) if newer is not None else None
    if left is None or served is None or mine is None or any(w != mine for w in served):
        raise DeploymentFailed(
            f"deployment {d.id}: {lost}; deployment {owner.deployment} took its listeners "
            "since, so this process left them as they are (see `cutover status`)"
        )
    fence = session.lease.before_write
    list(session.pool.map(lambda x: x[0].router.set(x[1], fence),
                          zip(session.services, left, strict=True)))  # fmt: skip
    raise DeploymentFailed(
        f"deployment {d.id}: {lost}; its late write ({format_weights(mine)}) had landed over "
        f"deployment {owner.deployment}, so it put back what that one left "
        f"({format_weights(left[0])})"
    )


def _left_by(session: Session, newer: Deployment) -> list[Weights] | None:
    """What a finished deployment left served on each of these services: its last step if
    it succeeded, the weights it found if it gave them back; None while it runs, or where it
    does not cover every one of them."""
    if not set(session.keys) <= set(newer.listeners):
        return None
    if newer.status == Status.SUCCEEDED and newer.plan:
        return [newer.plan[-1]] * len(session.services)
    if newer.status == Status.DRILLED or (
        newer.status == Status.ROLLED_BACK
        and (newer.timings.restore_verified or not newer.moved_traffic)
    ):
        return snapshot_weights(session.services, newer)
    return None
