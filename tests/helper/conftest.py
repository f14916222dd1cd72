"""What the helper's tests share: a moto server on 127.0.0.1 with the stack the program creates,
and a real Kubernetes control plane with a Gateway (one per pytest worker, started on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.aws_stack import aws, aws_session  # noqa: F401 (fixtures)
from tests.harness.cluster import KubeCluster, kube_cluster, require_cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the real control plane is marked `cluster`: `make test` leaves them to
    `make e2e`, the real layer, which runs them beside tests/e2e."""
    for item in items:
        if "kube" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    require_cluster()
    with kube_cluster(tmp_path_factory.mktemp("kube")) as running:
        yield running
