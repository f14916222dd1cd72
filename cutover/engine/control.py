"""Acting on a deployment from outside it: promote, abort, roll back.

A running shift is told through the journal (a request it reads at every guard poll) and the
caller waits, bounded, until the shift has acted: an operator is told what happened, not that
something may happen later. A deployment whose process is gone is taken over and restored
here (`takeover.TakeOver`).
"""

from __future__ import annotations

from collections.abc import Callable

from cutover_gates.contract import Color, Holder, Status

from cutover.clock import Clock, poll_until
from cutover.deployment import Deployment
from cutover.errors import DeploymentFailed
from cutover.interrupt import Interrupts
from cutover.journal import Journal
from cutover.notifier import Notifier
from cutover.service import Service
from cutover.timeline import Failure
from cutover.weights import format_weights

# Control requests a running shift reads from the journal at every poll.
ABORT = "abort"
PROMOTE_FULL = "promote-full"
ROLLBACK_COMMAND = Failure("rollback", "cutover rollback")
POLL_SECONDS = 0.2


def promote_request(index: int) -> str:
    """The request that promotes the pause before step `index` (and no other pause)."""
    return f"promote:{index}"


def nothing_to_give_back(deployment: Deployment) -> str | None:
    """Why a pipeline that started `deployment` has nothing to give back, or None when it
    must: only a deployment that moved traffic and neither succeeded nor gave it back."""
    if deployment.status == Status.SUCCEEDED:
        return "it succeeded"
    if deployment.status == Status.DRILLED:
        return "it is a finished drill"
    if not deployment.moved_traffic:
        return "it never moved traffic"
    if deployment.status == Status.ROLLED_BACK and deployment.timings.restore_verified:
        return "it already gave its traffic back"
    return None


def request_and_wait(
    journal: Journal,
    scope: str,
    deployment_id: str,
    command: str,
    timeout: float,
    clock: Clock,
) -> bool:
    """Ask the deployment's process to act on `command`; True once it took the request
    (it clears it), False after `timeout` (the request stays)."""
    journal.request(scope, deployment_id, command)
    taken = poll_until(
        lambda: True if journal.requested(scope, deployment_id) != command else None,
        timeout,
        clock,
        POLL_SECONDS,
    )
    return taken is not None


def await_finished(
    journal: Journal, scope: str, deployment_id: str, timeout: float, clock: Clock
) -> Deployment:
    """Wait until the deployment is finished; DeploymentFailed after `timeout`, or when it
    vanished from the journal."""
    found = poll_until(
        lambda: _finished(journal, scope, deployment_id), timeout, clock, POLL_SECONDS
    )
    if found is None:
        raise DeploymentFailed(
            f"deployment {deployment_id} has not given traffic back after {timeout:g}s; its "
            "process is not responding. When its lease expires, `cutover rollback` restores "
            "the weights it found"
        )
    return found


def _finished(journal: Journal, scope: str, deployment_id: str) -> Deployment | None:
    found = journal.load(scope, deployment_id)
    if found is None:
        raise DeploymentFailed(f"deployment {deployment_id} is no longer in the journal")
    return found if found.status.finished else None


def restored(deployment: Deployment) -> str:
    """What an operator is told after a restore; DeploymentFailed when it is not confirmed."""
    found = deployment.start_weights
    split = format_weights(found[0]) if found else "the weights it found"
    if not deployment.moved_traffic:
        return f"Deployment {deployment.id} stopped before it moved any traffic: {split} is served."
    timings = deployment.timings
    if timings.restore_verified:
        seconds = timings.rollback_seconds or 0.0
        return f"Deployment {deployment.id} rolled back: {split} served again (restored in {seconds:.3f}s)."
    raise DeploymentFailed(
        f"deployment {deployment.id}: restored weights written ({split}); not yet confirmed "
        f"served after {deployment.options.verify_timeout:g}s"
    )


def give_back(
    services: list[Service],
    journal: Journal,
    notifier: Notifier,
    deployment: Deployment,
    holder: Holder | None,
    ensure_capacity: Callable[[Color], None],
    timeout: float,
    log: Callable[[str], None],
    interrupts: Interrupts,
    clock: Clock | None = None,
) -> Deployment:
    """Restore the weights `deployment` found: by asking its live process to abort (and
    waiting), or here when its process is gone."""
    from cutover.engine.takeover import take_over

    clock = clock or Clock()
    scope = deployment.scope
    if deployment.status.active and holder is not None and holder.deployment == deployment.id:
        log(f"Asked deployment {deployment.id} ({holder.where}) "
            "to give traffic back.")  # fmt: skip
        journal.request(scope, deployment.id, ABORT)
        return await_finished(journal, scope, deployment.id, timeout, clock)
    if deployment.status.active:
        log(f"Deployment {deployment.id} was interrupted (its process is gone); restoring the "
            "weights it found.")  # fmt: skip
    taker = take_over(services, journal, notifier, log, ensure_capacity, clock, interrupts)
    return taker.give_back(deployment, ROLLBACK_COMMAND)
