"""A team's own program (examples/team-program/) on the installed distribution: the wheel in an
empty virtualenv, with only what `pip install 'cutover[program]'` brings (and pytest), runs
the example's own tests under the Pulumi SDK's mocks from a folder outside the checkout, so
nothing of the source tree can be imported by accident."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.harness.lean import lean_site
from tests.harness.program_runs import ROOT
from tests.harness.wheel import build_wheel, install

EXAMPLE = ROOT / "examples" / "team-program"


def test_a_teams_program_passes_its_tests_on_the_installed_components(tmp_path: Path) -> None:
    site = install(build_wheel(tmp_path / "wheel"), tmp_path / "venv")
    lean = tmp_path / "lean"
    brought = lean_site(lean, extras=("program",), others=("pytest",))
    assert {"pulumi", "pulumi-aws", "pulumi-kubernetes"} <= set(brought)
    assert not {"pulumi-policy", "grpcio-tools", "matplotlib", "moto"} & set(brought)
    program = tmp_path / "payments"  # outside the checkout
    shutil.copytree(EXAMPLE, program, ignore=shutil.ignore_patterns("__pycache__"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PULUMI"))},
        "PYTHONPATH": str(lean),
    }
    python = str(tmp_path / "venv" / "bin" / "python")

    where = subprocess.run([python, "-c", "import cutover_components, cutover; "
                            "print(cutover_components.__file__); print(cutover.__file__)"],
                           env=env, cwd=program, capture_output=True, text=True)  # fmt: skip
    assert where.stdout.split() == [
        str(site / "cutover_components" / "__init__.py"),
        str(site / "cutover" / "__init__.py"),
    ], where.stdout + where.stderr
    tested = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"],
        env=env, cwd=program, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    tests = len(re.findall(r"^def test_", (EXAMPLE / "test_program.py").read_text(), re.M))
    assert re.search(rf"^{tests} passed", tested.stdout, re.M), tested.stdout[-1000:]
