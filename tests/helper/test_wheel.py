"""The wheel, built in isolation from the checkout and installed into an empty virtualenv, works away from
the checkout: everything the commands need ships in it (no file of the checkout is read)."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.harness.aws_stack import AwsStack
from tests.harness.lean import lean_site
from tests.harness.program_runs import ROOT
from tests.harness.wheel import build_wheel, install


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_works_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cutover").rglob("*.py")}
    modules |= {
        f"cutover_gates/{p.name}" for p in (ROOT / "policies" / "cutover_gates").glob("*.py")
    }
    modules |= {f"cutover_components/{p.name}" for p in (ROOT / "cutover_components").glob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "rehearsal/"))]

    venv = tmp_path / "venv"
    target = install(wheel, venv)
    # the dependencies the lock pinned, from the tested environment; cutover itself only from
    # the wheel (the tested environment's copy is an editable finder, inactive on PYTHONPATH)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
    }
    away = tmp_path / "elsewhere"
    away.mkdir()

    def cutover(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from cutover.cli import main; sys.argv[0] = 'cutover'; main()"
        return subprocess.run([str(venv / "bin" / "python"), "-c", code, *args], env=env,
                              cwd=away, capture_output=True, text=True, timeout=120)  # fmt: skip

    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import cutover; print(cutover.__file__)"],
                           env=env, cwd=away, capture_output=True, text=True)  # fmt: skip
    assert where.stdout.strip().startswith(str(target)), where.stdout + where.stderr
    helped = cutover("--help")
    assert helped.returncode == 0 and "Traffic" in helped.stdout and "Gates" in helped.stdout
    made = cutover("keys", "new", "--name", "chairman", "--out", str(away / "keys"))
    assert made.returncode == 0, made.stderr
    public = (away / "keys" / "chairman.pub").read_text().strip()
    gates = away / "gates.json"
    gates.write_text(json.dumps({"chairman-approval": {"trustedKeys": [public]}}))
    signed = cutover(
        "approve", "--stack", "prod", "--color", "green", "--release", "1.42.0",
        "--digest", "sha256:" + "a" * 64, "--key", str(away / "keys" / "chairman.key"),
        "--gates-config", str(gates), "--out", str(away / "approval.json"),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    verified = cutover(
        "records", "verify", str(away / "approval.json"), "--gates-config", str(gates)
    )
    assert verified.returncode == 0 and verified.stdout.startswith("valid"), verified.stderr
    journal = f"file:{away / 'journal.json'}"
    outputs = away / "outputs.json"
    outputs.write_text((ROOT / "tests" / "unit" / "data" / "outputs.json").read_text())
    rolled = cutover("rollback", "--outputs", str(outputs), "--journal", journal)
    assert rolled.returncode == 0, rolled.stderr
    assert "nothing to roll back" in rolled.stdout


# What no command of the base install may import (the extras' modules).
EXTRA_MODULES = ("kubernetes", "matplotlib", "pulumi", "pulumi_policy", "grpc")


def test_the_base_install_shifts_rolls_back_and_reports_and_names_each_missing_extra(
    wheel: Path, aws: AwsStack, tmp_path: Path
) -> None:
    """`pip install cutover` (the wheel and its base dependencies only): approve from a stack
    file, shift writing the stack config back, status, rollback, watchdog, kpis and report work
    against the stack; --plot and preview exit 2
    naming the extra to install, writing nothing."""
    venv = tmp_path / "venv"
    target = install(wheel, venv)
    lean = tmp_path / "lean"
    brought = lean_site(lean)
    assert not {"kubernetes", "matplotlib", "pulumi", "grpcio"} & set(brought)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        **aws.env,
        "PYTHONPATH": str(lean),
    }
    args = ["--outputs", str(aws.outputs["checkout"]), "--journal", aws.journal()]

    def cutover(*argv: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from cutover.cli import main; sys.argv[0] = 'cutover'; main()"
        return subprocess.run([str(venv / "bin" / "python"), "-c", code, *argv], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import cutover, importlib.util; print(cutover.__file__); "
         f"print([m for m in {EXTRA_MODULES!r} if importlib.util.find_spec(m)])"],
        env=env, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert where.stdout.splitlines() == [str(target / "cutover" / "__init__.py"), "[]"], (
        where.stdout + where.stderr
    )
    stack_file = tmp_path / "Pulumi.prod.yaml"
    stack_file.write_text((ROOT / "Pulumi.prod.yaml").read_text())
    approved = cutover("approve", "--stack", "prod", "--color", "green", "--stack-file",
                       str(stack_file), "--gates-config", str(aws.gates_config), "--key",
                       str(aws.keys / "chairman.key"), "--out", str(tmp_path / "approval.json"))  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    shifted = cutover("shift", "--to", "green", "--steps", "50,100", "--bake", "0s",
                      "--interval", "0.2s", "--stack-config", str(stack_file),
                      *aws.gate_args(), *args)  # fmt: skip
    assert shifted.returncode == 0, shifted.stderr
    assert aws.served("checkout") == {"blue": 0, "green": 100}
    assert "cutover:activeColor: green" in stack_file.read_text()
    status = cutover("status", *args)
    assert status.returncode == 0 and "green" in status.stdout, status.stderr
    rolled = cutover("rollback", *args)
    assert rolled.returncode == 0, rolled.stderr
    assert aws.served("checkout") == {"blue": 100, "green": 0}
    watched = cutover("watchdog", "--once", *args)
    assert watched.returncode == 0, watched.stderr
    kpis = cutover("kpis", *args)
    assert kpis.returncode == 0, kpis.stderr
    # the operator's rollback came after a verified success: a success, not a failed change
    assert "Deployments (shifts that moved traffic): 1, succeeded: 1 (100%)" in kpis.stdout
    assert "Rolled back by an operator after they succeeded: 1" in kpis.stdout
    assert "Change failure rate: 0%" in kpis.stdout and "None" not in kpis.stdout
    out = tmp_path / "reports"
    reported = cutover("report", "--out", str(out), *args)
    assert reported.returncode == 0, reported.stderr
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 1 and written[0].endswith(".md")

    plotted = cutover("report", "--plot", "--out", str(tmp_path / "plots"), *args)
    assert plotted.returncode == 2
    assert plotted.stderr.strip() == (
        "error: `cutover report` needs cutover[plots] (matplotlib is not installed): "
        "pip install 'cutover[plots]'"
    )
    assert not (tmp_path / "plots").exists()
    previewed = cutover("preview", "--project-dir", str(ROOT))
    assert previewed.returncode == 2
    assert "`cutover preview` needs cutover[preview] (" in previewed.stderr
    assert "Traceback" not in previewed.stderr + plotted.stderr
