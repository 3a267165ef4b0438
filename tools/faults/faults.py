"""The faults, each run against a fresh deployed stack while a paired unit writes events at a steady rate.

:func:`run_fault` sets up the stack (tools/faults/stack.py), pairs the unit with a session made through the
HTTP API, lets the fault act at points of the unit's progress, waits (bounded) until every accepted event is
stored, delivered to the proctor and receipted, and counts (tools/faults/observe.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.faults.observe import ProctorLog, Tally, accepted, unsent
from tools.faults.report import Row
from tools.faults.rogue import Rogue
from tools.faults.stack import FaultStack, UnitProcess

DEVICE, ROGUE, EXAM, CANDIDATE = "unit-1", "rogue-1", "exam-faults", "cand-1"
CUT_SECONDS = 12.0  # a network cut longer than 1.5 keepalives (5 s): both ends give the connection up
CONVERGE_SECONDS = 180.0  # the longest wait for every event to be stored, delivered and receipted
SETTLE_SECONDS = 1.0  # then a last look for late copies
TMPFS_BYTES = 16 << 20
UNIT_OPTIONS = ("skew", "full_flag")  # what a fault's set-up may give FaultStack.start_unit


@dataclass
class Run:
    stack: FaultStack
    unit: UnitProcess
    events: int
    rate: float
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expected_gaps: tuple[tuple[str, int], ...] = ()
    state: dict[str, Any] = field(default_factory=dict)  # what a fault's set-up leaves for its drive

    def at(self, share: float) -> None:
        """Wait until the unit has written ``share`` of its events."""
        self.unit.wait_written(int(self.events * share))


@dataclass(frozen=True)
class Fault:
    drive: Callable[[Run], None]
    setup: Callable[[FaultStack, int], dict[str, Any]] | None = None  # before the unit starts (events): state,
    # with the unit's start options among it (UNIT_OPTIONS)
    cleanup: Callable[[FaultStack], None] | None = None  # after the stack stopped
    devices: tuple[str, ...] = (DEVICE,)


def broker_restart(run: Run) -> None:
    run.at(1 / 3)
    assert run.stack.broker is not None
    run.stack.broker.restart()
    run.notes.append("Mosquitto stopped (SIGTERM, persistence saved) and started at a third of the events")


def broker_kill(run: Run) -> None:
    assert run.stack.broker is not None
    for share in (1 / 4, 2 / 3):
        run.at(share)
        run.stack.broker.kill()
        time.sleep(0.5)
        run.stack.broker.start()
    run.notes.append("Mosquitto SIGKILLed at a quarter and two thirds of the events, started again 0.5 s later "
                     "(it saves its state every 10 s)")


def network_cut(side: str) -> Callable[[Run], None]:
    def drive(run: Run) -> None:
        proxy = run.stack.unit_proxies[DEVICE] if side == "unit" else run.stack.bridge_proxy
        run.at(1 / 3)
        proxy.cut()
        time.sleep(CUT_SECONDS)
        proxy.restore()
        run.notes.append(f"the {side}'s network to the broker silent for {CUT_SECONDS:g} s from a third of the "
                         f"events (keepalive 5 s: both ends gave the connection up); {proxy.accepted} connections "
                         "through the proxy")
    return drive


def bridge_kill(run: Run) -> None:
    for share in (1 / 4, 2 / 3):
        run.at(share)
        run.stack.kill_bridge()
        time.sleep(1.0)
        run.stack.start_bridge()
    run.notes.append("`cloud_bridge serve` SIGKILLed at a quarter and two thirds of the events, started again "
                     "1 s later")


def unit_kill(run: Run) -> None:
    proxy = run.stack.unit_proxies[DEVICE]
    proxy.cut()
    run.at(1 / 2)
    run.unit.kill()
    written = run.unit.progress
    held = accepted(run.stack.outbox_path(DEVICE))[1]
    run.unit = run.stack.start_unit(DEVICE, run.events - written, run.rate)
    run.unit.wait_written(max(1, (run.events - written) // 4))
    proxy.restore()
    run.events -= written
    run.notes.append(f"the unit's network cut after pairing; the unit SIGKILLed with {held} events in its outbox "
                     f"({written} written), started again, its network restored a quarter into its second run")


def mount_tmpfs(stack: FaultStack, _events: int) -> dict[str, Any]:
    data = stack.unit_dir(DEVICE) / "data"
    key = (data / "device.key").read_bytes()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0700", "tmpfs", str(data)],
                          capture_output=True, text=True) if os.geteuid() == 0 else None
    if done is not None and done.returncode == 0:
        (data / "device.key").write_bytes(key)
        (data / "device.key").chmod(0o600)
        return {"tmpfs": data}
    return {"full_flag": stack.root / "disk-full"}


def unmount_tmpfs(stack: FaultStack) -> None:
    data = stack.unit_dir(DEVICE) / "data"
    if os.path.ismount(data):
        subprocess.run(["umount", str(data)], capture_output=True, check=False)


def fill(folder: Path) -> int:
    """Fill the filesystem of ``folder`` to the last byte; the bytes written."""
    written, chunk = 0, bytes(65536)
    with (folder / "filler").open("wb", buffering=0) as out:
        for size in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    written += out.write(chunk[:size])
    return written


def disk_full(run: Run) -> None:
    tmpfs: Path | None = run.state.get("tmpfs")
    full: Path = tmpfs / "filler" if tmpfs is not None else run.state["full_flag"]
    proxy = run.stack.unit_proxies[DEVICE]
    run.at(1 / 3)
    if tmpfs is not None:
        how = f"its data folder a {TMPFS_BYTES >> 20} MiB tmpfs filled to the last byte ({fill(tmpfs) >> 10} KiB)"
    else:  # receipts would free room in the capped file as fast as events take it: the unit is offline too
        proxy.cut()
        full.touch()
        how = "no tmpfs without root: its outbox file compacted and capped at its size, its network cut meanwhile"
    run.at(2 / 3)
    full.unlink()  # space is back
    if proxy.is_cut:
        proxy.restore()
    run.unit.wait_written(run.events)
    run.expected_gaps = (("disk_full", run.unit.refused),)
    run.notes.append(f"the unit's disk full from a third to two thirds of the events ({how}): "
                     f"{run.unit.refused} alerts refused, reported as a gap once space was back")
    if run.unit.refused == 0:
        run.problems.append("the full disk refused nothing: the fault was not exercised")


def clock_skew(events: int) -> list[tuple[int, float]]:
    return [(0, -2 * 86400.0), (events // 3, 0.0), (2 * events // 3, 3600.0)]


def skewed(run: Run) -> None:
    run.unit.wait_written(run.events)
    run.notes.append("the unit's wall clock 2 days behind (a Pi without a real-time clock), stepped to the true "
                     "time at a third of the events, then an hour ahead at two thirds")


def rogue(run: Run) -> None:
    stack = run.stack
    thief = Rogue(stack.broker_port, ROGUE, stack.passwords[ROGUE], DEVICE, f"{stack.client_prefix}-0")
    try:
        run.at(1 / 4)
        thief.subscribe_all()
        run.at(1 / 2)
        thief.steal_ids()
        run.unit.wait_written(run.events)
        time.sleep(1.0)
        received = thief.received
    finally:
        thief.close()
    log = stack.logs / "mosquitto.log"
    takeovers = sum("already connected, closing old connection" in line
                    for line in log.read_text(errors="replace").splitlines())
    run.notes.append("rogue unit " + ", ".join(f"{what}: {code}" for what, code in thief.outcomes.items())
                     + f" (MQTT reason codes; 135 is not authorized); it received {received} messages; "
                     f"{takeovers} client-id takeovers in the broker's log")
    if thief.granted():
        run.problems.append(f"the broker let the rogue {', '.join(thief.granted())}")
    if received or takeovers:
        run.problems.append(f"the rogue received {received} messages and took over {takeovers} connections")


FAULTS: dict[str, Fault] = {
    "broker restart": Fault(broker_restart),
    "broker SIGKILL x2": Fault(broker_kill),
    "network cut, unit": Fault(network_cut("unit")),
    "network cut, bridge": Fault(network_cut("bridge")),
    "bridge SIGKILL x2 during ingest": Fault(bridge_kill),
    "unit SIGKILL, full outbox": Fault(unit_kill),
    "unit disk full": Fault(disk_full, setup=mount_tmpfs, cleanup=unmount_tmpfs),
    "unit clock skewed": Fault(skewed, setup=lambda _stack, events: {"skew": clock_skew(events)}),
    "rogue unit": Fault(rogue, devices=(DEVICE, ROGUE)),
}


def converge(run: Run, proctor: ProctorLog) -> Tally:
    """Count once every accepted event is stored, delivered and receipted and the bridge has nothing left to
    publish (or after CONVERGE_SECONDS); then once more after SETTLE_SECONDS for late copies."""
    stack, deadline = run.stack, time.monotonic() + CONVERGE_SECONDS

    def tally() -> Tally:
        return Tally.count(stack.outbox_path(DEVICE), stack.db, DEVICE, proctor.snapshot())

    while time.monotonic() < deadline and not (tally().complete and unsent(stack.db) == 0):
        time.sleep(0.2)
    time.sleep(SETTLE_SECONDS)
    return tally()


def run_fault(name: str, root: Path, events: int = 400, rate: float = 40.0,
              link: dict[str, float] | None = None) -> Row:
    """Run one fault of FAULTS on a fresh stack under ``root``; its table row. ``link``: the unit's
    ``[link.broker]`` settings that differ from the suite's (tools/faults/stack.py UNIT_LINK)."""
    fault = FAULTS[name]
    stack = FaultStack(root / name.replace(" ", "-").replace(",", ""), link=link)
    proctor: ProctorLog | None = None
    try:
        stack.prepare(list(fault.devices))
        stack.start_broker()
        stack.start_bridge()
        proctor = ProctorLog(stack.broker_port, stack.passwords["proctor"], EXAM)
        if not proctor.subscribed.wait(10):
            raise RuntimeError("the proctor could not subscribe to the alerts topic")
        state = fault.setup(stack, events) if fault.setup is not None else {}
        options = {k: v for k, v in state.items() if k in UNIT_OPTIONS}
        unit = stack.start_unit(DEVICE, events, rate, stack.create_session(EXAM, CANDIDATE), **options)
        unit.wait_paired()
        run = Run(stack, unit, events, rate, state=state)
        fault.drive(run)
        run.unit.wait_written(run.events, 120.0)
        tally = converge(run, proctor)
        if proctor.doubles():
            run.problems.append(f"{proctor.doubles()} events became two different proctor alerts")
        if proctor.other:
            run.notes.append(f"{proctor.other} device_offline messages from the bridge on the alerts topic")
        return Row(name, tally, run.expected_gaps, run.problems, run.notes)
    finally:
        if proctor is not None:
            proctor.close()
        stack.stop()
        if fault.cleanup is not None:
            fault.cleanup(stack)
