"""What drops requests in a flip, refused at preview: the corpus of drop-causing stack configs
(drops.yaml) through the program under mocks and the pack as the engine starts it, the
reference stacks passing, and values unknown during preview failing closed."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from cutover_gates.rules.draining import DRAINING
from cutover_gates.rules.readiness import READINESS

from cutover.preview.pack import Diagnostic, PolicyPackProcess
from cutover.preview.program import ProgramRun, Resource
from tests.harness import drops
from tests.harness.program_runs import ROOT, declare, previous_outputs
from tests.harness.records import analyze, declare_with_green_records

REFUSED = drops.cases("refused")
PASSES = drops.cases("passes")
NAMES = [p.name for p in (*DRAINING, *READINESS)]
# What the engine sends for a number it cannot know during preview.
UNKNOWN_NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
BEFORE = previous_outputs({"blue": 100, "green": 0}, 600)


@functools.cache
def _declared(config_json: str, folder: str) -> ProgramRun:
    return declare_with_green_records(Path(folder), json.loads(config_json), previous=BEFORE)


def declared(case: drops.Case, tmp_path_factory: pytest.TempPathFactory) -> list[Resource]:
    """What the program declares for `case` (run once per distinct config), with what the
    case's program changes."""
    config = json.dumps(drops.stack_config(case), sort_keys=True)
    run = _declared(config, str(tmp_path_factory.getbasetemp() / "drops"))
    return drops.edit_program(run.resources, case)


@pytest.fixture(scope="module", autouse=True)
def _records_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    (tmp_path_factory.getbasetemp() / "drops").mkdir(exist_ok=True)


def refused_as_said(diagnostics: list[Diagnostic], refused: dict[str, str]) -> None:
    """Exactly the named policies are violated, mandatorily, each with its phrase."""
    found = {d.policy for d in diagnostics}
    assert found == set(refused), [(d.policy, d.message) for d in diagnostics]
    assert all(d.mandatory for d in diagnostics)
    for policy, phrase in refused.items():
        messages = [d.message for d in diagnostics if d.policy == policy]
        assert any(phrase in m for m in messages), (policy, messages)


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_each_drop_causing_config_is_refused_by_its_policy(
    pack: PolicyPackProcess, tmp_path_factory: pytest.TempPathFactory, case: drops.Case
) -> None:
    refused_as_said(analyze(pack, declared(case, tmp_path_factory)), case.refused)


@pytest.mark.parametrize("case", PASSES, ids=[c.name for c in PASSES])
def test_configs_near_them_that_drop_nothing_pass(
    pack: PolicyPackProcess, tmp_path_factory: pytest.TempPathFactory, case: drops.Case
) -> None:
    assert analyze(pack, declared(case, tmp_path_factory)) == []


def test_the_corpus_refuses_each_cause_alone_on_each_platform_and_combined() -> None:
    """Each policy alone on ECS and on Kubernetes (behind the ALB where it is the ALB's:
    deregistration, forward-only rules), and every policy in a case with others."""
    alone = {(next(iter(c.refused)), c.base) for c in REFUSED if len(c.refused) == 1}
    for name in NAMES:
        bases = {b for n, b in alone if n == name}
        assert "ecs" in bases and bases & {"kubernetes", "kubernetes-alb"}, (name, bases)
    combined = [c for c in REFUSED if len(c.refused) > 1]
    assert {n for c in combined for n in c.refused} == set(NAMES)
    assert max(len(c.refused) for c in combined) >= 5


@pytest.mark.parametrize("base", sorted(drops.BASES))
def test_the_reference_stacks_pass_steady_and_flipped(
    pack: PolicyPackProcess, tmp_path_factory: pytest.TempPathFactory, base: str
) -> None:
    steady = declare(drops.BASES[base](), previous=BEFORE)
    assert analyze(pack, steady.resources) == []
    assert analyze(pack, declared(drops.Case("flip", base), tmp_path_factory)) == []


def test_the_rehearsals_stack_file_passes(pack: PolicyPackProcess, tmp_path: Path) -> None:
    """The stack file `python -m rehearsal up` writes (moto's network and certificate, its
    analysis, per-second metrics), previewed as it is written."""
    from moto import mock_aws

    from cutover.stack_config import stack_config
    from rehearsal.__main__ import PERIOD
    from rehearsal.aws import rehearsal_config, write_stack_file

    source = ROOT / "Pulumi.prod.yaml"
    with mock_aws():
        config = rehearsal_config(source, None, PERIOD)
    write_stack_file(tmp_path / "Pulumi.prod.yaml", config, source, PERIOD)
    written = stack_config(tmp_path / "Pulumi.prod.yaml")
    assert written["cutover:metricsResolutionSeconds"] == 1  # the rehearsal's, not prod's
    run = declare(written, previous=BEFORE)
    assert analyze(pack, run.resources) == []


GREEN = "green"
# Per policy: what is unknown (a resource of a type, of green or by name), and what it says.
UNKNOWN = {
    "deregistration-covers-requests": (
        {"type": "aws:lb/targetGroup:TargetGroup", "color": GREEN},
        "/deregistrationDelay",
        "number value at .deregistrationDelay can't be known during preview",
    ),
    "keep-alive-outlasts-idle-timeout": (
        {"type": "aws:lb/loadBalancer:LoadBalancer"},
        "/idleTimeout",
        "number value at .idleTimeout",
    ),
    "stop-outlasts-draining": (
        {"type": "aws:ecs/taskDefinition:TaskDefinition", "color": GREEN},
        "/containerDefinitions",
        "value at .containerDefinitions",
    ),
    "stickiness-within-rollback-window": (
        {"type": "aws:lb/listener:Listener", "name": "checkout-https"},
        "/defaultActions/0/forward/stickiness/enabled",
        "value at .defaultActions.0.forward.stickiness.enabled",
    ),
    "forward-only-rules": (
        {"type": "aws:lb/listener:Listener", "name": "checkout-test"},
        "/defaultActions/0/type",
        "value at .defaultActions.0.type",
    ),
    "healthy-before-weight": (
        {"type": "aws:ecs/service:Service", "color": GREEN},
        "/waitForSteadyState",
        "value at .waitForSteadyState",
    ),
    "warm-capacity": (
        {"type": "aws:ecs/service:Service", "color": GREEN},
        "/desiredCount",
        "number value at .desiredCount",
    ),
}


@pytest.mark.parametrize("policy", NAMES)
def test_a_value_unknown_during_preview_fails_closed(
    pack: PolicyPackProcess, tmp_path_factory: pytest.TempPathFactory, policy: str
) -> None:
    """Never a silent pass, never a failed RPC: the policy says it cannot decide, mandatorily."""
    selector, pointer, phrase = UNKNOWN[policy]
    unknown = drops.Case(
        "unknown", "ecs", program=[{"set": selector, "values": {pointer: UNKNOWN_NUMBER}}]
    )
    diagnostics = analyze(pack, declared(unknown, tmp_path_factory))
    said = [d.message for d in diagnostics if d.policy == policy]
    assert said, policy
    assert all(d.mandatory for d in diagnostics if d.policy == policy)
    assert any("Cannot be decided during preview" in m and phrase in m for m in said), said


def test_cutover_preview_shows_them_like_the_other_policies(tmp_path: Path) -> None:
    import yaml

    from tests.pack.test_preview import flip_to_green, preview

    args = flip_to_green(tmp_path)  # the flip with green's records, the pack config, before
    case = next(c for c in REFUSED if c.config == {"service.keepAliveSeconds": 5})
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    stack["config"] = {**drops.stack_config(case), **{
        k: v for k, v in stack["config"].items() if k == "cutover:gateRecords"}}  # fmt: skip
    stack_file.write_text(yaml.safe_dump(stack))
    result = preview(tmp_path, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  keep-alive-outlasts-idle-timeout [mandatory]: blue's application" in result.stdout
    for name in set(NAMES) - {"keep-alive-outlasts-idle-timeout"}:
        assert f"PASS  {name} [mandatory]" in result.stdout, name
