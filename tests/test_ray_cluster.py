"""ZIP on a simulated two-node Ray cluster, through the command line's --ray-address."""
from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from entrosel import select_zip  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.test_cli import entrosel  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_two_node_cluster_gives_the_local_selection(two_nodes, tmp_path, real_exchanges):
    records = real_exchanges[:150]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    expected = select_zip(records, 30, k1=50, k2=15, k3=6, workers=1)
    ray.init(address=two_nodes.address, log_to_driver=False, configure_logging=False)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    assert select_zip(pool, 30, k1=50, k2=15, k3=6, workers=2, engine="ray") == expected
    ray.shutdown()
    out = tmp_path / "sel.jsonl"
    r = entrosel("select", "zip", pool, "-o", out, "--budget", 30, "--k1", 50, "--k2", 15, "--k3", 6,
                 "--workers", 2, "--engine", "ray", "--ray-address", two_nodes.address)
    assert r.returncode == 0, r.stderr[-3000:]
    local = tmp_path / "local.jsonl"
    entrosel("select", "zip", pool, "-o", local, "--budget", 30, "--k1", 50, "--k2", 15, "--k3", 6, check=True)
    assert out.read_bytes() == local.read_bytes()
