"""The `cutover-gates` policies, in the order reviewers see them.

Gates (approval, sign-off, drill) apply to updates that move traffic: when a color's weight
changes, or a color receiving traffic changes release, compared with the stack's previous
update (its `traffic` output, read through the program's self StackReference). Each message
says what is wrong and what to do. Anything that cannot be decided because a value is unknown
during preview fails closed with a violation saying so. Each policy is declared beside its
check: `gate_policies.py`, `traffic_policies.py`, `resource_policies.py`; `policy.py` is how.
"""

from __future__ import annotations

from cutover_gates.gate_policies import GATES
from cutover_gates.resource_policies import RESOURCES
from cutover_gates.traffic_policies import TRAFFIC

POLICIES = [*GATES, *TRAFFIC, *RESOURCES]
