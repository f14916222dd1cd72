"""The real layer's fixtures: one control plane, Gateway and set of backends for the session
(starting kube-apiserver costs seconds; each test writes its own objects)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.real_cluster import RealCluster, real_cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    # Traefik's metrics on: the zero-downtime tests count requests through its own counter.
    with real_cluster(tmp_path_factory.mktemp("real-cluster"), metrics=True) as running:
        yield running
