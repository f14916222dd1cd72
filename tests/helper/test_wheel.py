"""The wheel, built in isolation from the checkout and installed into an empty virtualenv, works away from
the checkout: everything the commands need ships in it (no file of the checkout is read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from tests.harness.program_runs import ROOT


def test_the_wheel_works_outside_the_checkout(tmp_path: Path) -> None:
    import shutil

    source = tmp_path / "source"  # a copy: building writes build/ beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "cutover", source / "cutover")
    shutil.copytree(ROOT / "policies" / "cutover_gates", source / "policies" / "cutover_gates")
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(dist), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("cutover-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cutover").rglob("*.py")}
    modules |= {
        f"cutover_gates/{p.name}" for p in (ROOT / "policies" / "cutover_gates").glob("*.py")
    }
    assert modules <= set(names), sorted(modules - set(names))
    assert not [
        n for n in names if n.startswith(("tests/", "components/", "benchmarks/", "rehearsal/"))
    ]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = (
        venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )
    with zipfile.ZipFile(wheel) as archive:  # what pip would unpack, without its resolver
        archive.extractall(target)
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
