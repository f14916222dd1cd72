"""What a running deployment's actor shares: the shift driving it, or whoever takes it over.

One object holds the deployment, its services, journal, lease, clock, log, notifier, signal
handling and thread pool, and `record()`; the shift, its bakes, the restore and the takeover
are handed it, so each reads and writes one shared state and none reaches back into another.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cutover.clock import Clock
from cutover.deployment import Deployment
from cutover.engine.guard import Progress
from cutover.interrupt import Interrupts, NoInterrupts
from cutover.journal import Journal
from cutover.journal.lease import Lease
from cutover.notifier import Notifier
from cutover.service import Service
from cutover.timeline import EventType
from cutover.weights import Weights

Log = Callable[[str], None]


def busy_workers(services: list[Service]) -> int:
    """Threads for calls made to every service at once (writes, reads, guard polls)."""
    return min(64, max(1, len(services) * 2))


def write_seconds(services: list[Service]) -> float:
    """The longest one write to any of these routers can take, retries included."""
    return max((s.router.longest_write for s in services), default=0.0)


@dataclass
class Session:
    """A deployment and everything acting on it shares (`Session.of` builds one)."""

    services: list[Service]
    journal: Journal
    notifier: Notifier
    log: Log
    clock: Clock
    interrupts: Interrupts
    lease: Lease
    show: Callable[[Progress], None] = lambda progress: None
    workers: int = 1
    _deployment: Deployment | None = None

    @classmethod
    def of(
        cls,
        services: list[Service],
        journal: Journal,
        notifier: Notifier,
        log: Log,
        clock: Clock | None = None,
        interrupts: Interrupts | None = None,
        lease: Lease | None = None,
        show: Callable[[Progress], None] = lambda progress: None,
        extra_workers: int = 0,
    ) -> Session:
        """A session over `services`, with a lease on their listeners or routes unless one
        is handed in; `extra_workers` beyond one thread per router call (a takeover scales
        colors at the same time)."""
        clock = clock or Clock()
        keys = [s.key for s in services]
        lease = lease or Lease(journal, keys, log, write_seconds(services), clock)
        return cls(services, journal, notifier, log, clock, interrupts or NoInterrupts(), lease,
                   show, busy_workers(services) + extra_workers)  # fmt: skip

    def __post_init__(self) -> None:
        self.keys = [s.key for s in self.services]
        self.write_seconds = write_seconds(self.services)
        self.pool = ThreadPoolExecutor(max_workers=self.workers)

    @property
    def deployment(self) -> Deployment:
        assert self._deployment is not None, "no deployment started, resumed or loaded"
        return self._deployment

    @deployment.setter
    def deployment(self, deployment: Deployment) -> None:
        self._deployment = deployment

    def record(self, kind: EventType, **detail: object) -> None:
        """Add an event to the deployment's timeline and journal it."""
        self.deployment.event(kind, self.clock.now(), **detail)
        self.journal.save(self.deployment)

    def served(self) -> list[Weights] | None:
        """What every router serves now, in the order of `services`; None (said) when one
        cannot be read."""
        try:
            return list(self.pool.map(lambda s: s.router.served(), self.services))
        except Exception as e:  # noqa: BLE001 - unreadable is a fact the caller acts on
            self.log(f"  (reading the weights back: {e})")
            return None

    def drain(self) -> None:
        """Let calls still in flight finish (a step's write interrupted by a signal must not
        land after the snapshot is written back), with a fresh pool for what follows."""
        busy, self.pool = self.pool, ThreadPoolExecutor(max_workers=self.workers)
        busy.shutdown(wait=True)

    def close(self) -> None:
        """Release the lease and the threads."""
        self.lease.release()
        self.pool.shutdown(wait=False)
