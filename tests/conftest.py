"""Each layer's fixtures live in its own conftest.py, so `pytest tests/unit` imports neither
moto, boto3's servers, Pulumi nor the rehearsal."""

from __future__ import annotations

import pytest

# The longest tests, started first: one that takes minutes, begun last, holds its worker long
# after the others are done (the documentation's walk-through is ~170 s of the slow layer's
# ~380 s on four workers; first, the layer took 373 s against 395 s).
LONGEST_FIRST = ("test_docs_commands.py::test_the_documentation_runs_as_written",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.endswith(LONGEST_FIRST))
