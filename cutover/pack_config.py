"""Policy pack config: the JSON of `pulumi preview --policy-pack-config`, validated as the
Pulumi CLI validates it (each policy's JSON Schema), with the schema's defaults filled in.

`cutover preview` validates against the schemas the running pack reports; `cutover shift`,
`drill` and `records verify` validate their `--gates-config` against the same declarations
(cutover_gates.rules) without starting the pack. Pure but for reading the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutover_gates.record import DuplicateKey, strict_object
from cutover_gates.rules import NAMED, POLICIES

from cutover.errors import ConfigError

LEVELS = {"advisory": 0, "mandatory": 1, "disabled": 2, "remediate": 3}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    level: str
    schema: dict[str, Any]
    kind: str
    # what Pulumi Cloud shows a reviewer
    display_name: str = ""
    severity: str = ""
    remediation: str = ""
    tags: tuple[str, ...] = ()
    url: str = ""


def resolve_config(
    config: dict[str, Any], policies: list[PolicyInfo], where: str = "policy pack config"
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Per policy: (enforcement level, properties with defaults). ConfigError on invalid config."""
    by_name = {p.name: p for p in policies}
    unknown = sorted(set(config) - set(by_name) - {"all"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown policy {unknown[0]!r}; expected one of {sorted(by_name)} or 'all'"
        )
    default = config.get("all")
    if default is not None and default not in LEVELS:
        raise ConfigError(f"{where}: all: got {default!r}; expected one of {sorted(LEVELS)}")
    resolved = {}
    for policy in policies:
        entry = config.get(policy.name, {})
        if isinstance(entry, str):
            entry = {"enforcementLevel": entry}
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where}: {policy.name}: got {entry!r}; expected an object or an enforcement level"
            )
        props = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        level = entry.get("enforcementLevel", default or policy.level)
        if level not in LEVELS:
            raise ConfigError(
                f"{where}: {policy.name}.enforcementLevel: got {level!r}; expected one of {sorted(LEVELS)}"
            )
        import jsonschema  # slow to import: only when there is config to check

        schema = {
            "type": "object",
            "properties": policy.schema["properties"],
            "required": policy.schema["required"],
            "additionalProperties": False,
        }
        error = (
            jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(props))
            if props or schema["required"]
            else None
        )
        if error is not None:
            field = ".".join(str(p) for p in error.absolute_path) or "(top)"
            raise ConfigError(f"{where}: {policy.name}.{field}: {error.message}")
        defaults = {
            k: s["default"] for k, s in policy.schema["properties"].items() if "default" in s
        }
        resolved[policy.name] = (level, {**defaults, **props})
    return resolved


def load_pack_config(path: Path | None, flag: str = "--policy-pack-config") -> dict[str, Any]:
    """The pack config JSON file given as `flag`, or {} when none is given."""
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text(), object_pairs_hook=strict_object)
    except OSError as e:
        raise ConfigError(f"{flag} {path}: cannot read it ({e.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, DuplicateKey) as e:
        if isinstance(e, DuplicateKey | UnicodeDecodeError):
            raise ConfigError(f"{flag} {path}: not valid JSON ({e})") from None
        raise ConfigError(f"{flag} {path}: not JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} {path}: expected a JSON object of policy names")
    return value


def load_gates_config(path: Path) -> dict[str, Any]:
    """`--gates-config`: the pack config, validated against the pack's own schemas, and each
    policy's config read as the pack reads it (a key listed twice is refused, say)."""
    config = load_pack_config(path, "--gates-config")
    policies = [
        PolicyInfo(
            p.name, "", "mandatory", {"properties": p.config.properties(), "required": []}, "stack"
        )  # fmt: skip
        for p in POLICIES
    ]
    resolved = resolve_config(config, policies, f"--gates-config {path}")
    for name, (_, properties) in resolved.items():
        try:
            NAMED[name].config.parse(properties)
        except ValueError as e:
            raise ConfigError(f"--gates-config {path}: {name}.{e}") from None
    return config
