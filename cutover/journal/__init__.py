"""The deployment journal and lock: one interface, one module per backend.

Every shift is a deployment (snapshot, plan, events, outcome) saved before and after each
change, so a process killed at any point leaves enough to restore the snapshot exactly. The
lock on each listener or route is a lease (`cutover.journal.lease`). Backends: the stack's
DynamoDB table (`dynamodb`), a Kubernetes stack's namespace (`kubernetes`), a local file
(`file`).

Fencing, in two parts. Per listener or route, the newest deployment that took it owns it
(`cutover.journal.owner`: an epoch the journal hands out in a conditional write, never a
host's clock), and nothing is written on an older one's behalf. Per deployment, its
`generation` is bumped by `claim` whenever another process takes it over, and every `save`
replaces exactly the generation and status the saver last saw, or is refused (LeaseLost): a
process frozen past its lease cannot write an old state over the new one. What a claim
writes is what a load reads, on every backend. A journal may hold items this release cannot
read (damaged, or written by a newer release): they are skipped and named in `skipped`,
never a crash; its own bookkeeping items (owners, outcomes, requests) are never among them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cutover_gates.contract import Color, Holder, Outcome

from cutover.deployment import Deployment
from cutover.errors import ConfigError
from cutover.journal.items import Skipped
from cutover.journal.lease import LeaseState
from cutover.journal.owner import Owner
from cutover.summary import Summary


class Journal(Protocol):
    """Where deployments, their control requests and their leases are kept."""

    skipped: list[Skipped]  # items that do not parse, each once

    def acquire_one(self, key: str, holder: Holder, now: float) -> bool: ...
    def heartbeat(self, keys: list[str], holder: Holder, now: float) -> bool: ...
    def release(self, keys: list[str], holder: Holder) -> None: ...
    def lease_state(self, key: str) -> LeaseState | None: ...
    def owner(self, key: str) -> Owner | None:
        """The newest deployment that took listener or route `key` (`journal.owner`)."""
        ...

    def take(self, key: str, owner: Owner) -> bool:
        """Make `owner` the owner of `key` if the stored epoch is exactly one less (none
        stored: 0); False, changing nothing, when another took it first."""
        ...

    def active(self) -> list[Deployment]: ...
    def save(self, deployment: Deployment) -> None:
        """Write the deployment, replacing exactly the generation and status it was read or
        last saved with (a new one: only if absent); LeaseLost otherwise, changing nothing.
        A finished shift also records its outcome per listener or route."""
        ...

    def claim(self, deployment: Deployment) -> None:
        """Take a deployment over (its lease already held): bump its generation, so saves of
        whoever held it before are refused; LeaseLost when it changed since it was read."""
        ...

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None:
        """The deployment `deployment_id` of `scope`; without an id, the scope's newest by id
        (what journals written before epochs know; commands find the newest deployment of
        their listeners through their owner records: `cutover.journal.owner.newest`)."""
        ...

    def summaries(self, scope: str, since: str = "") -> list[Summary]:
        """The key figures of `scope`'s deployments, oldest first, from the id `since` on (ids
        sort by time), without reading whole documents where the journal keeps them apart."""
        ...

    def outcomes(self, key: str) -> dict[Color, Outcome]:
        """How the latest shift towards each color through listener or route `key` ended."""
        ...

    def request(self, scope: str, deployment_id: str, command: str) -> None: ...
    def requested(self, scope: str, deployment_id: str) -> str | None: ...


def open_journal(spec: str, table: str | None, namespace: str | None) -> Journal:
    """`stack` (the stack's own: its DynamoDB table, or on a Kubernetes stack without one, its
    namespace), `dynamodb`, `kubernetes` or `file:PATH`."""
    if spec == "stack":
        spec = "dynamodb" if table else "kubernetes"
    if spec == "dynamodb":
        if not table:
            raise ConfigError(
                "--journal dynamodb: this stack has no journal table; use --journal stack"
            )
        from cutover.journal.dynamodb import DynamoJournal  # each backend only when opened

        return DynamoJournal(table)
    if spec == "kubernetes":
        if not namespace:
            raise ConfigError(
                "--journal kubernetes: this stack has no Kubernetes namespace; use --journal stack"
            )
        from cutover.journal.kubernetes import KubernetesJournal  # each only when opened

        return KubernetesJournal(namespace)
    if spec.startswith("file:") and len(spec) > 5:
        from cutover.journal.file import FileJournal  # each backend only when opened

        return FileJournal(Path(spec[5:]).expanduser().resolve())
    raise ConfigError(f"--journal {spec!r}; expected stack, dynamodb, kubernetes or file:PATH")
