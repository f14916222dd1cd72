"""Upgrading a stack from cutover 0.1, whose program declared each component at the stack's
root, to `BlueGreenService` replaces nothing: every resource keeps the URN it had, through the
aliases the component gives its children (the engine matches resources by URN, and a URN it
no longer sees is a resource it deletes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cutover.preview.program import ProgramRun
from tests.harness.program_runs import declare, engine_urns, kubernetes_config

# The engine's URNs of each stack as cutover 0.1's program declared it (the same configs).
BEFORE = json.loads((Path(__file__).parent / "data" / "urns_v0_1.json").read_text())
SERVICE = "urn:pulumi:prod::cutover::cutover:index:BlueGreenService::checkout"


@pytest.mark.parametrize("stack", ["ecs", "gateway", "alb"])
def test_every_resource_of_a_0_1_stack_keeps_its_urn(
    runs: dict[str, ProgramRun], stack: str
) -> None:
    run = runs["blue"] if stack == "ecs" else declare(kubernetes_config(routing=stack))
    now = engine_urns(run)
    before = engine_urns(run, before=True)
    assert before[next(u for u, e in now.items() if e == SERVICE)] == SERVICE  # new, no alias
    assert sorted(set(before.values()) - {SERVICE}) == BEFORE[stack]
    # and the URNs did move: without the aliases, all but the read of the stack's own outputs
    # (at the root still) would be replaced
    kept = set(now.values()) & set(BEFORE[stack])
    assert kept == {"urn:pulumi:prod::cutover::pulumi:pulumi:StackReference::prod-previous"}
