"""The lock on a deployment's listeners or routes, as a lease its holder keeps renewing.

One implementation for every journal backend: take each key in a fixed order (no two
deployments deadlock), give back what was taken when one is held, and renew the lease from a
heartbeat thread while the deployment runs. A holder that stops renewing (killed, lost) loses
the lease after LEASE_SECONDS; on its own host, a dead holder's lease is taken over at once.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cutover.errors import DeploymentFailed, LockHeld

# How long a holder that stops renewing keeps its lease. The watchdog gives traffic back at
# most this long (plus its schedule and one restore) after a shift's process dies.
LEASE_SECONDS = int(os.environ.get("CUTOVER_LEASE_SECONDS") or 30)
# A conditional write can fail against a holder that is gone by the time it is read; the
# acquire is then simply tried again, a few times.
ACQUIRE_ATTEMPTS = 3

Holder = dict[str, Any]


class LeaseLost(DeploymentFailed):
    """Another process (the watchdog, an operator) took over this deployment's lease."""


def finished_elsewhere(deployment_id: str, status: str) -> LeaseLost:
    """A save refused because another process already finished the deployment: a process
    that was frozen must not write an old state over the one that gave traffic back."""
    return LeaseLost(
        f"deployment {deployment_id} was already finished ({status}) by another process "
        "while this one was not running; it stopped without touching traffic"
    )


@dataclass(frozen=True)
class LeaseState:
    """A lease as stored: who holds it, when it was last renewed and when it runs out."""

    holder: Holder
    renewed_at: float
    expires_at: float

    def live(self, now: float) -> bool:
        """Held: not expired, and not known dead (a process gone on this very host)."""
        return now <= self.expires_at and not dead_here(self.holder)


class Locks(Protocol):
    """What a journal backend provides for leases."""

    def acquire_one(self, key: str, holder: Holder) -> bool:
        """Take the lease on `key`: True when taken, False when its holder vanished while
        looking (try again); LockHeld when someone else holds it."""
        ...

    def heartbeat(self, keys: list[str], holder: Holder) -> None: ...

    def release(self, keys: list[str], holder: Holder) -> None: ...

    def lock_holder(self, key: str) -> Holder | None: ...

    def lease_state(self, key: str) -> LeaseState | None:
        """The lease on `key` as stored, expired or not; None when there is none."""
        ...


def holder_identity(deployment_id: str) -> Holder:
    """Who is taking a lease: the deployment, the person or CI actor, the host and process."""
    return {
        "holder": f"{deployment_id}@{socket.gethostname()}:{os.getpid()}",
        "deployment": deployment_id,
        "who": os.environ.get("USER") or os.environ.get("GITHUB_ACTOR") or "unknown",
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def dead_here(holder: Holder) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if holder.get("host") != socket.gethostname() or not holder.get("pid"):
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def describe_holder(holder: Holder) -> str:
    return (
        f"deployment {holder.get('deployment')} by {holder.get('who')} on "
        f"{holder.get('host')} (pid {holder.get('pid')})"
    )


def held_message(what: str, holder: Holder) -> str:
    return (
        f"{what} is locked by {describe_holder(holder)}; wait for it to finish, or if that "
        f"process is gone, its lease expires within {LEASE_SECONDS}s"
    )


def acquire_each(locks: Locks, keys: list[str], holder: Holder) -> None:
    """Lock every key in a fixed order; on LockHeld, give back the ones taken."""
    taken: list[str] = []
    try:
        for key in sorted(keys):
            for _ in range(ACQUIRE_ATTEMPTS):
                if locks.acquire_one(key, holder):
                    break
            else:
                raise LockHeld(f"{key} changed hands {ACQUIRE_ATTEMPTS} times while locking it")
            taken.append(key)
    except LockHeld:
        locks.release(taken, holder)
        raise


class Lease:
    """The lease of one deployment on its keys: acquired, renewed in the background, released."""

    def __init__(
        self, locks: Locks, keys: list[str], log: Callable[[str], None] = lambda _: None
    ) -> None:
        self.locks = locks
        self.keys = keys
        self.log = log
        self.holder: Holder = {}
        self._stop = threading.Event()
        self.lost = threading.Event()  # someone else holds it now (the watchdog took over)

    def acquire(self, deployment_id: str) -> Holder:
        self.holder = holder_identity(deployment_id)
        acquire_each(self.locks, self.keys, self.holder)
        self._stop.clear()
        self.lost.clear()
        threading.Thread(target=self._renew, daemon=True).start()
        return self.holder

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 3):
            try:
                self.locks.heartbeat(self.keys, self.holder)
            except Exception as e:  # noqa: BLE001 - a missed renewal must not stop a shift
                self.log(f"  (lock heartbeat failed: {e})")
                if not self.held():
                    self.lost.set()

    def held(self) -> bool:
        """True while every key's lease is still this holder's. One that is gone (a taker
        released it) or in another's hands is lost; one that cannot be read is not (a passing
        fault must not stop a shift)."""
        try:
            states = [self.locks.lease_state(k) for k in self.keys]
        except Exception:  # noqa: BLE001
            return True
        mine = self.holder.get("holder")
        return all(s is not None and s.holder.get("holder") == mine for s in states)

    def confirm(self) -> None:
        """Before moving traffic: LeaseLost when another process holds the lease now."""
        if self.lost.is_set() or not self.held():
            self.lost.set()
            raise LeaseLost(
                "this shift's lease was taken over (its renewals lapsed: a paused or cut-off "
                "process); it stopped without touching traffic. See `cutover status`"
            )

    def release(self) -> None:
        self._stop.set()
        if self.holder:
            self.locks.release(self.keys, self.holder)
