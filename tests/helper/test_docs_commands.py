"""Every command the documentation shows works as written. Each line of each fenced ```sh,
```bash or ```console block of README.md and docs/*.md is either run or checked against the
tool it calls, and a line no test knows how to cover fails:

- run, block by block in page order, in a prepared folder (tests/harness/docs.py reads the
  blocks): the README's rehearsal in a folder of its own, exactly as written, then every other
  block's `cutover` lines in a folder laid out as the README's real-account steps leave a
  checkout, against the same rehearsal's stack on moto; each line exits 0, or the code its
  `# exits N` comment names, or the one EXPECTED says (the state the walkthrough left);
- read by the command's own parser without running (PARSE_ONLY: a URL of the user's, a KMS
  key moto cannot make, a Kubernetes stack): each option exists, has its value, every
  required one is given and each value parses;
- `pulumi ...`: each subcommand and flag is in the real CLI's `--help` (`make cluster-tools`
  builds it);
- `make X`: the Makefile has the target; `aws SERVICE OP`: botocore's model has the
  operation and each flag's parameter; `pip`: pip has the flag and pyproject.toml the extra;
  `cd`, `cp`, `python benchmarks/X.py`: the path is in the repository.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from cutover.stack_config import stack_config
from cutover_components.config import parse_config
from tests.harness.cluster import REQUIRE
from tests.harness.docs import (
    CHECK_KINDS,
    COMMAND_LANGS,
    ROOT,
    RUN_KINDS,
    Block,
    Command,
    aws_problems,
    blocks,
    broken_links,
    command_blocks,
    cutover_problems,
    make_problems,
    pages,
    path_problems,
    pip_problems,
    pulumi_problems,
)
from tests.harness.program_runs import raw
from tests.harness.real_cluster import ToolsMissing, load_tools

REHEARSAL = ("README.md", "Rehearse it on your machine")
REAL_USE = ("README.md", "Using it with a real AWS account")
# Read by their parser, never run, and why.
PARSE_ONLY_PAGES = {"docs/kubernetes.md": "a Kubernetes stack's; the rehearsal's is an ALB's"}
PARSE_ONLY_FLAGS = {
    "--probe": "it probes a URL of the user's (nothing here leaves 127.0.0.1) and bakes minutes",
    "--kms-key": "it signs with an Ed25519 key in AWS KMS, which moto's KMS cannot make",
}


class Exit(NamedTuple):
    code: int
    says: str  # what its output says
    why: str


# Lines that exit other than 0 in the state the walkthrough leaves, by page and how they start.
LAST_SHIFT = "the latest shift is the rehearsal's second, which the analysis rolled back"
EXPECTED = {
    ("README.md", "cutover promote --outputs"): Exit(2, "nothing to promote", "none is paused"),
    ("README.md", "cutover promote --full"): Exit(2, "nothing to promote", "none is paused"),
    ("README.md", "cutover exit-gates --outputs outputs.json"): Exit(
        1, "FAIL  deployment successful", LAST_SHIFT
    ),
    ("docs/analysis.md", "cutover exit-gates"): Exit(1, "FAIL  deployment successful", LAST_SHIFT),
    ("docs/helper.md", "cutover status --outputs outputs.json --watch"): Exit(
        1, "rolled-back", "the latest deployment is step 5's drill, which step 7 gave back"
    ),
    ("docs/policies.md", "cutover keys new --name chairman"): Exit(
        2, "refusing to overwrite a key", "the README's step 3 made that key"
    ),
}
# Who each key of the README's step 3 signs for: the policy whose trustedKeys it is pasted into.
SIGNS_FOR = {"chairman": "chairman-approval", "security": "security-signoff",
             "deploy": "rollback-tested"}  # fmt: skip


def why_not_run(block: Block, command: Command) -> str | None:
    if block.page in PARSE_ONLY_PAGES:
        return PARSE_ONLY_PAGES[block.page]
    return next((why for flag, why in PARSE_ONLY_FLAGS.items() if flag in command.words), None)


def expected(block: Block, command: Command) -> Exit:
    """How `command` exits: as EXPECTED says, or as its `# exits N` comment says (0 without)."""
    for (page, start), ends in EXPECTED.items():
        if block.page == page and command.text.startswith(start):
            return ends
    return Exit(command.expected, "", "")


def test_every_command_line_is_run_or_checked() -> None:
    """No line is left to nobody: each is one the walkthrough runs or one a check reads; run
    kinds outside the walkthrough (a `source` or a rehearsal line) cannot be checked."""
    uncovered = []
    for block in command_blocks():
        for command in block.commands():
            kind, why = command.kind, why_not_run(block, command)
            if kind not in RUN_KINDS + CHECK_KINDS or (why and kind in ("source", "rehearsal")):
                uncovered.append(f"{block.where}: {command.text}")
    assert uncovered == [], "no test runs or checks these lines:\n" + "\n".join(uncovered)


def test_cutover_lines_parse() -> None:
    """Every `cutover` line, run or not, as the command's own parser reads it."""
    found = {
        f"{block.where}: {command.text}": problems
        for block in command_blocks()
        for command in block.commands()
        if command.kind == "cutover" and (problems := cutover_problems(command.words))
    }
    assert found == {}


def test_make_aws_pip_and_paths_name_what_exists() -> None:
    checks = {
        "make": make_problems,
        "aws": aws_problems,
        "pip": pip_problems,
        "cd": lambda w: path_problems(w[1]),
        "cp": lambda w: path_problems(w[1]),
        "script": lambda w: path_problems(w[1]),
        "venv": lambda w: [] if len(w) == 4 else ["expected python3 -m venv DIR"],
    }
    found = {
        f"{block.where}: {command.text}": problems
        for block in command_blocks()
        for command in block.commands()
        if command.kind in checks and (problems := checks[command.kind](command.words))
    }
    assert found == {}


def test_pulumi_lines_use_what_the_real_cli_has(tmp_path: Path) -> None:
    """Each `pulumi` line's subcommands and flags, from the real CLI's help (built by `make
    cluster-tools`; without it, skipped saying so, or failed under CUTOVER_TESTS_REQUIRE_CLUSTER)."""
    try:
        pulumi = load_tools(("pulumi",))["pulumi"].path
    except ToolsMissing as e:
        if os.environ.get(REQUIRE):
            pytest.fail(str(e))
        pytest.skip(f"pulumi lines not checked: {e}")
    env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "1", "PULUMI_HOME": str(tmp_path)}
    found = {
        f"{block.where}: {command.text}": problems
        for block in command_blocks()
        for command in block.commands()
        if command.kind == "pulumi" and (problems := pulumi_problems(pulumi, command.words, env))
    }
    assert found == {}


def test_links_and_anchors_lead_somewhere() -> None:
    assert {p.name: broken for p in pages() if (broken := broken_links(p))} == {}


def test_the_first_deployment_signs_both_colors_before_pulumi_up() -> None:
    """Issue 32: a new stack's first `pulumi up` is refused unless each color's release has
    the chairman's approval and a security sign-off; the README signs all four first."""
    lines = [c.text for b in command_blocks() if (b.page, b.heading) == REAL_USE
             for c in b.commands()]  # fmt: skip
    up = next(i for i, line in enumerate(lines) if line.startswith("pulumi up"))
    signed = {(w[1], w[w.index("--color") + 1]) for w in map(str.split, lines[:up])
              if w[0] == "cutover" and w[1] in ("approve", "signoff")}  # fmt: skip
    assert signed == {(k, c) for k in ("approve", "signoff") for c in ("blue", "green")}


# -- the walkthrough ----------------------------------------------------------------------------


@dataclass
class Walk:
    """The folders and environment the blocks run in."""

    tmp: Path
    env: dict[str, str]
    said: dict[str, str] = field(default_factory=dict)  # each run block's output, by where

    @property
    def rehearsal(self) -> Path:
        return self.tmp / "rehearsal-out"

    @property
    def real(self) -> Path:
        return self.tmp / "real"

    def run(self, block: Block, cwd: Path, commands: list[Command], preamble: str = "") -> None:
        """`commands` of `block` in one shell, each exiting as expected."""
        script = preamble + "".join(f'{c.text}\necho "@@ $? {i}"\n' for i, c in enumerate(commands))
        ran = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                             env=self.env, timeout=600)  # fmt: skip
        codes = {int(i): int(code) for code, i in re.findall(r"^@@ (\d+) (\d+)$", ran.stdout, re.M)}
        said = self.said[block.where] = ran.stdout + ran.stderr
        wanted = {i: expected(block, c).code for i, c in enumerate(commands)}
        assert codes == wanted, f"{block.where}: {[c.text for c in commands]}\n{said}"
        for c in commands:
            assert expected(block, c).says in said, f"{c.text}: {expected(block, c)}\n{said}"

    def prepare_checkout(self) -> None:
        """`real/` as the README's steps 1-2 leave a checkout: the project and the pack (its
        config a copy, to paste keys into), the stack file edited for the account (the
        rehearsal's, its network moto's), a home for `~/.cutover`."""
        real = self.real
        (real / "policies").mkdir(parents=True)
        (real / ".venv").symlink_to(Path(sys.prefix))
        for name in ("__main__.py", "Pulumi.yaml", "requirements.txt"):  # read where they are
            shutil.copy(ROOT / name, real / name)
        for entry in (ROOT / "policies").iterdir():
            if entry.name == "config":
                shutil.copytree(entry, real / "policies" / "config")
            else:
                (real / "policies" / entry.name).symlink_to(entry)
        (real / "gates" / "prod").mkdir(parents=True)
        shutil.copy(self.rehearsal / "Pulumi.prod.yaml", real / "Pulumi.prod.yaml")

    def paste_keys(self, commands: list[Command]) -> None:
        """Step 3's paste: each new key's public half into its policy's trustedKeys."""
        config_file = self.real / "policies" / "config" / "prod.json"
        config = json.loads(config_file.read_text())
        for c in commands:
            if c.words[:3] == ("cutover", "keys", "new") and c.words[4] in SIGNS_FOR:
                out = c.words[c.words.index("--out") + 1]
                folder = Path(self.env["HOME"]) / out[2:] if out.startswith("~/") else Path(out)
                public = (self.real / folder / f"{c.words[4]}.pub").read_text().strip()
                trusted = config[SIGNS_FOR[c.words[4]]].setdefault("trustedKeys", [])
                trusted.extend([public] if public not in trusted else [])
        config_file.write_text(json.dumps(config, indent=2))

    def edit_stack_file(self, block: Block) -> None:
        """A yaml block of the real-account steps: keys to set in Pulumi.prod.yaml."""
        path = self.real / "Pulumi.prod.yaml"
        stack = yaml.safe_load(path.read_text())
        stack["config"].update(yaml.safe_load(block.text))
        path.write_text(yaml.safe_dump(stack))


def run_everywhere_else(walk: Walk) -> None:
    """Every block after the rehearsal's, in page order, in `real/`; pulumi lines are what
    the other tests check, and a `pulumi stack output --json > F` stands for the rehearsal's
    outputs written to F."""
    preamble = f"source .venv/bin/activate\nsource {shlex.quote(str(walk.rehearsal))}/env.sh\n"
    for block in blocks():
        if (block.page, block.heading) == REHEARSAL:
            continue
        if block.lang == "yaml" and (block.page, block.heading) == REAL_USE:
            walk.edit_stack_file(block)
            continue
        if block.lang not in COMMAND_LANGS:
            continue
        commands = block.commands()
        for c in commands:
            if (
                c.words[:3] == ("pulumi", "stack", "output")
                and c.redirect
                and not why_not_run(block, c)
            ):
                shutil.copy(walk.rehearsal / "outputs.json", walk.real / c.redirect)
        ran = [c for c in commands if c.kind in RUN_KINDS and not why_not_run(block, c)]
        if ran:
            walk.run(block, walk.real, ran, preamble)
            walk.paste_keys(ran)


def test_the_documentation_runs_as_written(tmp_path: Path) -> None:
    """The rehearsal line by line in one shell, as written, then everything else against the
    same rehearsal, in a checkout prepared as the real-account steps say; the rehearsal's
    last line (`down`) last."""
    (rehearsal,) = [b for b in command_blocks() if (b.page, b.heading) == REHEARSAL]
    commands = rehearsal.commands()
    assert commands[0].text == "source .venv/bin/activate"
    assert commands[-1].text == "python -m rehearsal down"
    home = tmp_path / "home"
    home.mkdir()
    walk = Walk(tmp_path, {**os.environ, "HOME": str(home)})
    # the repository root as a new user has it, without writing into the checkout
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "rehearsal").symlink_to(ROOT / "rehearsal")
    try:
        walk.run(rehearsal, tmp_path, commands[:-1])
        said = walk.said[rehearsal.where]
        walk.prepare_checkout()
        # the errors the rehearsal's last shift was refused for, gone: a drill can pass again
        traffic = ["source .venv/bin/activate", "source rehearsal-out/env.sh",
                   "python -m rehearsal traffic --per-second 400"]  # fmt: skip
        subprocess.run(["bash", "-c", "\n".join(traffic)], cwd=tmp_path, env=walk.env,
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        run_everywhere_else(walk)
    finally:  # never leave the server running, whatever failed
        down = subprocess.run(
            ["bash", "-c", f"source .venv/bin/activate\n{commands[-1].text}"], cwd=tmp_path,
            env=walk.env, capture_output=True, text=True,
        )  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert_the_rehearsal_said_what_it_did(said, walk.rehearsal)
    assert_the_first_deployment_passes_the_pack(walk)


def assert_the_rehearsal_said_what_it_did(said: str, out: Path) -> None:
    assert "Shift " in said and "succeeded: green serves all traffic" in said
    assert "Signed stage-exit record (passed)" in said
    assert "guard failed: analysis: green error rate more than 1 point above blue's" in said
    # the config follows what is served: green after the shift, blue after the rollback
    assert "Wrote cutover:activeColor=green, cutover:trafficPercent=100" in said
    assert (
        "Wrote cutover:activeColor=blue, cutover:trafficPercent=100 into "
        "rehearsal-out/Pulumi.prod.yaml (deployment" in said
    )
    # kpis: the first shift succeeded (the operator's rollback after it is its own line, not a
    # failed change), the second was rolled back by the analysis
    kpis = said[said.index("# Deployment KPIs since") :].splitlines()
    assert "- Deployments (shifts that moved traffic): 2, succeeded: 1 (50%)" in kpis
    assert "- Rolled back before they succeeded: 1 (analysis: 1)" in kpis
    assert (
        "- Rolled back by an operator after they succeeded: 1 (`cutover rollback`; successes, "
        "not failed changes)" in kpis
    )
    assert "- Change failure rate: 50% (rolled back before they succeeded)" in kpis
    # the stack file says what the rehearsal's stack runs: the program reads from it what the
    # outputs say (a user who edits it learns what ran)
    outputs = json.loads((out / "outputs.json").read_text())
    config = parse_config(raw(stack_config(out / "Pulumi.prod.yaml")), project="cutover",
                          stack="prod")  # fmt: skip
    assert config.analysis.to_json() == outputs["analysis"]
    assert outputs["analysis"]["periodSeconds"] == 5 and outputs["analysis"]["verifyMinutes"] == 0
    assert config.metrics_resolution_seconds == outputs["metrics"]["resolutionSeconds"] == 1
    assert config.network is not None and config.network.vpc_id.startswith("vpc-")


def assert_the_first_deployment_passes_the_pack(walk: Walk) -> None:
    """Step 4's order works: with both colors signed and listed, the offline preview of the
    new stack's first update passes every gate (the `pulumi up` after it is checked apart)."""
    (where,) = [b.where for b in command_blocks() if (b.page, b.heading) == REAL_USE
                and any(c.words[:2] == ("cutover", "preview") for c in b.commands())]  # fmt: skip
    said = walk.said[where]
    assert "PASS  chairman-approval" in said and "PASS  security-signoff" in said, said
    assert "Blocked" not in said, said
