"""The live view's rows, from a deployment as journaled: pure."""

from __future__ import annotations

from cutover_gates.contract import Holder, Status

from cutover.deployment import Deployment, Options
from cutover.timeline import Failure, Sample
from cutover.view import WIDTH, exit_code, lines, step_rows


def deployment() -> Deployment:
    d = Deployment(
        id="20261127T000000Z-aaaaaa",
        scope="s",
        listeners=["l"],
        services=["prod/checkout"],
        options=Options(target="green", steps=[10, 50, 100], bake=60.0),
        snapshot={},
        plan=[{"green": 10, "blue": 90}, {"green": 50, "blue": 50}, {"green": 100, "blue": 0}],
        started_at=1000.0,
    )
    d.event("step", 1001.0, index=0, weights=d.plan[0])
    d.step = 0
    return d


def test_a_baking_step_shows_its_time_left_and_the_rest_pending() -> None:
    rows = step_rows(deployment(), now=1031.0)
    assert [r.state for r in rows] == ["baking, 30s left", "pending", "pending"]


def test_a_paused_deployment_shows_where_it_waits_and_what_to_do() -> None:
    d = deployment()
    d.event("step", 1062.0, index=1, weights=d.plan[1])
    d.step = 1
    d.status = Status.PAUSED
    d.event("paused", 1123.0, index=2, before=d.plan[2])
    d.samples.append(Sample(1124.0, d.plan[1], True, {"alarms": "ok", "targets": "ok"}))
    assert [r.state for r in step_rows(d, now=1130.0)] == ["done", "done", "paused before"]
    text = lines(d, Status.PAUSED, {"prod/checkout": d.plan[1]}, None, now=1130.0)
    assert "  step 3/3 blue 0 / green 100: paused before" in text
    assert "  guards: alarms ok, targets ok" in text
    assert any(line.startswith("  next: `cutover promote`") for line in text)


def test_finished_deployments_end_the_watch_with_their_code() -> None:
    assert exit_code(Status.SUCCEEDED) == 0 and exit_code(Status.DRILLED) == 0
    assert exit_code(Status.ROLLED_BACK) == 1


def test_a_finished_deployment_shows_every_step_done() -> None:
    d = deployment()
    for index in (1, 2):
        d.event("step", 1000.0 + 61 * index, index=index, weights=d.plan[index])
        d.step = index
    d.status = Status.SUCCEEDED
    assert [r.state for r in step_rows(d, now=2000.0)] == ["done", "done", "done"]


def test_every_line_fits_an_80_column_terminal_and_keeps_every_word() -> None:
    d = deployment()
    d.status = Status.INTERRUPTED
    d.failure = Failure(
        "guard failed",
        "analysis: green error rate more than 1 point above blue's (green 6.1% errors, "
        "Average 0.101s vs blue 1.0% errors, Average 0.099s over 12 window(s), 4 look(s))",
    )
    holder = Holder(
        "d@a-runner:4242:ab", "d", "someone-with-a-long-name", "a-runner.example.internal", 4242
    )
    served = {"prod/checkout": d.plan[0]}
    text = lines(d, Status.INTERRUPTED, served, holder, now=1031.0)
    assert all(len(line) <= WIDTH for line in text), [line for line in text if len(line) > WIDTH]
    joined = " ".join(line.strip() for line in text)
    assert "over 12 window(s), 4 look(s))" in joined
    assert "`cutover rollback` gives back what it found, `cutover resume` goes on" in joined


def test_a_watchdog_restore_says_its_reason_once() -> None:
    """The watchdog journals `watchdog`, `watchdog: holder ...`: said `failure: watchdog:
    holder ...`, never `watchdog: watchdog:`."""
    d = deployment()
    d.status = Status.ROLLED_BACK
    d.failure = Failure("watchdog", "watchdog: holder ci@runner stopped renewing at 08:15:00Z")
    text = " ".join(lines(d, Status.ROLLED_BACK, {}, None, now=1031.0))
    assert "failure: watchdog: holder ci@runner" in text and "watchdog: watchdog" not in text
    d.failure = Failure("guard failed", "alarms: in ALARM")
    assert "failure: guard failed: alarms: in ALARM" in " ".join(
        lines(d, Status.ROLLED_BACK, {}, None, now=1031.0)
    )


def test_status_reports_the_same_facts_as_json_and_as_lines() -> None:
    from cutover.status import ServiceStatus, StatusReport

    service = ServiceStatus(
        name="prod/checkout",
        route="arn:listener",
        weights={"blue": 90, "green": 10},
        ready={"blue": 6, "green": 6},
        ready_unit="tasks",
        releases={"blue": "1.41.0", "green": "1.42.0"},
        alarms={"checkout-green-5xx": "ALARM", "checkout-blue-5xx": "OK"},
    )
    d = deployment()
    d.status = Status.IN_PROGRESS
    holder = Holder("t", d.id, "ana", "runner-1", 42)
    live = StatusReport([service], d, holder, skipped=1, now=1031.0)
    found = live.to_json()
    assert found["deployment"]["status"] == "in-progress"
    assert found["deployment"]["doing"].startswith("baking step 1/3")
    assert found["lock"]["who"] == "ana" and found["skippedJournalItems"] == 1
    assert found["services"][0]["alarms"]["checkout-green-5xx"] == "ALARM"
    text = live.render()
    assert text[0] == "prod/checkout: blue 90 / green 10"
    assert text.index("  alarm checkout-blue-5xx: OK") < text.index(
        "  alarm checkout-green-5xx: ALARM"
    )
    assert text[-1] == f"lock held by deployment {d.id} (ana on runner-1, pid 42)"
    # its lease gone: interrupted, with what to do, and no lock
    gone = StatusReport([service], d, None, skipped=0, now=1031.0)
    assert gone.to_json()["deployment"]["status"] == "interrupted"
    assert gone.to_json()["deployment"]["doing"] is None and gone.to_json()["lock"] is None
    assert "`cutover rollback` restores the weights it found" in gone.render()[-1]
    assert StatusReport([], None, None, 0, 0.0).render() == ["no deployment in the journal"]
