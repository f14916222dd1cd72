"""The journal in a local JSON file; the lease on each listener is an flock beside it, which
the kernel releases when its process dies (nothing to renew)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cutover_gates.contract import Color, Holder, Outcome, parse_color

from cutover.deployment import Deployment, scope_of
from cutover.errors import ConfigError, DeploymentFailed, LockHeld
from cutover.journal.items import Skipped, parse_item, parse_outcome
from cutover.journal.lease import LeaseState, finished_elsewhere, held_message
from cutover.journal.owner import Owner
from cutover.summary import Summary

# How long a command waits for the journal file's short lock before saying who holds it.
MUTEX_SECONDS = 5.0


class FileJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.parent.is_dir():
            raise ConfigError(f"--journal file:{path}: folder {path.parent} does not exist")
        self._locks: dict[str, IO[str]] = {}
        self.skipped: list[Skipped] = []

    # -- the lease -------------------------------------------------------------------------

    def _lock_file(self, key: str) -> Path:
        return self.path.with_name(f"{self.path.name}.lock-{scope_of([key])}")

    def acquire_one(self, key: str, holder: Holder, now: float) -> bool:
        handle = open(self._lock_file(key), "a+")  # noqa: SIM115 - held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            current = Holder.from_json(json.loads(handle.read() or "{}"))
            handle.close()
            raise LockHeld(held_message(f"listener {key}", current)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(holder.to_json()))
        handle.flush()
        self._locks[key] = handle
        return True

    def heartbeat(self, keys: list[str], holder: Holder, now: float) -> bool:
        """Nothing to renew: the kernel holds an flock for as long as the process lives."""
        return all(key in self._locks for key in keys)

    def release(self, keys: list[str], holder: Holder) -> None:
        for key in keys:
            handle = self._locks.pop(key, None)
            if handle is not None:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()

    def _flock_holder(self, key: str) -> Holder | None:
        path = self._lock_file(key)
        if not path.exists():
            return None
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                return Holder.from_json(json.loads(handle.read() or "{}"))
            fcntl.flock(handle, fcntl.LOCK_UN)
        return None

    def lease_state(self, key: str) -> LeaseState | None:
        """An flock is held exactly as long as its process lives: live, or gone."""
        holder = self._flock_holder(key)
        if holder is None:
            return None
        return LeaseState(holder, time.time(), float("inf"))

    # -- deployments and control requests ---------------------------------------------------

    @contextlib.contextmanager
    def _document(self, write: bool = True) -> Iterator[dict[str, Any]]:
        """The journal file under a short exclusive lock; written back atomically when `write`."""
        with open(self.path.with_name(self.path.name + ".mutex"), "a") as mutex:
            self._take(mutex)
            try:
                data = json.loads(self.path.read_text()) if self.path.exists() else {}
            except (json.JSONDecodeError, RecursionError) as e:
                why = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
                raise ConfigError(
                    f"--journal file:{self.path}: not a cutover journal ({why})"
                ) from None
            data.setdefault("deployments", {})
            data.setdefault("controls", {})
            yield data
            if write:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(data, indent=1))
                os.replace(tmp, self.path)

    def _take(self, mutex: IO[str]) -> None:
        """The journal file's short lock, waited for at most MUTEX_SECONDS: a process stopped
        while holding it (SIGSTOP, a suspended laptop) must not hang every other command."""
        deadline = time.monotonic() + MUTEX_SECONDS
        while True:
            try:
                fcntl.flock(mutex, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DeploymentFailed(
                        f"--journal file:{self.path}: another process has held the journal for "
                        f"{MUTEX_SECONDS:g}s without letting go (stopped or frozen?); nothing was changed"
                    ) from None
                time.sleep(0.02)

    def _stored(self, data: dict[str, Any], deployment: Deployment) -> tuple[Any, Any] | None:
        """(status, generation) as the file holds the deployment; None when it has none."""
        stored = data["deployments"].get(deployment.id)
        if not isinstance(stored, dict):
            return None
        return stored.get("status"), int(stored.get("generation", 0) or 0)

    def _check(self, data: dict[str, Any], deployment: Deployment) -> None:
        """LeaseLost unless the file holds what this process last saw of the deployment."""
        stored = self._stored(data, deployment)
        seen = (
            None
            if deployment.journaled is None
            else (str(deployment.journaled), deployment.generation)
        )
        if stored != seen:
            what = "it exists already" if seen is None else f"now {stored[0] if stored else 'gone'}"
            raise finished_elsewhere(deployment.id, what)

    def save(self, deployment: Deployment) -> None:
        with self._document() as data:
            self._check(data, deployment)
            data["deployments"][deployment.id] = deployment.to_json()
            outcomes = data.setdefault("outcomes", {})
            for key, outcome in deployment.outcomes().items():
                known = outcomes.setdefault(key, {}).get(outcome.color)
                if outcome.newer_than(parse_outcome(key, known, []) if known else None):
                    outcomes[key][outcome.color] = outcome.to_json()
        deployment.journaled = deployment.status

    def owner(self, key: str) -> Owner | None:
        with self._document(write=False) as data:
            found = (data.get("owners") or {}).get(key)
        return None if found is None else Owner.from_json(found)

    def take(self, key: str, owner: Owner) -> bool:
        with self._document() as data:
            owners = data.setdefault("owners", {})
            stored = owners.get(key)
            if (Owner.from_json(stored).epoch if stored else 0) != owner.epoch - 1:
                return False
            owners[key] = owner.to_json()
        return True

    def claim(self, deployment: Deployment) -> None:
        with self._document() as data:
            if deployment.journaled is None:
                deployment.journaled = deployment.status
            self._check(data, deployment)
            data["deployments"][deployment.id]["generation"] = deployment.generation + 1
        deployment.generation += 1

    def outcomes(self, key: str) -> dict[Color, Outcome]:
        with self._document(write=False) as data:
            found = dict((data.get("outcomes") or {}).get(key) or {})
        outcomes = (parse_outcome(f"outcomes/{key}/{c}", o, self.skipped) for c, o in found.items())
        return {parse_color(o.color): o for o in outcomes if o is not None}

    def _all(self) -> list[Deployment]:
        with self._document(write=False) as data:
            found = dict(data["deployments"])
        parsed = (parse_item(f"deployments/{k}", d, self.skipped) for k, d in sorted(found.items()))
        return [d for d in parsed if d is not None]

    def _history(self, scope: str, since: str = "") -> list[Deployment]:
        found = [d for d in self._all() if d.scope == scope and d.id >= since]
        return sorted(found, key=lambda d: d.order)

    def summaries(self, scope: str, since: str = "") -> list[Summary]:
        return [Summary.of(d) for d in self._history(scope, since)]

    def active(self) -> list[Deployment]:
        return [d for d in self._all() if d.status.active]

    def load(self, scope: str, deployment_id: str | None = None) -> Deployment | None:
        found = self._history(scope)
        if deployment_id:
            return next((d for d in found if d.id == deployment_id), None)
        return found[-1] if found else None

    def request(self, scope: str, deployment_id: str, command: str) -> None:
        with self._document() as data:
            data["controls"][f"{scope}/{deployment_id}"] = command

    def requested(self, scope: str, deployment_id: str) -> str | None:
        with self._document(write=False) as data:
            controls: dict[str, str] = data["controls"]
            return controls.get(f"{scope}/{deployment_id}")
