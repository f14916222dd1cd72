"""The `cutover-gates` policy pack. The engine starts this file; it serves the analyzer protocol."""

import sys
from pathlib import Path

# The pack is self-contained: its library sits beside this file, so `pulumi policy publish`
# uploads everything it needs.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cutover_gates.rules import POLICIES  # noqa: E402
from cutover_gates.rules.plumbing import serve  # noqa: E402

serve(
    name="cutover-gates",
    description="Release gates for blue-green production deployments made with cutover.",
    policies=POLICIES,
)
