"""The `cutover-gates` policy pack. The engine starts this file; it serves the analyzer protocol."""

import sys
from pathlib import Path

# The pack is self-contained: its library sits beside this file, so `pulumi policy publish`
# uploads everything it needs.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cutover_gates.rules import POLICIES  # noqa: E402
from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

PolicyPack(
    name="cutover-gates",
    description="Release gates for blue-green production deployments made with cutover.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
