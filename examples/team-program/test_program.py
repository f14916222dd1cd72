"""The payments program under the Pulumi SDK's mocks (`pytest` in this folder): what it
declares, and that `cutover` can drive the stack it makes. `run_program` is how `cutover
preview` runs a program offline: computed fields (ARNs, DNS names) are filled in, so nothing
checked here is silently unknown."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from cutover.outputs import parse_outputs
from cutover.preview.program import ProgramRun, Resource, run_program
from cutover.stack_config import stack_config

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    """One run of the program for the prod stack (the Pulumi runtime is one per process)."""
    return run_program(HERE, "prod", stack_config(HERE / "Pulumi.prod.yaml"))


def one(run: ProgramRun, typ: str, name: str) -> Resource:
    (found,) = [r for r in run.resources if r.type == typ and r.name == name]
    return found


def test_cutover_can_drive_the_stack_from_its_outputs(run: ProgramRun) -> None:
    outputs = parse_outputs(
        run.outputs, "the payments stack's outputs"
    )  # as `--outputs` reads them
    assert outputs.stack == "prod" and outputs.services["blue"].service == "payments-blue"
    assert run.outputs["traffic"]["weights"] == {"blue": 100, "green": 0}
    assert run.outputs["url"] == "https://payments.example.com"


def test_the_service_is_one_component_and_every_child_is_under_it(run: ProgramRun) -> None:
    service = one(run, "cutover:index:BlueGreenService", "payments")
    by_urn = {r.urn: r for r in run.resources}

    def under_service(resource: Resource) -> bool:
        parent = by_urn.get(resource.parent)
        return parent is not None and (parent is service or under_service(parent))

    ours = [r for r in run.resources if under_service(r)]
    assert {r.type for r in ours} >= {
        "aws:lb/listener:Listener",
        "aws:ecs/service:Service",
        "aws:dynamodb/table:Table",
        "aws:ssm/parameter:Parameter",
        "aws:lambda/function:Function",
    }


def test_the_teams_name_points_at_the_load_balancer(run: ProgramRun) -> None:
    alb = one(run, "aws:lb/loadBalancer:LoadBalancer", "payments-alb")
    record = one(run, "aws:route53/record:Record", "payments-dns")
    assert record.state["aliases"][0]["name"] == alb.state["dnsName"]


def test_the_watchdog_ships_the_installed_cutover(run: ProgramRun) -> None:
    """The Lambda's code is the `cutover` and `cutover_gates` packages this program imports."""
    function = one(run, "aws:lambda/function:Function", "payments-watchdog-function")
    archive = function.state["code"]["archive"]
    assert {"cutover/engine/watchdog.py", "cutover_gates/contract.py"} <= set(archive)
    for name, entry in archive.items():
        package, module = name.split("/", 1)
        installed = Path(str(importlib.import_module(package).__file__)).resolve().parent
        assert Path(entry["asset"]["path"]) == installed / module, name
