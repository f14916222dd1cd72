"""What the pack's tests share: the pack started as the engine starts it, and the flip to
green with its records, declared once a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cutover.preview.pack import PolicyPackProcess
from cutover.preview.program import ProgramRun
from tests.harness.program_runs import ROOT, previous_outputs, prod_config
from tests.harness.records import declare_with_green_records


@pytest.fixture(scope="module")
def flip(tmp_path_factory: pytest.TempPathFactory) -> ProgramRun:
    """The update that moves traffic from blue to green, with green's three records."""
    config = prod_config()
    config["cutover:activeColor"] = "green"
    return declare_with_green_records(
        tmp_path_factory.mktemp("gates"),
        config,
        previous=previous_outputs({"blue": 100, "green": 0}, 600),
    )


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackProcess]:
    """The policy pack, started as the engine starts it, trusting the test keys."""
    from tests.harness.records import PACK_CONFIG

    with PolicyPackProcess(ROOT / "policies", stack="prod", project="cutover") as process:
        process.configure(PACK_CONFIG)
        yield process
