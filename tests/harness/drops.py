"""The corpus of drop-causing stack configs (tests/pack/drops.yaml): each case's stack config,
built over the reference stack it names, and the resources a team's program would change.

Apart from the program run and the pack, so the same cases can be previewed another way (the
real `pulumi preview --policy-pack`): `stack_config` is the whole `cutover:` config of a case,
`edit_program` what its `program` changes in the declared resources.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cutover.preview.program import Resource
from cutover.stack_config import stack_config as read_stack_file
from tests.harness.program_runs import ROOT, kubernetes_config

CORPUS = ROOT / "tests" / "pack" / "drops.yaml"
KUBERNETES_EXAMPLE = ROOT / "examples" / "kubernetes" / "Pulumi.prod.yaml"


def _kubernetes_alb() -> dict[str, Any]:
    config = kubernetes_config(active="blue", percent=100, routing="alb")
    config["cutover:analysis"] = read_stack_file(ROOT / "Pulumi.prod.yaml")["cutover:analysis"]
    return config


# Each base: the reference stack's config, as its stack file has it.
BASES: dict[str, Callable[[], dict[str, Any]]] = {
    "ecs": lambda: read_stack_file(ROOT / "Pulumi.prod.yaml"),
    "kubernetes": lambda: read_stack_file(KUBERNETES_EXAMPLE),
    "kubernetes-alb": _kubernetes_alb,
}


@dataclass(frozen=True)
class Case:
    """One stack config of the corpus and the policies that must refuse it (none: it passes)."""

    name: str
    base: str
    config: dict[str, Any] = field(default_factory=dict)
    program: list[dict[str, Any]] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def cases(section: str) -> list[Case]:
    """The corpus's `refused` or `passes` cases."""
    found = yaml.safe_load(CORPUS.read_text())[section]
    return [Case(**entry) for entry in found]


def flip(base: str) -> dict[str, Any]:
    """The reference stack `base` in the update that moves all traffic to green."""
    config = copy.deepcopy(BASES[base]())
    config["cutover:activeColor"] = "green"
    config["cutover:trafficPercent"] = 100
    return config


def stack_config(case: Case) -> dict[str, Any]:
    """The whole `cutover:` config of `case`: its base flipped to green, its keys set over it."""
    return set_keys(flip(case.base), case.config)


def set_keys(config: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    """`config` (changed in place, and returned) with each of `keys` set: `cutover:` keys
    without their prefix, a dotted key setting a nested one."""
    for path, value in keys.items():
        top, *rest = path.split(".")
        node = config.setdefault(f"cutover:{top}", {}) if rest else config
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1] if rest else f"cutover:{top}"] = value
    return config


def edit_program(resources: list[Resource], case: Case) -> list[Resource]:
    """The declared `resources` with what the case's program changes: each `set` on the
    resources it selects (state and inputs alike), each `add` appended."""
    edited = copy.deepcopy(resources)
    for edit in case.program:
        values = {k: _resolved(v, edited) for k, v in edit["values"].items()}
        if "add" in edit:
            edited.append(_added(edit["add"], values, edited))
            continue
        chosen = [r for r in edited if _selected(r, edit["set"])]
        assert chosen, f"{case.name}: no resource is {edit['set']}"
        for resource in chosen:
            for pointer, value in values.items():
                _set(resource.state, pointer, value)
                _set(resource.inputs, pointer, value)
    return edited


def _selected(resource: Resource, selector: dict[str, str]) -> bool:
    metadata = resource.state.get("metadata") or {}
    color = (resource.state.get("tags") or {}).get("cutover:color") or (
        metadata.get("labels") or {}
    ).get("cutover/color")
    return (
        resource.type == selector["type"]
        and selector.get("color", color) == color
        and selector.get("name", resource.name) == resource.name
    )


def _added(what: dict[str, str], values: dict[str, Any], resources: list[Resource]) -> Resource:
    """A resource declared beside the service, as a team's program would (at the stack's root)."""
    stack, project = resources[0].urn.removeprefix("urn:pulumi:").split("::")[:2]
    urn = f"urn:pulumi:{stack}::{project}::{what['type']}::{what['name']}"
    return Resource(urn, what["type"], what["name"], True, "", values, copy.deepcopy(values))


def _resolved(value: Any, resources: list[Resource]) -> Any:
    """`value` with each `ref:NAME.FIELD` replaced by that resource's field."""
    if isinstance(value, dict):
        return {k: _resolved(v, resources) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, resources) for v in value]
    if isinstance(value, str) and value.startswith("ref:"):
        name, _, attribute = value.removeprefix("ref:").rpartition(".")
        (found,) = [r for r in resources if r.name == name and r.custom]
        return found.state[attribute]
    return value


def _set(document: dict[str, Any], pointer: str, value: Any) -> None:
    """Set the JSON Pointer `pointer` (RFC 6901) of `document` to `value`, making the objects
    on the way; an index one past a list's end appends."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    node: Any = document
    for part, after in zip(parts, parts[1:], strict=False):
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node.setdefault(part, [] if after.isdigit() else {})
    last = parts[-1]
    if isinstance(node, list):
        index = int(last)
        node[index : index + 1] = [copy.deepcopy(value)]
    else:
        node[last] = copy.deepcopy(value)


def write_stack_file(path: Path, config: dict[str, Any]) -> Path:
    """`config` as a Pulumi.<stack>.yaml."""
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path
