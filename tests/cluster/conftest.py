"""The cluster tests' shared hidden-states servers (started once for the package)."""

from __future__ import annotations

import pytest

from tests.cluster.util import start_hf_server
from tests.vllm_fixtures import stop_server, wait_health


@pytest.fixture(scope="package")
def servers(tiny_target, tmp_path_factory):
    """Two hf servers writing into one storage directory (the shared filesystem of a cluster)."""
    root = tmp_path_factory.mktemp("cluster-servers")
    storage = root / "hs"
    storage.mkdir()
    procs, urls = [], []
    try:
        for i in range(2):
            proc, url = start_hf_server(tiny_target, storage, root / f"server{i}.log")
            procs.append(proc)
            urls.append(url)
        for proc, url, i in zip(procs, urls, range(2)):
            wait_health(url.removesuffix("/v1") + "/health", proc, timeout=180, log=root / f"server{i}.log")
        yield {"urls": urls, "storage": storage, "root": root}
    finally:
        for proc in procs:
            stop_server(proc)


