"""A 3-node NATS cluster on loopback: JetStream and the MQTT gateway on every node, free ports, one folder.

``NatsCluster(folder).start()`` writes a config per node (client, cluster route, MQTT and monitoring ports;
JetStream in the node's own store folder), starts ``nats-server`` for each and waits until every node runs and
JetStream has a leader (a node that exits at start, as when another process took one of its free ports first,
makes it start the cluster again on new ports, up to ``START_ATTEMPTS`` times); ``kill(i)`` SIGKILLs one node,
``restart(i)`` brings it back on the same ports and store.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools.mosquitto import free_port

INSTALL = "apt-get install nats-server"
READY_SECONDS = 30.0
START_ATTEMPTS = 3


def nats_binary() -> str | None:
    """nats-server's path (Debian installs it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nats-server") or next((p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server")
                                                  if Path(p).is_file()), None)


@dataclass
class Node:
    name: str
    client: int
    route: int
    mqtt: int
    monitor: int
    process: subprocess.Popen[bytes] | None = None


class NatsCluster:
    def __init__(self, folder: Path, size: int = 3, mqtt_replicas: int | None = None) -> None:
        binary = nats_binary()
        if binary is None:
            raise RuntimeError(f"nats-server is not installed: {INSTALL}")
        self.binary, self.folder = binary, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.mqtt_replicas = mqtt_replicas or min(size, 3)
        self.size = size
        self.nodes = self._pick_ports()

    def _pick_ports(self) -> list[Node]:
        """Nodes on free loopback ports, no two the same (the OS may hand a just-released port out again)."""
        ports: list[int] = []
        while len(ports) < 4 * self.size:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return [Node(f"n{i}", ports[4 * i], ports[4 * i + 1], ports[4 * i + 2], ports[4 * i + 3])
                for i in range(self.size)]

    def _conf(self, node: Node) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{n.route}" for n in self.nodes if n is not node)
        store = self.folder / node.name
        store.mkdir(parents=True, exist_ok=True)
        text = f"""server_name: {node.name}
listen: 127.0.0.1:{node.client}
http: 127.0.0.1:{node.monitor}
jetstream {{ store_dir: "{store}", max_memory_store: 64MB, max_file_store: 1GB }}
cluster {{ name: invigil, listen: 127.0.0.1:{node.route}, routes: [{routes}] }}
mqtt {{ listen: 127.0.0.1:{node.mqtt}, stream_replicas: {self.mqtt_replicas}, ack_wait: "10s" }}
"""
        path = self.folder / f"{node.name}.conf"
        path.write_text(text)
        return path

    def start(self) -> NatsCluster:
        for attempt in range(1, START_ATTEMPTS + 1):
            for node in self.nodes:
                self._launch(node)
            try:
                self.wait_ready(every_node=True)
                return self
            except RuntimeError:
                self.stop()
                if attempt == START_ATTEMPTS:
                    raise
                for node in self.nodes:  # nothing stored yet: the next attempt starts from empty stores
                    shutil.rmtree(self.folder / node.name, ignore_errors=True)
                self.nodes = self._pick_ports()
        return self

    def _launch(self, node: Node) -> None:
        log = (self.folder / f"{node.name}.log").open("ab")
        node.process = subprocess.Popen([self.binary, "-c", str(self._conf(node))], stdout=log, stderr=log)
        log.close()

    def _jsz(self, node: Node) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{node.monitor}/jsz", timeout=1) as answer:
                data: dict[str, object] = json.loads(answer.read())
                return data
        except (OSError, ValueError):
            return None

    def wait_ready(self, seconds: float = READY_SECONDS, every_node: bool = False) -> None:
        """Until every running node answers and the JetStream meta group has a leader; with ``every_node``, a
        node that has exited fails at once (RuntimeError naming it and its log)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            alive = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
            gone = [n.name for n in self.nodes if n not in alive]
            if every_node and gone:
                raise RuntimeError(f"NATS node {', '.join(gone)} exited at start (log in {self.folder})")
            metas = [(self._jsz(n) or {}).get("meta_cluster") for n in alive]
            if metas and all(isinstance(meta, dict) and meta.get("leader") for meta in metas):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the NATS cluster was not ready within {seconds:g} s (logs in {self.folder})")

    def urls(self, skip: int | None = None) -> list[str]:
        return [f"nats://127.0.0.1:{n.client}" for i, n in enumerate(self.nodes) if i != skip]

    def kill(self, index: int) -> None:
        process = self.nodes[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def restart(self, index: int) -> None:
        self._launch(self.nodes[index])

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(10)
