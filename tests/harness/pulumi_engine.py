"""The real Pulumi engine for the e2e layer: the `pulumi` CLI, its Python language host and the
pulumi-kubernetes provider that `make cluster-tools` builds, running cutover's program on a
stack of the test's own against the real API server.

The project folder is a temporary one: its Pulumi.yaml names the project `cutover` (what gate
records bind) and points `main` at tests/e2e/program, which runs the repository's own
`__main__.py` (see its docstring for the one transform it adds); its Pulumi.<stack>.yaml is
the test's. State goes to a `file://` backend in the same folder, and PULUMI_HOME is the test's
own, so nothing is read from or written to the machine's Pulumi setup, and nothing may try to
download a plugin (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION): every plugin is the one found
on PATH.

The language host is v3.79.0 (see .ci/cluster-tools for why): it does not read the runtime's
options that the CLI sends (Pulumi.yaml's `virtualenv`), and runs the first `python3` on PATH,
so the repository's .venv comes first on PATH here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.harness.real_cluster import PULUMI_TOOLS, load_tools, pulumi_env

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "tests" / "e2e" / "program"
PROJECT = "cutover"
# A `pulumi up` of the Kubernetes stack takes 15-40 s on 2 busy cores; its deadline is generous
# because a slow engine is not what a test is about, and a hung one must still fail.
ENGINE_TIMEOUT = 300.0
CLUSTER_IDENTIFIER = "cutover-e2e"


class EngineFailed(AssertionError):
    """A `pulumi` command exited non-zero, or a command hung; the message has its output."""


def run_process(
    argv: list[str], folder: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end in `folder`, its output captured; one still running after
    `timeout` seconds is killed and fails with what it had said."""
    try:
        return subprocess.run(
            argv,
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        said = [(s.decode(errors="replace") if isinstance(s, bytes) else s or "")
                for s in (e.stdout, e.stderr)]  # fmt: skip
        raise EngineFailed(
            f"{' '.join(argv)} still running after {timeout:.0f} s:\n" + "\n".join(said)
        ) from None


@dataclass(frozen=True)
class PulumiStack:
    """One stack of the `cutover` project in `folder`, driven by the real CLI."""

    folder: Path
    stack: str
    env: dict[str, str]
    pulumi: Path

    @property
    def stack_file(self) -> Path:
        return self.folder / f"Pulumi.{self.stack}.yaml"

    def run(
        self, *args: str, check: bool = True, timeout: float = ENGINE_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """`pulumi ARGS --stack STACK --non-interactive` in the project folder."""
        done = run_process(
            [str(self.pulumi), *args, "--stack", self.stack, "--non-interactive"],
            self.folder,
            self.env,
            timeout,
        )
        if check and done.returncode != 0:
            raise EngineFailed(
                f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def up(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--yes", "--skip-preview", *args)

    def outputs(self) -> dict[str, Any]:
        """`pulumi stack output --json`: what the helper's --outputs takes."""
        found: dict[str, Any] = json.loads(self.run("stack", "output", "--json").stdout)
        return found

    def write_outputs(self, path: Path) -> Path:
        path.write_text(json.dumps(self.outputs(), indent=2) + "\n")
        return path

    def config(self) -> dict[str, Any]:
        """The stack file's config, as the CLI and `cutover ... --stack-config` see it."""
        found: dict[str, Any] = yaml.safe_load(self.stack_file.read_text())["config"]
        return found

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the stack file's config, keeping what else the CLI wrote there (the
        passphrase's salt)."""
        document = yaml.safe_load(self.stack_file.read_text()) if self.stack_file.exists() else {}
        self.stack_file.write_text(
            yaml.safe_dump({**(document or {}), "config": config}, sort_keys=False)
        )


def engine_env(home: Path, backend: Path, kubeconfig: Path) -> dict[str, str]:
    """pulumi_env, with the project's .venv first on PATH (the v3.79 host runs the first
    python3 there), state in `backend` and the harness's kubeconfig for the helper's code the
    program runs (its journal reader)."""
    env = pulumi_env(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    # metadata=skip: gocloud's fileblob rewrites each state file's `.attrs` sidecar in place
    # (create, then encode), and the program's self StackReference reading the checkpoint
    # while the update saves it then failed with "failed to load checkpoint: EOF" (once in
    # seven fresh stacks here); with no sidecar, every read is of a file renamed whole
    env["PULUMI_BACKEND_URL"] = f"{backend.as_uri()}?metadata=skip"
    env["KUBECONFIG"] = str(kubeconfig)
    # The program is run from tests/e2e/program: nothing of the caller's may shadow the project.
    env.pop("PYTHONPATH", None)
    return env


def engine_stack(folder: Path, stack: str, config: dict[str, Any], kubeconfig: Path) -> PulumiStack:
    """A new stack of project `cutover` in `folder` with `config` (a stack file's `config:`),
    its default Kubernetes provider on `kubeconfig` with a fixed `clusterIdentifier` (so a new
    kubeconfig file, or token, never makes the provider replace what it created)."""
    tools = load_tools(PULUMI_TOOLS)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text(
        yaml.safe_dump(
            {
                "name": PROJECT,
                "description": "cutover's program on the e2e layer's API server",
                "main": os.path.relpath(PROGRAM, folder),
                "runtime": {
                    "name": "python",
                    "options": {"toolchain": "pip", "virtualenv": str(Path(sys.prefix))},
                },
            },
            sort_keys=False,
        )
    )
    (folder / "state").mkdir(exist_ok=True)
    env = engine_env(folder / "pulumi-home", folder / "state", kubeconfig)
    pulumi_stack = PulumiStack(folder, stack, env, tools["pulumi"].path)
    pulumi_stack.run("stack", "init")  # `--stack NAME` names the new stack
    pulumi_stack.write_config(
        {
            **config,
            "kubernetes:kubeconfig": str(kubeconfig),
            "kubernetes:clusterIdentifier": CLUSTER_IDENTIFIER,
        }
    )
    return pulumi_stack
