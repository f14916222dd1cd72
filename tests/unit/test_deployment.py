"""The deployment type: its JSON is the journal's, including journals written before it existed."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
from cutover_gates.contract import Status
from hypothesis import given
from hypothesis import strategies as st

from cutover.deployment import Deployment, Options, scope_of
from cutover.report import figures, kpis, kpis_markdown, success_rate
from cutover.summary import Ending, Summary, cause_of
from cutover.timeline import Event, EventType, Failure, Sample, Timings

OLD = json.loads((Path(__file__).parent / "data" / "journal_v0_1.json").read_text())


@pytest.mark.parametrize("name", sorted(OLD))
def test_a_journal_written_by_the_previous_release_loads_and_writes_back_the_same(
    name: str,
) -> None:
    document = OLD[name]
    deployment = Deployment.from_json(document)
    assert deployment.to_json() == document
    assert deployment.options.target == document["options"]["target"]
    assert deployment.status == Status(document["status"])


def test_the_old_rolled_back_document_reads_as_attributes() -> None:
    d = Deployment.from_json(OLD["rolled-back"])
    assert d.status == Status.ROLLED_BACK
    assert d.failure is not None and "in ALARM" in d.failure.detail
    assert d.timings.restore_verified is True
    assert d.start_weights == [{"blue": 70, "green": 30}]
    assert d.timings.rollback_seconds is not None and d.timings.rollback_seconds > 0


def test_events_read_back_typed_and_a_newer_releases_type_stays_its_text() -> None:
    d = Deployment.from_json(OLD["rolled-back"])
    assert all(isinstance(e.type, EventType) for e in d.events)
    steps = [e for e in d.events if e.type == EventType.STEP]
    assert steps and all(e.weights is not None and e.index is not None for e in steps)
    newer = Event.from_json({"t": 5.0, "type": "canary-scaled", "replicas": 3})
    assert newer.type == "canary-scaled" and not isinstance(newer.type, EventType)
    assert newer.to_json() == {"t": 5.0, "type": "canary-scaled", "replicas": 3}
    assert newer.weights is None and newer.index is None and newer.seconds == 0


def _deployment(**kw: object) -> Deployment:
    base = Deployment(
        id="20260101T000000Z-abcdef",
        scope=scope_of(["arn:listener"]),
        listeners=["arn:listener"],
        services=["prod/checkout"],
        options=Options(target="green", steps=[50, 100], bake=10.0),
        snapshot={"arn:listener": {"targetGroups": [], "stickiness": {}}},
        plan=[{"green": 50, "blue": 50}, {"green": 100, "blue": 0}],
        started_at=1000.0,
    )
    for key, value in kw.items():
        setattr(base, key, value)
    return base


events = st.builds(
    Event,
    t=st.floats(0, 2e9, allow_nan=False),
    type=st.sampled_from(["started", "step", "paused", "restored"]),
    detail=st.dictionaries(st.sampled_from(["index", "reason", "verified"]), st.integers()),
)
samples = st.builds(
    Sample,
    t=st.floats(0, 2e9, allow_nan=False),
    weights=st.fixed_dictionaries({"blue": st.integers(0, 100), "green": st.integers(0, 100)}),
    ok=st.booleans(),
    guards=st.dictionaries(
        st.sampled_from(["alarms", "targets", "probe"]),
        st.sampled_from(["ok", "fail", "inconclusive"]),
    ),
)


@given(
    st.sampled_from(list(Status)[:-1]),
    st.lists(events, max_size=5),
    st.lists(samples, max_size=5),
    st.one_of(st.none(), st.floats(0, 2e9, allow_nan=False)),
)
def test_json_round_trip(
    status: Status, evs: list[Event], sms: list[Sample], detected: float | None
) -> None:
    d = _deployment(status=status, events=evs, samples=sms, timings=Timings(detected_at=detected))
    text = json.dumps(d.to_json())
    assert Deployment.from_json(json.loads(text)) == d


@pytest.mark.parametrize(
    ("status", "live", "seen"),
    [
        (Status.IN_PROGRESS, True, Status.IN_PROGRESS),
        (Status.IN_PROGRESS, False, Status.INTERRUPTED),
        (Status.PAUSED, False, Status.INTERRUPTED),
        (Status.SUCCEEDED, False, Status.SUCCEEDED),
        (Status.ROLLED_BACK, True, Status.ROLLED_BACK),
    ],
)
def test_interrupted_is_derived_once(status: Status, live: bool, seen: Status) -> None:
    assert _deployment(status=status).state(lease_live=live) == seen


def test_activity_names_the_step_and_the_time_left() -> None:
    d = _deployment()
    d.event("step", 2000.0, index=0, weights={"green": 50, "blue": 50})
    assert d.activity(2004.0) == "baking step 1/2 (blue 50 / green 50), 6 s left"
    d.event("step-intent", 2011.0, index=1, weights={"green": 100, "blue": 0})
    assert d.activity(2011.0) == "writing step 2/2"
    d.status = Status.PAUSED
    d.event("paused", 2012.0, index=1, before={"green": 100, "blue": 0})
    assert d.activity(2013.0) == "paused before step 2/2"
    d.status = Status.IN_PROGRESS
    d.event("step", 2014.0, index=1, weights={"green": 100, "blue": 0})
    d.event("verifying", 2015.0, seconds=600)
    assert d.activity(2115.0) == "verifying blue 0 / green 100, 500 s left"


def test_figures_count_downtime_from_failing_samples_and_rollback_from_timings() -> None:
    d = _deployment(
        events=[Event(999.0, EventType.STEP, {"index": 0, "weights": {"blue": 50, "green": 50}})],
        samples=[
            Sample(1000.0, {"blue": 50, "green": 50}, True, {"targets": "ok"}),
            Sample(1002.0, {"blue": 50, "green": 50}, False, {"targets": "fail"}),
            Sample(1003.5, {"blue": 50, "green": 50}, False, {"targets": "fail"}),
        ],
        timings=Timings(detected_at=1003.5, restore_accepted_at=1003.6, restored_at=1004.0),
        finished_at=1005.0,
        status=Status.ROLLED_BACK,
    )
    numbers = figures(d)
    assert numbers == {
        "shiftSeconds": 5.0,
        "downtimeSeconds": 2.0,
        "failedRequests": None,  # no downtime guard counted them
        "totalRequests": None,
        "failedRequestSeconds": None,
        "rollbackSeconds": 0.5,
        "restoreWriteSeconds": 0.1,
    }
    summary = Summary.of(d)
    assert summary.time_to_restore_seconds == 2.0  # from the first failing sample
    assert summary.change_failed and Summary.from_json(summary.to_json()) == summary


def test_a_failure_before_the_target_served_anything_is_not_downtime() -> None:
    """A probe that failed while the first step's write was still being verified: given
    back before any user reached the new color."""
    d = _deployment(
        events=[Event(999.0, EventType.STEP_INTENT, {"index": 0})],
        samples=[Sample(1000.0, {"blue": 100, "green": 0}, False, {"probe": "fail"})],
        timings=Timings(detected_at=1000.0, restored_at=1000.4),
        finished_at=1001.0,
        status=Status.ROLLED_BACK,
    )
    assert figures(d)["downtimeSeconds"] == 0.0


def test_kpis_give_the_dora_figures_and_never_a_zero_second_rollback_for_a_success() -> None:
    def finished(
        status: Status, moved: bool, restore: float | None, after_success: bool = False
    ) -> Summary:
        cause = "rollback" if after_success else "alarms" if status == Status.ROLLED_BACK else None
        return Summary("id", "shift", str(status), "green", 0.0, 10.0, moved, 10.0, 0.0,
                       restore, restore, restore, moved, cause, after_success)  # fmt: skip

    data = kpis(
        [
            finished(Status.SUCCEEDED, True, None),
            finished(Status.SUCCEEDED, True, None),
            finished(Status.ROLLED_BACK, True, 4.0),
            finished(Status.ROLLED_BACK, False, 0.5),  # refused its first write: no deployment
            finished(Status.ROLLED_BACK, True, 1.0, after_success=True),
        ],
        days=2,
    )
    assert (data["deployments"], data["succeeded"], data["givenBackBeforeMoving"]) == (4, 3, 1)
    assert data["deploymentsPerDay"] == 1.5
    assert data["changeFailureRate"] == 0.25  # the operator's rollback after a success is not one
    assert (data["rolledBack"], data["rolledBackBy"], data["rolledBackAfterSuccess"]) == (
        1,
        {"alarms": 1},
        1,
    )
    assert data["timeToRestoreSeconds"] == {"p50": 4.0, "p95": 4.0, "max": 4.0}
    assert [r["rollbackSeconds"] for r in data["perDeployment"]] == [None, None, 4.0, 1.0]
    assert data["leadTimeSeconds"] is None
    text = kpis_markdown({"since": "20260101T000000Z", **data})
    assert "None" not in text and "Change failure rate: 25%" in text
    assert "- Rolled back before they succeeded: 1 (alarms: 1)" in text.splitlines()
    assert "| rolled back after it succeeded (by an operator) |" in text
    assert "| rolled back (alarms) |" in text
    assert "- Lead time for changes: not measured: cutover sees a release" in text
    empty = kpis_markdown({"since": "20260101T000000Z", **kpis([], days=1)})
    assert "None" not in empty and "Rollback time: p50 n/a" in empty


def _moved(status: Status, **kw: object) -> Deployment:
    """A deployment whose first step was written and served, finished with `status`."""
    steps = [
        Event(999.0, EventType.STEP_INTENT, {"index": 0, "weights": {"blue": 50, "green": 50}}),
        Event(999.5, EventType.STEP, {"index": 0, "weights": {"blue": 50, "green": 50}}),
    ]
    return _deployment(status=status, events=steps, finished_at=1010.0, **kw)


def test_success_rate_counts_finished_shifts_that_moved_traffic_not_drills() -> None:
    history = [
        _moved(Status.SUCCEEDED),
        _moved(Status.ROLLED_BACK),
        _deployment(status=Status.ROLLED_BACK),  # given back before it moved anything
        _moved(Status.IN_PROGRESS),
        _moved(Status.DRILLED, options=Options(target="green", steps=[5], kind="drill")),
    ]
    assert success_rate(Summary.of(d) for d in history) == {
        "deployments": 2,
        "succeeded": 1,
        "successRate": 0.5,
    }


def test_an_operator_rollback_after_a_success_is_its_own_ending_not_a_failed_change() -> None:
    rolled = _moved(Status.ROLLED_BACK, failure=Failure("rollback", "cutover rollback"))
    rolled.event(EventType.FINISHED, 1010.0, status="succeeded")
    rolled.event(EventType.ROLLBACK_REQUESTED, 2000.0, previousStatus="succeeded")
    rolled.event(EventType.FINISHED, 2001.0, status="rolled-back")
    rolled.finished_at = 2001.0
    summary = Summary.of(rolled)
    assert summary.ending == Ending.ROLLED_BACK_AFTER_SUCCESS and summary.succeeded
    assert not summary.change_failed and summary.cause == "rollback"
    assert summary.shift_seconds == 10.0  # the shift's own duration, not until the rollback
    # the same rollback of a shift still running is a failed change
    aborted = _moved(Status.ROLLED_BACK, failure=Failure("rollback", "cutover rollback"))
    aborted.event(EventType.ROLLBACK_REQUESTED, 2000.0, previousStatus="in-progress")
    assert Summary.of(aborted).change_failed and Summary.of(aborted).ending == Ending.ROLLED_BACK
    assert Summary.from_json(summary.to_json()) == summary


@pytest.mark.parametrize(
    ("reason", "detail", "cause"),
    [
        ("guard failed", "analysis: green error rate more than 1 points above blue's", "analysis"),
        ("guard failed", "alarms: in ALARM: a; targets: 0 of 6 healthy", "alarms, targets"),
        ("deadline", "the shift ran past its --deadline", "deadline"),
        ("watchdog", "the shift's lease ran out", "watchdog"),
    ],
)
def test_the_cause_names_the_guards_that_failed_or_the_reason(
    reason: str, detail: str, cause: str
) -> None:
    assert cause_of(reason, detail) == cause


@pytest.mark.parametrize("name", sorted(OLD))
def test_a_journaled_documents_summary_is_the_deployments(name: str) -> None:
    """What a journal written before summaries were kept adds up, without building each of
    its samples, is what the deployment itself gives."""
    document = copy.deepcopy(OLD[name])
    document["samples"][1]["ok"] = False  # some downtime, so the samples are read
    summary = Summary.of_document(document)
    assert summary == Summary.of(Deployment.from_json(document))
    assert summary.downtime_seconds > 0


def test_a_summary_kept_by_the_previous_release_reads_with_what_it_lacks_derived() -> None:
    kept = Summary.of(_moved(Status.SUCCEEDED)).to_json()
    for key in ("movedTraffic", "cause", "rolledBackAfterSuccess"):
        kept.pop(key)
    old = Summary.from_json(kept)
    assert old.moved_traffic and old.counted and not old.rolled_back_after_success


def test_scope_is_stable_whatever_the_order() -> None:
    assert scope_of(["a", "b"]) == scope_of(["b", "a"]) != scope_of(["a"])


def test_new_ids_sort_by_time() -> None:
    from cutover.deployment import new_deployment_id

    assert new_deployment_id(time.time() - 3600) < new_deployment_id(time.time())


def test_kpis_count_finished_shifts_and_take_rollback_quantiles() -> None:
    from cutover.report import kpis

    failed = Deployment.from_json(OLD["rolled-back"])
    succeeded = Deployment.from_json(OLD["succeeded-assisted"])
    running = _deployment(status=Status.IN_PROGRESS)
    drill = _deployment(
        status=Status.DRILLED, options=Options(target="green", steps=[5], kind="drill")
    )
    data = kpis([Summary.of(d) for d in (failed, succeeded, running, drill)], days=30)
    assert (data["deployments"], data["succeeded"], data["successRate"]) == (2, 1, 0.5)
    only = round(failed.timings.rollback_seconds or 0, 3)
    assert data["rollbackSeconds"] == {"p50": only, "p95": only, "max": only}
    assert [r["deployment"] for r in data["perDeployment"]] == [failed.id, succeeded.id]
    assert kpis([], days=30)["rollbackSeconds"] == {"p50": None, "p95": None, "max": None}


def test_a_pause_keeps_samples_only_when_a_verdict_changes_or_a_minute_passed() -> None:
    d = _deployment()
    ok = {"alarms": "ok"}
    for t in (0.0, 5.0, 10.0):
        d.add_sample(Sample(t, {"blue": 100, "green": 0}, True, ok), sparse=True)
    d.add_sample(
        Sample(15.0, {"blue": 100, "green": 0}, True, {"alarms": "inconclusive"}), sparse=True
    )
    d.add_sample(
        Sample(16.0, {"blue": 100, "green": 0}, True, {"alarms": "inconclusive"}), sparse=True
    )
    d.add_sample(
        Sample(80.0, {"blue": 100, "green": 0}, True, {"alarms": "inconclusive"}), sparse=True
    )
    assert [s.t for s in d.samples] == [0.0, 15.0, 80.0]
    d.add_sample(
        Sample(81.0, {"blue": 100, "green": 0}, True, {"alarms": "inconclusive"}), sparse=False
    )
    assert len(d.samples) == 4  # a bake keeps every poll
