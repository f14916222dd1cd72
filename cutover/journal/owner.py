"""Who owns a listener or route: the one deployment that may move it or give it back.

The journal, not a host's clock, orders the deployments of a listener: each deployment that
takes it gets the next epoch, in a write conditional on the epoch it read (of two takers, one
wins). Whatever is written on a deployment's behalf afterwards (a step, a restore, a
give-back, a re-verify) is written only while it is still the newest owner, finished or not:
a newer release is never undone by an older actor. A deployment holds its listeners' leases
from its take on, so while its lease lives nobody can take them; whoever acts for it after
a gap (a woken driver, the watchdog, `cutover rollback`) checks, under the lease, that no
newer epoch took them meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from cutover.deployment import Deployment, scope_of
from cutover.errors import ConfigError, LockHeld
from cutover.journal.lease import LeaseLost


@dataclass(frozen=True)
class Owner:
    """The newest taker of one listener or route: its epoch, its deployment and scope."""

    epoch: int
    deployment: str
    scope: str

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "deployment": self.deployment, "scope": self.scope}

    @classmethod
    def from_json(cls, data: Any) -> Owner:
        """ValueError when `data` is not an owner record."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        epoch = data.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
            raise ValueError(f"epoch {epoch!r} is not a positive whole number")
        deployment, scope = data.get("deployment"), data.get("scope")
        if not isinstance(deployment, str) or not isinstance(scope, str):
            raise ValueError("deployment and scope must be text")
        return cls(epoch, deployment, scope)


class Owners(Protocol):
    """What a journal backend keeps of ownership: one record per listener or route."""

    def owner(self, key: str) -> Owner | None:
        """The newest owner of `key`, or None when no deployment of this release took it."""
        ...

    def take(self, key: str, owner: Owner) -> bool:
        """Make `owner` the owner of `key` if the epoch stored is exactly `owner.epoch - 1`
        (none stored counts as 0); False when another took it first, changing nothing."""
        ...


class Superseded(LeaseLost):
    """A newer deployment took one of this deployment's listeners: nothing may be written
    on this one's behalf any more."""


def superseded(key: str, deployment_id: str, newer: Owner) -> Superseded:
    return Superseded(
        f"deployment {newer.deployment} took {key} after deployment {deployment_id} (epoch "
        f"{newer.epoch}); only the newest deployment of a listener or route may move it or "
        "give it back"
    )


class Journal(Owners, Protocol):
    """What `newest` needs of a journal (the whole protocol is `cutover.journal.Journal`)."""

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None: ...


def newest(journal: Journal, keys: list[str]) -> Deployment | None:
    """The newest deployment of these listeners or routes: the one their owner records
    name (of any scope: a release train's too); where none has one yet (a journal written
    before epochs), the newest id of their scope. ConfigError when they name different
    deployments (say which with --deployment)."""
    owners = {k: o for k, o in ((k, journal.owner(k)) for k in keys) if o is not None}
    named = {(o.scope, o.deployment) for o in owners.values()}
    if not named:
        return journal.load(scope_of(keys), None)
    if len(named) > 1:
        which = ", ".join(f"{o.deployment} on {k}" for k, o in sorted(owners.items()))
        raise ConfigError(
            f"these listeners or routes were last taken by different deployments ({which}); "
            "name one with --deployment"
        )
    scope, deployment_id = named.pop()
    return journal.load(scope, deployment_id)


def newer_owner(journal: Owners, deployment: Deployment) -> tuple[str, Owner] | None:
    """A listener of `deployment` that a newer deployment took since, and that owner; None
    while it is the newest owner of every one (a deployment journaled before epochs is,
    until one with an epoch takes its listener)."""
    for key in deployment.listeners:
        found = journal.owner(key)
        if found is None or found.deployment == deployment.id:
            continue
        if found.epoch > deployment.epochs.get(key, 0):
            return key, found
    return None


def check_newest(journal: Owners, deployment: Deployment) -> None:
    """Superseded when a newer deployment took one of `deployment`'s listeners."""
    found = newer_owner(journal, deployment)
    if found is not None:
        raise superseded(found[0], deployment.id, found[1])


class OwnedByInterrupted(LockHeld):
    """An interrupted deployment still owns a listener: it is resumed or rolled back first."""


class Taking(Owners, Protocol):
    """What taking listeners needs of a journal."""

    def active(self) -> list[Deployment]: ...


def take_listeners(
    journal: Taking, keys: list[str], deployment_id: str, scope: str
) -> dict[str, int]:
    """Take every listener or route for a new deployment (their leases already held): the
    epoch it got on each. A deployment still active on one of them (its process gone: the
    lease is ours) is never superseded, so its snapshot can never be restored over this
    one's work: OwnedByInterrupted names it. LockHeld when another took one first."""
    for other in journal.active():
        shared = sorted(set(other.listeners) & set(keys))
        if shared and other.id != deployment_id:
            raise OwnedByInterrupted(
                f"deployment {other.id} on {shared[0]} was interrupted ({other.status}, its "
                "process gone) and still owns it: `cutover resume` continues it, `cutover "
                "rollback` gives its traffic back; then shift again"
            )
    epochs = {}
    for key in sorted(keys):
        seen = journal.owner(key)
        epoch = (seen.epoch if seen else 0) + 1
        if not journal.take(key, Owner(epoch, deployment_id, scope)):
            raise LockHeld(f"{key} was taken by another deployment while this one took it")
        epochs[key] = epoch
    return epochs
