"""The README's rehearsal, run exactly as written, line by line in one shell, in its order:
every command exits as the README says (0, or the code its `# exits N` names)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from cutover.stack_config import stack_config
from cutover_components.config import parse_config
from tests.harness.program_runs import ROOT, raw

SECTION = "## Rehearse it on your machine"


def readme_commands() -> list[tuple[str, int]]:
    """The section's shell lines (continuations joined), each with the exit code it expects."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the rehearsal section has no sh block"
    joined = block.group(1).replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        command, _, comment = line.partition("#")
        if command.strip():
            expected = re.search(r"exits (\d+)", comment)
            found.append((command.strip(), int(expected.group(1)) if expected else 0))
    return found


def test_the_readme_rehearsal_runs_as_written(tmp_path: Path) -> None:
    commands = readme_commands()
    assert commands[0] == ("source .venv/bin/activate", 0)
    assert commands[-1] == ("python -m rehearsal down", 0)
    # the repository root as a new user has it, without writing into the checkout
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "rehearsal").symlink_to(ROOT / "rehearsal")
    script = "\n".join(f'{c}\necho "@@ $? {i}"' for i, (c, _) in enumerate(commands))
    try:
        ran = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)  # fmt: skip
    finally:  # never leave the server running, whatever failed
        if (tmp_path / "rehearsal-out" / "rehearsal.json").exists():
            subprocess.run([sys.executable, "-m", "rehearsal", "down"], cwd=tmp_path)
    codes = {int(i): int(code) for code, i in re.findall(r"^@@ (\d+) (\d+)$", ran.stdout, re.M)}
    said = ran.stdout + ran.stderr
    assert codes == {i: expected for i, (_, expected) in enumerate(commands)}, said
    assert "Shift " in ran.stdout and "succeeded: green serves all traffic" in ran.stdout
    assert "Signed stage-exit record (passed)" in ran.stdout
    assert "guard failed: analysis: green error rate more than 1 point above blue's" in said
    # the config follows what is served: green after the shift, blue after the rollback
    assert "Wrote cutover:activeColor=green, cutover:trafficPercent=100" in ran.stdout
    assert (
        "Wrote cutover:activeColor=blue, cutover:trafficPercent=100 into "
        "rehearsal-out/Pulumi.prod.yaml (deployment" in ran.stdout
    )
    # kpis: the first shift succeeded (the operator's rollback after it is its own line, not a
    # failed change), the second was rolled back by the analysis
    kpis = ran.stdout[ran.stdout.index("# Deployment KPIs since") :].splitlines()
    assert "- Deployments (shifts that moved traffic): 2, succeeded: 1 (50%)" in kpis
    assert "- Rolled back before they succeeded: 1 (analysis: 1)" in kpis
    assert (
        "- Rolled back by an operator after they succeeded: 1 (`cutover rollback`; successes, "
        "not failed changes)" in kpis
    )
    assert "- Change failure rate: 50% (rolled back before they succeeded)" in kpis
    # the stack file says what the rehearsal's stack runs: the program reads from it what the
    # outputs say (a user who edits it learns what ran)
    out = tmp_path / "rehearsal-out"
    outputs = json.loads((out / "outputs.json").read_text())
    config = parse_config(raw(stack_config(out / "Pulumi.prod.yaml")), project="cutover",
                          stack="prod")  # fmt: skip
    assert config.analysis.to_json() == outputs["analysis"]
    assert outputs["analysis"]["periodSeconds"] == 5 and outputs["analysis"]["verifyMinutes"] == 0
    assert config.metrics_resolution_seconds == outputs["metrics"]["resolutionSeconds"] == 1
    assert config.network is not None and config.network.vpc_id.startswith("vpc-")
