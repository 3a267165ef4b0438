"""The bench's devices in a process of their own, as units are other machines than the bridge.

In the bench's own process the ten device clients' publishing would share one GIL with what is measured:
every time a bridge thread lets go of it (a database call, a signature check) a publishing thread could hold
it for a whole switch interval, a cost a deployed bridge never pays. The null consumer and the bridge are
both measured against this same out-of-process fleet. The protocol is one JSON object a line: the parent
sends ``{"devices": [[id, private key hex], ...]}`` (answer ``{"ready": true}``), then ``{"batches": [[payload
hex, ...], ...]}`` per run (answer ``{"start": s, "acked": s}``, ``time.monotonic()``), and closes stdin.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tools.bench.bridge_parts import CONNECT_SECONDS, STALL_SECONDS, Batches, Device, Fleet


class FleetProcess:
    """:class:`Fleet`'s ``blast`` from a child process, with the same ``devices`` (their ids and keys)."""

    def __init__(self, port: int, devices: list[Device]) -> None:
        self.devices = devices
        self.process = subprocess.Popen([sys.executable, "-m", "tools.bench.bridge_fleet", str(port)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        raw = [d.key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()).hex() for d in devices]
        self._ask({"devices": raw}, CONNECT_SECONDS * 2)

    def _ask(self, message: dict[str, Any], seconds: float) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()  # the child gives up on its own after its own time bound
        if not line:
            raise RuntimeError(f"the fleet process ended (exit {self.process.wait(seconds)})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def blast(self, batches: Batches) -> tuple[float, float]:
        """Each device's batch published as fast as QoS 1 allows; (first publish, last PUBACK), monotonic."""
        answer = self._ask({"batches": [[payload.hex() for payload in batch] for batch in batches]},
                           STALL_SECONDS * 4)
        return float(answer["start"]), float(answer["acked"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(CONNECT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(CONNECT_SECONDS)


def main(argv: list[str]) -> int:
    port, fleet = int(argv[0]), None
    try:
        for line in sys.stdin:
            message = json.loads(line)
            if "devices" in message:
                keys = [Ed25519PrivateKey.from_private_bytes(bytes.fromhex(raw)) for raw in message["devices"]]
                fleet = Fleet(port, len(keys), keys, client_prefix="bench-far")
                answer: dict[str, Any] = {"ready": True}
            else:
                assert fleet is not None, "devices first"
                start, acked = fleet.blast([[bytes.fromhex(p) for p in batch] for batch in message["batches"]])
                answer = {"start": start, "acked": acked}
            print(json.dumps(answer), flush=True)
    finally:
        if fleet is not None:
            fleet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
