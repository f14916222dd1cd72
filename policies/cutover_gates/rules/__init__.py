"""The `cutover-gates` policies, in the order reviewers see them.

Gates (approval, sign-off, drill, freeze) apply to updates that move traffic: when a color's
weight changes, or a color receiving traffic changes release, compared with the stack's
previous update (its `traffic` output, read through the program's self StackReference). Each
message says what is wrong and what to do. Anything that cannot be decided because a value is
unknown during preview fails closed with a violation saying so. Each policy is declared beside
its check, its description the check's docstring: `gates.py`, `rollback.py` (a warm previous
color, the watchdog), `traffic.py` (monitoring, weights), `resources.py`; `plumbing.py` is how.
"""

from __future__ import annotations

from cutover_gates.rules.gates import GATES
from cutover_gates.rules.resources import RESOURCES
from cutover_gates.rules.rollback import ROLLBACK
from cutover_gates.rules.traffic import TRAFFIC

POLICIES = [*GATES, *ROLLBACK, *TRAFFIC, *RESOURCES]
