"""The `cutover-gates` policies, declared once each, in the order reviewers see them.

Gates (approval, sign-off, drill, freeze) apply to updates that move traffic: when a color's
weight changes, or a color receiving traffic changes release, compared with the stack's
previous update (its `traffic` output, which the program reads through a self StackReference
and exports again as `previousTraffic`: the engine shows the pack outputs, not reads). Each
message says what is wrong and what to do. Anything that cannot be decided because a value is
unknown during preview fails closed with a violation saying so. Each policy is declared beside
its check, its description the check's docstring: `gates.py`, `rollback.py` (a warm previous
color, the watchdog), `traffic.py` (monitoring, weights), `resources.py`, and what drops
requests in a flip: `draining.py` (deregistration, keep-alive, stop timeouts, stickiness) and
`readiness.py` (forward-only rules, health before weight, warm capacity);
`policy.py` is how a policy is declared, and `plumbing.py` how the declarations are served to
the engine (the only module that needs the policy SDK: the helper reads the declarations
without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cutover_gates.config_schema import GateConfig
from cutover_gates.contract import TRUSTED_KEYS_OF
from cutover_gates.rules.draining import DRAINING
from cutover_gates.rules.gates import GATES
from cutover_gates.rules.policy import Policy
from cutover_gates.rules.readiness import READINESS
from cutover_gates.rules.resources import RESOURCES
from cutover_gates.rules.rollback import ROLLBACK
from cutover_gates.rules.traffic import TRAFFIC

POLICIES: list[Policy] = [*GATES, *ROLLBACK, *TRAFFIC, *RESOURCES, *DRAINING, *READINESS]
NAMED = {p.name: p for p in POLICIES}


def gate_config(pack_config: Mapping[str, Any], kind: str) -> GateConfig:
    """The typed config of the policy whose keys judge `kind` records, from a whole pack
    config (as `--gates-config` gives it: defaults filled in or not); ValueError naming the
    policy and key when a value cannot be read."""
    policy = NAMED[TRUSTED_KEYS_OF[kind]]
    given = pack_config.get(policy.name) or {}
    try:
        config = policy.config.parse(given if isinstance(given, Mapping) else {})
    except ValueError as e:
        raise ValueError(f"{policy.name}.{e}") from None
    if not isinstance(config, GateConfig):
        raise TypeError(f"{policy.name} judges no records")
    return config
