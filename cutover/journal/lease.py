"""The lock on a deployment's listeners or routes, as a lease its holder keeps renewing.

One implementation for every journal backend: take each key in a fixed order (no two
deployments deadlock), give back what was taken when one is held, and renew the lease while
the deployment runs. A holder that stops renewing (killed, frozen, cut off) loses the lease
after LEASE_SECONDS; on its own host, a dead holder's lease is taken over at once.

The fencing rule (docs/helper.md, "One owner per listener"): `lease_live` is the one rule
for whether a lease is held, for reads and for the conditional writes alike (the journals
express `expires_at <= now` in their conditions, with the same `now`). A holder moves traffic only
while its last confirmed renewal covers the longest time a write can take (`before_write`,
which renews synchronously first otherwise), and confirms after each write that the write
was accepted inside that renewal (`landed_in_time`); a write that may have landed after a
takeover is the holder's to give back. Whoever takes a lease over re-verifies its restore
after that same longest write time.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cutover_gates.contract import Holder

from cutover.clock import Clock
from cutover.environment import number
from cutover.errors import ConfigError, DeploymentFailed, LockHeld

# How long a holder that stops renewing keeps its lease. The watchdog gives traffic back at
# most this long (plus its schedule, one restore and its re-verify) after a shift's process dies.
LEASE_SECONDS = number("CUTOVER_LEASE_SECONDS", 30.0)
# How far two hosts' clocks may disagree: a write accepted this close to the end of a
# renewal is treated as one that may have landed after it.
CLOCK_SKEW_SECONDS = 1.0
# A conditional write can fail against a holder that is gone by the time it is read; the
# acquire is then simply tried again, a few times.
ACQUIRE_ATTEMPTS = 3

Now = Callable[[], float]


class LeaseLost(DeploymentFailed):
    """Another process (the watchdog, an operator) took over this deployment's lease."""


class LeaseUnconfirmed(Exception):  # noqa: N818 - a state, like TimeoutError's
    """The lease could not be confirmed with the store (it cannot be reached): no traffic
    moves on it, and what was moved is given back."""


def finished_elsewhere(deployment_id: str, status: str) -> LeaseLost:
    """A save refused because another process already finished (or took over) the
    deployment: a process that was frozen must not write an old state over the new one."""
    return LeaseLost(
        f"deployment {deployment_id} was taken over ({status}) by another process while this "
        "one was not running"
    )


def lease_live(expires_at: float, holder: Holder, now: float) -> bool:
    """The one rule: a lease is held until `now` reaches its expiry, unless its holder is
    known dead (a process gone on this very host). Its complement, `expires_at <= now`, is
    what every conditional takeover tests, with the same `now`."""
    return now < expires_at and not dead_here(holder)


@dataclass(frozen=True)
class LeaseState:
    """A lease as stored: who holds it, when it was last renewed and when it runs out."""

    holder: Holder
    renewed_at: float
    expires_at: float

    def live(self, now: float) -> bool:
        return lease_live(self.expires_at, self.holder, now)


class Locks(Protocol):
    """What a journal backend provides for leases. `now` is the caller's wall clock, so the
    expiry a holder writes and the instant a taker compares it with come from one place."""

    def acquire_one(self, key: str, holder: Holder, now: float) -> bool:
        """Take the lease on `key`: True when taken, False when its holder vanished while
        looking (try again); LockHeld when someone else holds it."""
        ...

    def heartbeat(self, keys: list[str], holder: Holder, now: float) -> bool:
        """Renew every key's lease until `now + LEASE_SECONDS`: False when one is no longer
        this holder's (taken over, or released by a taker); raises when it cannot be told."""
        ...

    def release(self, keys: list[str], holder: Holder) -> None: ...

    def lease_state(self, key: str) -> LeaseState | None:
        """The lease on `key` as stored, expired or not; None when there is none."""
        ...


def host_name() -> str:
    return socket.gethostname()


def who() -> str:
    """The person or CI actor: $USER, the CI's actor, else the login name of this process."""
    found = os.environ.get("USER") or os.environ.get("GITHUB_ACTOR")
    if found:
        return found
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def holder_identity(deployment_id: str) -> Holder:
    """Who is taking a lease: the deployment, the person or CI actor, the host and process,
    and a token of this one acquisition (a process that takes a lease again, or a reused
    pid, is a holder of its own)."""
    token = f"{deployment_id}@{host_name()}:{os.getpid()}:{secrets.token_hex(4)}"
    return Holder(token, deployment_id, who(), host_name(), os.getpid())


def dead_here(holder: Holder) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if holder.host != host_name() or not holder.pid:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return False


def held_message(what: str, holder: Holder) -> str:
    return (
        f"{what} is locked by {holder.describe()}; wait for it to finish, or if that "
        f"process is gone, its lease expires within {LEASE_SECONDS:g}s"
    )


def live_holder(locks: Locks, keys: list[str], now: float) -> Holder | None:
    """Who holds one of `keys` now, by the one rule (a lease whose process died here holds
    nothing)."""
    for key in keys:
        state = locks.lease_state(key)
        if state is not None and state.live(now):
            return state.holder
    return None


def check_lease_covers(write_seconds: float) -> None:
    """ConfigError (nothing moved) when the lease is too short to cover one write."""
    if write_seconds + CLOCK_SKEW_SECONDS >= LEASE_SECONDS:
        raise ConfigError(
            f"CUTOVER_LEASE_SECONDS={LEASE_SECONDS:g} does not cover one write to the load "
            f"balancer or route, which may take up to {write_seconds:g}s with its retries "
            f"(plus {CLOCK_SKEW_SECONDS:g}s for clocks); raise the lease above "
            f"{write_seconds + CLOCK_SKEW_SECONDS:g}s, or lower AWS_MAX_ATTEMPTS and the "
            "CUTOVER_*_TIMEOUT settings"
        )


def acquire_each(locks: Locks, keys: list[str], holder: Holder, now: Now) -> None:
    """Lock every key in a fixed order; on LockHeld, give back the ones taken."""
    taken: list[str] = []
    try:
        for key in sorted(keys):
            for _ in range(ACQUIRE_ATTEMPTS):
                if locks.acquire_one(key, holder, now()):
                    break
            else:
                raise LockHeld(f"{key} changed hands {ACQUIRE_ATTEMPTS} times while locking it")
            taken.append(key)
    except LockHeld:
        locks.release(taken, holder)
        raise


class Lease:
    """The lease of one deployment on its keys: acquired, renewed, confirmed, released.

    `write_seconds` is the longest a write to the routing can take. Renewals run on
    `clock.every` (a background thread; in the deterministic tests, the clock's own timers).
    """

    def __init__(
        self,
        locks: Locks,
        keys: list[str],
        log: Callable[[str], None] = lambda _: None,
        write_seconds: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        self.locks = locks
        self.keys = keys
        self.log = log
        self.write_seconds = write_seconds
        self.clock = clock or Clock()
        self.now = self.clock.now
        self.holder = Holder("")  # no token until acquired
        self.valid_until = 0.0  # the end of the last renewal the store confirmed
        self._stop: Callable[[], None] = lambda: None
        self._renewing = threading.Lock()
        self.lost = threading.Event()  # someone else holds it now (the watchdog took over)

    @property
    def renew_every(self) -> float:
        """Often enough that a renewal normally still covers a write, at least once a second."""
        spare = LEASE_SECONDS - self.write_seconds - CLOCK_SKEW_SECONDS
        return max(1.0, min(LEASE_SECONDS / 3, spare / 2))

    def acquire(self, deployment_id: str) -> Holder:
        self.holder = holder_identity(deployment_id)
        started = self.now()
        acquire_each(self.locks, self.keys, self.holder, self.now)
        self.valid_until = started + LEASE_SECONDS
        self.lost.clear()
        self._stop = self.clock.every(lambda: self.renew_every, self._tick)
        return self.holder

    def _tick(self) -> bool:
        """One background renewal; False once the lease is lost (no more renewals)."""
        try:
            self.renew()
        except LeaseLost:
            return False
        except Exception as e:  # noqa: BLE001 - a missed renewal must not stop a shift
            self.log(f"  (lock heartbeat failed: {e})")
        return True

    def renew(self) -> None:
        """Renew now: LeaseLost when another process holds it; the store's error when it
        cannot be told (the lease then counts as unconfirmed, never as held)."""
        with self._renewing:
            if self.lost.is_set():
                raise self.lost_error()
            started = self.now()
            if not self.locks.heartbeat(self.keys, self.holder, started):
                self.lost.set()
                raise self.lost_error()
            self.valid_until = max(self.valid_until, started + LEASE_SECONDS)

    def lost_error(self) -> LeaseLost:
        return LeaseLost(
            "this deployment's lease was taken over (its renewals lapsed: a paused or cut-off "
            "process); see `cutover status`"
        )

    def before_write(self) -> None:
        """Before moving traffic: the last confirmed renewal must cover the longest write,
        or it is renewed first. LeaseLost when it is another's; LeaseUnconfirmed when the
        store cannot say."""
        if self.lost.is_set():
            raise self.lost_error()
        if self.valid_until - self.now() >= self.write_seconds + CLOCK_SKEW_SECONDS:
            return
        try:
            self.renew()
        except LeaseLost:
            raise
        except Exception as e:  # noqa: BLE001 - unreadable counts as lost for moving traffic
            raise LeaseUnconfirmed(
                f"its lease could not be confirmed before moving traffic ({type(e).__name__}: {e})"
            ) from None
        if self.valid_until - self.now() < self.write_seconds + CLOCK_SKEW_SECONDS:
            raise LeaseUnconfirmed("renewing its lease took too long to cover a write")

    def landed_in_time(self, accepted_at: float) -> bool:
        """Whether a write accepted at `accepted_at` (wall clock) surely landed while this
        holder held the lease: before the end of its last confirmed renewal, less the skew.
        A write accepted later may have landed after a takeover."""
        if accepted_at <= self.valid_until - CLOCK_SKEW_SECONDS and not self.lost.is_set():
            return True
        try:  # it may still be ours (nobody came): confirm with the store
            self.renew()
        except LeaseLost:
            return False
        except Exception:  # noqa: BLE001 - unreadable: count it as lost
            return False
        return True

    def release(self) -> None:
        self._stop()
        if self.holder.token:
            self.locks.release(self.keys, self.holder)
