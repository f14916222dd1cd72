"""Run the Pulumi program under the SDK's mocks, one fresh process per scenario."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutover_gates.facts import ROOT_STACK

from cutover.stack_config import stack_config

if TYPE_CHECKING:
    from cutover.preview.program import ProgramRun, Resource

ROOT = Path(__file__).resolve().parents[2]


def prod_config() -> dict[str, Any]:
    """The production stack's config, as `Pulumi.prod.yaml` has it."""
    return copy.deepcopy(stack_config(ROOT / "Pulumi.prod.yaml"))


def raw(config: dict[str, Any]) -> dict[str, Any]:
    """Stack-file config as Pulumi hands it to a program: keys without namespace, objects as JSON."""
    out = {}
    for key, value in config.items():
        if key.startswith("cutover:"):
            short = key.split(":", 1)[1]
            out[short] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return out


def previous_outputs(
    weights: dict[str, int], minutes_ago: float, releases: dict[str, str] | None = None
) -> dict[str, Any]:
    """A previous update's outputs whose traffic last moved `minutes_ago`."""
    changed = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "traffic": {
            "weights": weights,
            "releases": releases or {"blue": "1.41.0", "green": "1.42.0"},
            "desiredCounts": {"blue": 6, "green": 6},
            "changedAt": changed.isoformat(timespec="seconds"),
        }
    }


def run(
    config: dict[str, Any],
    stack: str = "prod",
    previous: dict[str, Any] | None = None,
    project_dir: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """`python -m cutover.preview.program` for one scenario."""
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "config.json"
        config_file.write_text(json.dumps(config))
        args = [
            sys.executable,
            "-m",
            "cutover.preview.program",
            "--project-dir",
            str(project_dir),
            "--stack",
            stack,
            "--config",
            str(config_file),
        ]
        if previous is not None:
            previous_file = Path(tmp) / "previous.json"
            previous_file.write_text(json.dumps(previous))
            args += ["--previous", str(previous_file)]
        return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp)


def declare(config: dict[str, Any], **kwargs: Any) -> ProgramRun:
    """Run a scenario that must succeed and return what it declared."""
    from cutover.preview.program import ProgramRun  # here: the unit layer never loads Pulumi

    result = run(config, **kwargs)
    assert result.returncode == 0, result.stderr
    return ProgramRun.from_json(json.loads(result.stdout))


WATCHDOG_IMAGE = "registry.example.com/cutover@sha256:5555555555555555555555555555555555555555555555555555555555555555"


PROMETHEUS_URL = "http://prometheus.monitoring.svc:9090"


def kubernetes_config(active: str = "green", percent: int = 90, routing: str = "gateway") -> dict:
    """The production stack on Kubernetes: Gateway API routing, or the ALB (`routing="alb"`)."""
    config = prod_config()
    cluster: dict = {"namespace": "checkout", "routing": routing}
    if routing == "gateway":
        for key in ("cutover:network", "cutover:certificateArn"):
            config.pop(key)
        cluster.update(
            gateway={"name": "public", "namespace": "gateways"},
            hostnames=["checkout.example.com"],
        )
        config["cutover:watchdog"] = {"image": WATCHDOG_IMAGE}
        config["cutover:analysis"] = {"prometheus": {"url": PROMETHEUS_URL}}
    config.update(
        {
            "kubernetes:enableConfigMapMutable": "true",
            "cutover:platform": "kubernetes",
            "cutover:activeColor": active,
            "cutover:trafficPercent": percent,
            "cutover:kubernetes": cluster,
        }
    )
    return config


def engine_urns(run: ProgramRun, *, before: bool = False) -> dict[str, str]:
    """Each resource's URN as the Pulumi engine forms it, by the URN the mocks gave it (the
    mocks' names only the direct parent's type, the engine's the whole chain of parents);
    `before`: the URN its aliases say it had in an earlier update (a child inherits its
    parent's)."""
    by_urn = {r.urn: r for r in run.resources}

    def chain(resource: Resource) -> str:
        parent = by_urn.get(resource.parent)
        moved = before and {"noParent": True} in resource.aliases
        if parent is None or parent.type == ROOT_STACK or moved:  # at the stack's root
            return resource.type
        return f"{chain(parent)}${resource.type}"

    return {
        r.urn: f"urn:pulumi:{run.stack}::{run.project}::{chain(r)}::{r.name}"
        for r in run.resources
        if r.type != ROOT_STACK
    }
