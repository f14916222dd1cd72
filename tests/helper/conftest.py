"""What the helper's tests share: a moto server on 127.0.0.1 with the stack the program creates,
and a real Kubernetes control plane with a Gateway (one per pytest worker, started on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.aws_stack import aws, aws_session  # noqa: F401 (fixtures)
from tests.harness.cluster import KubeCluster, kube_cluster, require_cluster


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    require_cluster()
    with kube_cluster(tmp_path_factory.mktemp("kube")) as running:
        yield running
