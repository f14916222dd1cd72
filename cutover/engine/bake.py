"""A wait under guards: a step's bake, a pause before a step, or the verification at 100%.

A `Bake` polls every guard of the split it serves at the shift's interval, keeps the samples,
reads the operator's requests (promote, abort) and watches the lease, and ends with the first
failure, abort or deadline, or with the wait being over. It owns its inconclusive tally and
its progress; what it shares with the shift it reads from the session.
"""

from __future__ import annotations

from cutover.engine.guard import (
    PAUSE_PROGRESS_SECONDS,
    PROGRESS_SECONDS,
    Guard,
    Progress,
    Tally,
    Verdict,
    guards_for,
    sample_of,
)
from cutover.engine.metric_guards import DowntimeGuard, analysis_guard
from cutover.engine.requests import Action, Request
from cutover.engine.session import Session
from cutover.weights import Weights

Why = tuple[str, str]  # why a wait ended early: (reason, detail)


class Bake:
    """Watch `weights` for `seconds` (None: a pause, until promoted) under every guard;
    `served`: what each service serves, where they differ (a pause before the first step of a
    train that found different splits); `downtime`: the shift's downtime guard, which watches
    every bake from the first write on."""

    def __init__(
        self,
        session: Session,
        weights: Weights,
        seconds: float | None,
        deadline: float | None,
        pause_index: int | None = None,
        served: list[Weights] | None = None,
        downtime: DowntimeGuard | None = None,
    ) -> None:
        self.session = session
        self.weights = weights
        self.seconds = seconds
        self.deadline = deadline
        self.pause_index = pause_index
        d, clock = session.deployment, session.clock
        analysis = analysis_guard(session.services, d.options, weights, d.started_at, clock.now,
                                  d.phase_began(weights))  # fmt: skip
        self.guards: list[Guard] = guards_for(session.services, d.options, weights, analysis,
                                              served, downtime)  # fmt: skip
        self.tally = Tally(d.options.max_inconclusive)
        self.started = clock.monotonic()
        self.progress = Progress(self.started, seconds, clock.monotonic)
        self.promoted = False  # ended by `cutover promote`
        self.promoted_full = False  # ... with --full

    @property
    def paused(self) -> bool:
        return self.pause_index is not None

    def run(self) -> Why | None:
        """(reason, detail) of the first failure, abort or deadline; None when the wait is
        over (or promoted)."""
        s, clock = self.session, self.session.clock
        end = None if self.seconds is None else self.started + self.seconds
        # progress at most every 10 s, or every 10% of the bake, whichever is rarer
        every = (
            max(PROGRESS_SECONDS, 0.1 * self.seconds) if self.seconds else PAUSE_PROGRESS_SECONDS
        )
        told = self.started
        first = True
        while True:
            verdicts = self.poll()
            now = clock.monotonic()
            if now - told >= every:  # tell, and keep the journal fresh for `status --watch`
                told = now
                s.log(str(self.progress))
                s.journal.save(s.deployment)
            elif first:  # the wait's first verdicts are seen at once
                s.journal.save(s.deployment)
            first = False
            ended = self._judged(verdicts) or self._asked()
            if ended is not None:
                return ended
            if self.promoted or end is not None and clock.monotonic() >= end:
                return None
            left = s.deployment.options.interval if end is None else end - clock.monotonic()
            clock.sleep(max(0.0, min(s.deployment.options.interval, left)))

    def poll(self) -> list[Verdict]:
        """Check every guard once and keep the sample (while paused, only when a verdict
        changed or a minute passed, so a long pause does not grow the journal)."""
        s = self.session
        verdicts: list[Verdict] = list(s.pool.map(lambda g: g.check(), self.guards))
        s.deployment.add_sample(
            sample_of(verdicts, self.weights, s.clock.now()), sparse=self.paused
        )
        self.progress.verdicts = verdicts
        s.show(self.progress)
        return verdicts

    def _judged(self, verdicts: list[Verdict]) -> Why | None:
        failed = [v for v in verdicts if v.state == "fail"]
        if failed:
            return "guard failed", "; ".join(f"{v.guard}: {v.detail}" for v in failed)
        too_many = self.tally.add(verdicts)
        if too_many:
            return "guards inconclusive", too_many
        return None

    def _asked(self) -> Why | None:
        """What the lease, the operator or the deadline say: a failure, or None to go on
        (`promoted` once a promote ended the wait)."""
        s = self.session
        if s.lease.lost.is_set():
            raise s.lease.lost_error()
        d = s.deployment
        request = Request.parse(s.journal.requested(d.scope, d.id))
        if request is not None and request.action == Action.ABORT:
            return "aborted", "cutover abort was requested"
        if request is not None and request.promotes(self.pause_index):
            self.promoted, self.promoted_full = True, request.action == Action.PROMOTE_FULL
            s.journal.request(d.scope, d.id, "")
            return None
        if self.deadline is not None and s.clock.monotonic() >= self.deadline:
            return "deadline", "the shift ran past its --deadline"
        return None
