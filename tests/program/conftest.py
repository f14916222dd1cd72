"""What the program's tests share: every scenario of the prod stack, declared once a session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cutover.preview.program import ProgramRun
from tests.harness.program_runs import declare, previous_outputs, prod_config


def _scenarios() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    blue = prod_config()
    green = prod_config()
    green["cutover:activeColor"] = "green"
    split = prod_config()
    split["cutover:activeColor"] = "green"
    split["cutover:trafficPercent"] = 90
    staging = prod_config()
    staging["cutover:production"] = False
    # what drops requests in a flip, declared otherwise than by default
    tuned = prod_config()
    tuned["cutover:service"].update(longestRequestSeconds=20, keepAliveSeconds=45)
    tuned.update(
        {
            "cutover:idleTimeoutSeconds": 30,
            "cutover:deregistrationDelaySeconds": 25,
            "cutover:stickinessSeconds": 600,
        }
    )
    return {
        "blue": (blue, {}),
        # the update that moves traffic from blue to green
        "flip": (green, {"previous": previous_outputs({"blue": 100, "green": 0}, 600)}),
        "split": (split, {"previous": previous_outputs({"blue": 100, "green": 0}, 600)}),
        # later updates with green serving: inside and after blue's rollback window (120 min)
        "in_window": (green, {"previous": previous_outputs({"blue": 0, "green": 100}, 30)}),
        "after_window": (green, {"previous": previous_outputs({"blue": 0, "green": 100}, 121)}),
        "staging": (staging, {"stack": "staging"}),
        "tuned": (tuned, {}),
    }


@pytest.fixture(scope="session")
def runs() -> dict[str, ProgramRun]:
    """Every program scenario, run once per test session (two at a time, one process each)."""
    scenarios = _scenarios()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(declare, cfg, **kw) for name, (cfg, kw) in scenarios.items()}
        return {name: f.result() for name, f in futures.items()}
