"""Acting on a deployment from outside it: promote, abort, roll back.

A running shift is told through the journal (a request it reads at every guard poll) and the
caller waits, bounded, until the shift has acted: an operator is told what happened, not that
something may happen later. A deployment whose process is gone is taken over and restored
here (`takeover.TakeOver`), only while it is the newest owner of its listeners.
"""

from __future__ import annotations

from collections.abc import Callable

from cutover_gates.contract import COLORS, Color, Holder, Status

from cutover.clock import Clock, poll_until
from cutover.deployment import Deployment
from cutover.engine.requests import ABORT, Request
from cutover.engine.restore import snapshot_weights
from cutover.engine.session import Session
from cutover.engine.takeover import TakeOver
from cutover.errors import DeploymentFailed
from cutover.interrupt import Interrupts
from cutover.journal import Journal
from cutover.journal.owner import newer_owner
from cutover.notifier import Notifier
from cutover.service import Service
from cutover.timeline import Failure
from cutover.weights import Weights, format_weights

ROLLBACK_COMMAND = Failure("rollback", "cutover rollback")
POLL_SECONDS = 0.2


def nothing_to_give_back(journal: Journal, deployment: Deployment) -> str | None:
    """Why a pipeline that started `deployment` has nothing to give back, or None when it
    must: only a deployment that moved traffic, neither succeeded nor gave it back, and is
    still the newest owner of its listeners (a newer release is never undone)."""
    newer = newer_owner(journal, deployment)
    if newer is not None:
        return f"deployment {newer[1].deployment} took {newer[0]} since"
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
    request: Request,
    timeout: float,
    clock: Clock,
) -> bool:
    """Ask the deployment's process to act on `request`; True once it took the request
    (it clears it), False after `timeout` (the request stays)."""
    journal.request(scope, deployment_id, request.text())
    taken = poll_until(
        lambda: True if journal.requested(scope, deployment_id) != request.text() else None,
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
    waiting), or here when its process is gone (Superseded when a newer deployment took its
    listeners since: its snapshot is never written again)."""
    clock = clock or Clock()
    scope = deployment.scope
    if deployment.status.active and holder is not None and holder.deployment == deployment.id:
        log(f"Asked deployment {deployment.id} ({holder.where}) "
            "to give traffic back.")  # fmt: skip
        journal.request(scope, deployment.id, ABORT.text())
        return await_finished(journal, scope, deployment.id, timeout, clock)
    if deployment.status.active:
        log(f"Deployment {deployment.id} was interrupted (its process is gone); restoring the "
            "weights it found.")  # fmt: skip
    session = Session.of(services, journal, notifier, log, clock, interrupts,
                         extra_workers=len(COLORS))  # fmt: skip
    return TakeOver(session, ensure_capacity).give_back(deployment, ROLLBACK_COMMAND)


def config_after_restore(
    journal: Journal, services: list[Service], deployment: Deployment | None
) -> Weights | str | None:
    """What the stack's config must say after `deployment` gave its traffic back: the
    weights it found, once their restore is confirmed served and while it is still the
    newest owner of its listeners (a newer release's split is what the config says, and
    stays); a line saying why the config is left as it is; None when there is nothing to
    follow (it did not roll back, or never moved traffic)."""
    if deployment is None or deployment.status != Status.ROLLED_BACK:
        return None
    if not deployment.moved_traffic:  # nothing was written: the config still says it
        return None
    newer = newer_owner(journal, deployment)
    if newer is not None:
        return (
            f"The stack's config was left as it is: deployment {newer[1].deployment} took "
            f"{newer[0]} since deployment {deployment.id}."
        )
    if not deployment.timings.restore_verified:
        return (
            "The stack's config was not updated: the restored weights are not yet confirmed served."
        )
    return snapshot_weights(services, deployment)[0]
