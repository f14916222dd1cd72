"""A fact the preview could not read, and the policies that depend on it.

The program publishes, beside the gate records, how the latest shift towards each color ended
in the stack's journal (cutover_components/latest_deployments.py), and the pack fails closed
when that says the journal could not be read: right for `pulumi up`, wrong for a preview
without cloud credentials, where every update would read "Blocked" for a fact nobody could
read. So where that fact is unread, the preview asks the pack twice: with the fact as unknown
(the pack fails closed) and with nothing to say (no shift rolled back: the most a journal can
allow). A policy that fails either way fails for what was read; one that fails only when the
fact is unknown is not judged here, and `pulumi up`, where the journal can be read, judges it.
Pure: the pack is the caller's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cutover_gates.contract import (
    COLORS,
    LATEST_DEPLOYMENT,
    RECORDS_CONFIG_MAP,
    record_config_map_key,
    record_parameter,
)
from cutover_gates.stack_outputs import JOURNAL_TABLE, ROUTE

from cutover.preview.pack import Diagnostic
from cutover.preview.program import Resource

# What the unread fact is, as the preview names it.
OUTCOMES = "how the latest shift towards each color ended, in the stack's journal"
PARAMETER = "aws:ssm/parameter:Parameter"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
# How Pulumi marks a secret value on the wire (pulumi.runtime.rpc): an SSM parameter's value is
# one, and the pack reads through it.
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def _revealed(value: Any) -> Any:
    """A property's value, out of its secret wrapper if it has one."""
    secret = isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG
    return value.get("value") if secret else value


def _replaced(value: Any, text: str) -> Any:
    """`text` in the place of a property's value, in its secret wrapper if it had one."""
    return {**value, "value": text} if _revealed(value) is not value else text


@dataclass(frozen=True)
class Unread:
    """A fact the preview could not read: what it is, and why it could not."""

    what: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"fact": self.what, "why": self.why}


def _published(resource: Resource, stack: str) -> dict[str, str]:
    """Each color's published outcome this resource holds (an SSM parameter or the records'
    ConfigMap), by where it sits in its properties."""
    props = resource.state
    if resource.type == PARAMETER:
        names = {record_parameter(stack, c, LATEST_DEPLOYMENT): c for c in COLORS}
        color = names.get(str(props.get("name")))
        return {"value": str(_revealed(props.get("value")))} if color else {}
    if resource.type == CONFIG_MAP and (props.get("metadata") or {}).get("name") == (
        RECORDS_CONFIG_MAP
    ):
        data = props.get("data") or {}
        keys = [record_config_map_key(c, LATEST_DEPLOYMENT) for c in COLORS]
        return {k: str(data[k]) for k in keys if k in data}
    return {}


def unread_outcomes(
    resources: list[Resource], stack: str, previous: dict[str, Any] | None
) -> Unread | None:
    """The journal's outcomes, when the program could not read them (it published why), or
    did not try (the previous outputs name no journal, as a base branch's stack file does);
    None when they were read, or on a first update (nothing to read)."""
    if previous is None:
        return None
    for resource in resources:
        for text in _published(resource, stack).values():
            try:
                fact = json.loads(text)
            except ValueError:
                continue  # the pack judges a malformed fact itself
            if isinstance(fact, dict) and "unreadable" in fact:
                return Unread(OUTCOMES, str(fact["unreadable"]))
    if not previous.get(JOURNAL_TABLE) and not previous.get(ROUTE):
        return Unread(OUTCOMES, "the previous outputs name no journal to read")
    return None


def with_outcomes(resources: list[Resource], stack: str, fact: dict[str, Any]) -> list[Resource]:
    """The resources with every color's published outcome replaced by `fact`."""
    text = json.dumps(fact)
    found = []
    for resource in resources:
        where = _published(resource, stack)
        if not where:
            found.append(resource)
            continue
        changed = copy.deepcopy(resource)
        for props in (changed.inputs, changed.state):
            if resource.type == PARAMETER:
                props["value"] = _replaced(props.get("value"), text)
            else:
                props["data"] = {**(props.get("data") or {}), **dict.fromkeys(where, text)}
        found.append(changed)
    return found


def judge_without(
    unread: Unread,
    resources: list[Resource],
    stack: str,
    analyze: Callable[[list[Resource]], list[Diagnostic]],
) -> tuple[list[Diagnostic], list[str]]:
    """The pack's diagnostics on what was read, and the policies that depend on the unread
    fact (violated only while it is unknown)."""
    strict = analyze(with_outcomes(resources, stack, {"unreadable": unread.why}))
    permissive = analyze(with_outcomes(resources, stack, {}))
    failing = {d.policy for d in permissive}
    depending = sorted({d.policy for d in strict} - failing)
    return permissive, depending
