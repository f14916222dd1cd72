"""The report's plot explains itself: read from the figure's own artists, not by eye."""

from __future__ import annotations

import json
from pathlib import Path

from cutover_gates.contract import Status

from cutover.deployment import Deployment
from cutover.plot import figure_of, kpi_figure
from cutover.report import kpis, report_json, report_markdown
from cutover.summary import Summary
from cutover.timeline import EventType, Failure, Sample, Timings

OLD = json.loads((Path(__file__).parent / "data" / "journal_v0_1.json").read_text())


def texts(figure: object) -> list[str]:
    ax = figure.axes[0]  # type: ignore[attr-defined]
    return [t.get_text() for t in ax.texts]


def test_a_rolled_back_deployment_marks_its_steps_failure_and_restore() -> None:
    deployment = Deployment.from_json(OLD["rolled-back"])
    figure = figure_of(deployment)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "% of traffic to green" in labels
    assert "guard failed" in labels and "restored (weights served again)" in labels
    notes = texts(figure)
    assert any(n.startswith("step 1: blue 60 / green 40") for n in notes), notes
    assert "guard failed: alarms: in ALARM: checkout-prod-green-5xx-rate" in notes
    restored = [n for n in notes if n.startswith("restored in ")]
    assert restored and restored[0].endswith("s")
    assert figure.axes[1].get_xlabel() == "seconds since start"


def test_the_failure_is_a_line_and_the_restore_a_point_where_the_weights_were_served() -> None:
    """A tenth of a second apart, two vertical lines were one: the restore is a point on the
    traffic line, at the weights the deployment found, when they were served again."""
    deployment = Deployment.from_json(OLD["rolled-back"])
    ax = figure_of(deployment).axes[0]
    by_label = {line.get_label(): line for line in ax.get_lines()}
    failure, restore = by_label["guard failed"], by_label["restored (weights served again)"]
    start, timings = deployment.started_at, deployment.timings
    assert list(failure.get_xdata()) == [timings.detected_at - start] * 2  # a vertical line
    assert restore.get_marker() == "D" and restore.get_linestyle() == "None"
    assert list(restore.get_xdata()) == [timings.restored_at - start]
    assert list(restore.get_ydata()) == [30]  # green's share when it started, served again


def test_the_guards_panel_names_each_guard_and_colors_each_verdict() -> None:
    deployment = Deployment.from_json(OLD["rolled-back"])
    failing = Sample(deployment.samples[-1].t + 0.1, {"blue": 30, "green": 70}, False,
                     {"alarms": "fail", "targets": "ok"})  # fmt: skip
    deployment.samples.append(failing)
    guards = figure_of(deployment).axes[1]
    assert [t.get_text() for t in guards.get_yticklabels()] == ["alarms", "targets"]
    assert [t.get_text() for t in guards.get_legend().get_texts()] == ["ok", "fail"]
    fail = next(c for c in guards.collections if c.get_label() == "fail")
    assert [list(xy) for xy in fail.get_offsets()] == [[failing.t - deployment.started_at, 0]]


def _kpis() -> dict:
    """Three deployments: one succeeded, one rolled back by the analysis, one rolled back by an
    operator after it succeeded."""
    succeeded = Deployment.from_json(OLD["succeeded-assisted"])
    failed = Deployment.from_json(OLD["rolled-back"])
    failed.failure = Failure("guard failed", "analysis: green error rate more than 1 points")
    later = Deployment.from_json(OLD["succeeded-assisted"])
    later.id = later.id[:-6] + "0perat"
    later.status, later.failure = Status.ROLLED_BACK, Failure("rollback", "cutover rollback")
    later.event(EventType.ROLLBACK_REQUESTED, later.finished_at or 0, previousStatus="succeeded")
    later.timings = Timings(detected_at=1.0, restored_at=1.2)
    summaries = [Summary.of(d) for d in (failed, succeeded, later)]
    return {"since": "20260101T000000Z", **kpis(summaries, days=30)}


def test_the_kpi_plot_names_each_deployment_ending_and_rollback() -> None:
    data = _kpis()
    figure = kpi_figure(data)
    ended, down, back = figure.axes
    ids = [r["deployment"] for r in data["perDeployment"]]
    assert [t.get_text() for t in back.get_xticklabels()] == ids  # whole ids, suffix and all
    assert [t.get_text() for t in ended.get_legend().get_texts()] == [
        "succeeded", "rolled back before it succeeded\n(analysis 1)",
        "rolled back by an operator after it succeeded",
    ]  # fmt: skip
    assert [t.get_text() for t in ended.texts] == ["analysis"]  # what rolled it back
    assert [t.get_text() for t in back.get_legend().get_texts()] == [
        "rolled back before it succeeded", "rolled back by an operator after it succeeded",
    ]  # fmt: skip
    assert ended.get_title() == "How each deployment ended, and how long it took"
    assert figure._suptitle.get_text().startswith("2 of 3 deployments succeeded (67%)")
    # no deployment lost service: the panel says so instead of drawing zeros
    assert [t.get_text() for t in down.texts] == ["no downtime in any of the 3 deployments"]


def test_many_deployments_keep_their_labels_apart() -> None:
    """Past twenty deployments the causes are counted in the legend, not written over the
    bars, and about two dozen ids label the axis."""
    data = _kpis()
    rows = data["perDeployment"]
    data["perDeployment"] = [dict(rows[i % 3], deployment=f"{i:03d}") for i in range(60)]
    ended, _, back = kpi_figure(data).axes
    assert list(ended.texts) == []
    assert "rolled back before it succeeded\n(analysis 20)" in [
        t.get_text() for t in ended.get_legend().get_texts()
    ]
    assert [t.get_text() for t in back.get_xticklabels()] == [f"{i:03d}" for i in range(0, 60, 3)]


def test_the_kpi_plot_draws_downtime_where_there_was_some() -> None:
    data = _kpis()
    data["perDeployment"][0]["downtimeSeconds"] = 2.5
    down = kpi_figure(data).axes[1]
    assert list(down.texts) == [] and [b.get_height() for b in down.patches] == [2.5, 0.0, 0.0]
    assert [t.get_text() for t in down.get_legend().get_texts()] == [
        "no healthy target, or a probe failing"
    ]


def test_pauses_and_promotes_are_marked_and_long_shifts_read_in_minutes() -> None:
    deployment = Deployment.from_json(OLD["succeeded-assisted"])
    deployment.finished_at = deployment.started_at + 600
    figure = figure_of(deployment)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "paused" in labels and "promoted" in labels
    assert figure.axes[1].get_xlabel() == "minutes since start"


def test_the_report_says_when_its_timings_came_from_an_emulator() -> None:
    deployment = Deployment.from_json(OLD["rolled-back"])
    deployment.endpoint = "http://127.0.0.1:5000"
    text = report_markdown(report_json(deployment, [Summary.of(deployment)]), None)
    assert "measured against a local emulator on 127.0.0.1, not a cloud" in text
    deployment.endpoint = None
    assert "emulator" not in report_markdown(
        report_json(deployment, [Summary.of(deployment)]), None
    )


def test_the_reports_evidence_column_says_none_where_the_log_e_value_is_minus_infinity() -> None:
    """A look where the target is no worse at all has an e-value of 0: its log is -inf, said
    as `none` (and `∞` for certainty), never as `-inf`."""
    deployment = Deployment.from_json(OLD["rolled-back"])
    data = report_json(deployment, [Summary.of(deployment)])
    side = {"color": "green", "requests": 400, "errorRate": 1.0, "latency": 0.1}
    metric = {"failed": False, "threshold": 3.0, "critical": True, "dryRun": False}
    data["analysis"] = [{"at": "08:15:00", "weights": {"blue": 90, "green": 10}, "state": "ok",
                         "target": side, "baseline": {**side, "color": "blue"},
                         "metrics": {"errorRate": {**metric, "evidence": float("-inf")},
                                     "latency": {**metric, "evidence": float("inf")}}}]  # fmt: skip
    text = report_markdown(data, None)
    assert "| none, ∞ |" in text and "inf" not in text
