"""The report's plot explains itself: read from the figure's own artists, not by eye."""

from __future__ import annotations

import json
from pathlib import Path

from cutover.deployment import Deployment
from cutover.plot import figure_of
from cutover.report import report_json, report_markdown
from cutover.summary import Summary

OLD = json.loads((Path(__file__).parent / "data" / "journal_v0_1.json").read_text())


def texts(figure: object) -> list[str]:
    ax = figure.axes[0]  # type: ignore[attr-defined]
    return [t.get_text() for t in ax.texts]


def test_a_rolled_back_deployment_marks_its_steps_failure_and_restore() -> None:
    deployment = Deployment.from_json(OLD["rolled-back"])
    figure = figure_of(deployment)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[-1] == "% of traffic to green" or "% of traffic to green" in labels
    assert "guard failed" in labels and "restored" in labels
    notes = texts(figure)
    assert any(n.startswith("step 1: blue 60 / green 40") for n in notes), notes
    assert "guard failed: alarms: in ALARM: checkout-prod-green-5xx-rate" in notes
    restored = [n for n in notes if n.startswith("restored in ")]
    assert restored and restored[0].endswith("s")
    assert figure.axes[1].get_xlabel() == "seconds since start"


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
