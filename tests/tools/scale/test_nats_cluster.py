"""The loopback NATS cluster of the scale tests starts whole or says why (tools/scale/nats_cluster.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.need import need
from tools.scale import nats_cluster
from tools.scale.nats_cluster import INSTALL, NatsCluster, nats_binary


def test_the_ports_of_a_cluster_are_all_different(tmp_path: Path) -> None:
    need(nats_binary() is not None, f"nats-server is not installed: {INSTALL}")
    cluster = NatsCluster(tmp_path, size=3)
    ports = [p for n in cluster.nodes for p in (n.client, n.route, n.mqtt, n.monitor)]
    assert len(set(ports)) == len(ports) == 12


def test_a_node_whose_port_is_taken_makes_the_cluster_start_again_on_new_ports(tmp_path: Path) -> None:
    need(nats_binary() is not None, f"nats-server is not installed: {INSTALL}")
    cluster = NatsCluster(tmp_path, size=3)
    taken = cluster.nodes[1].client
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        cluster.start()
        try:
            assert taken not in [n.client for n in cluster.nodes]
            assert all(n.process is not None and n.process.poll() is None for n in cluster.nodes)
        finally:
            cluster.stop()


def test_a_cluster_that_cannot_start_names_the_node_and_stops_the_rest(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    need(nats_binary() is not None, f"nats-server is not installed: {INSTALL}")
    monkeypatch.setattr(nats_cluster, "START_ATTEMPTS", 1)
    cluster = NatsCluster(tmp_path, size=3)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", cluster.nodes[2].mqtt))
        squatter.listen()
        with pytest.raises(RuntimeError, match="NATS node n2 exited at start"):
            cluster.start()
    assert all(n.process is not None and n.process.poll() is not None for n in cluster.nodes)
