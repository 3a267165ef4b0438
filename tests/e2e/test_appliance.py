"""A unit's life as an appliance, with real processes in a temporary root (issue 11's "Done when"): staff make
an account and a one-time code with the bridge's CLI; the unit's first boot applies its seed file and enrols
with the code (``python -m edge_app seed``, ``enrol``); the unit runs with its enrolment's overrides, pairs with
an exam by the QR code on the PC screen and its alert reaches the bridge; staff revoke it, and the broker
drops its connection and refuses the next one, which the unit reports (its output and its page). Mosquitto
runs with the dynamic-security plugin as ``broker-config --admin`` writes it, and the bridge tells it about the
unit's account at once both ways."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_app.enrol import ENV_FILE, PASSWORD_FILE, read_env, software_version
from tests.bridge.broker_site import NOT_AUTHORIZED, Peer
from tests.firmware.test_units import bin_without_system_tools
from tests.mosquitto import mosquitto_binary, wait_for
from tools.demo.__main__ import jpeg_of
from tools.demo.clients import PcExamClient
from tools.demo.stack import Stack
from tools.fixtures import photo

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
SCENARIO = ROOT / "build" / "scenarios" / "second_person"
EXAM = "exam-appliance"
STAFF_PASSWORD = "a long staff password"
REFUSED = "broker refused the connection"  # edge_app/link/mqtt.py's log, on a CONNACK that is a failure
DROPPED = "connection lost"  # ... and on a connection that ended


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    mosquitto_binary()  # skips with the install command when there is no broker
    if not (SCENARIO / "truth.json").is_file():
        pytest.fail(f"{SCENARIO} is not rendered: run `make scenarios`")
    running = Stack(tmp_path / "root")
    running.prepare_fleet(SCENARIO, realtime=False)
    running.start_broker()
    running.start_bridge()
    yield running
    running.stop()


def until(condition: Callable[[], object], seconds: float, what: str) -> None:
    """``wait_for`` at the pace of an HTTP client (the bridge rate-limits each caller)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {seconds:g} s waiting for {what}"
        time.sleep(0.5)


def call(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method="POST" if body is not None else "GET", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def first_boot(stack: Stack) -> None:
    """The image's first boot in the temporary root: invigil-seed (the boot partition's seed file copied into
    the state folder, its code scrubbed) then invigil-firstboot (the enrolment, then the "enrolled" marker)."""
    state = stack.root / "edge" / "data"
    env = {"PATH": bin_without_system_tools(stack.root), "INVIGIL_SEED": str(stack.root / "boot" / "invigil-seed.toml"),
           "INVIGIL_STATE_ROOT": str(state), "INVIGIL_PYTHON": sys.executable, "INVIGIL_USER": "",
           "INVIGIL_CONFIG": str(stack.edge_config), "PYTHONPATH": str(ROOT)}
    for script in ("invigil-seed.sh", "invigil-firstboot.sh"):
        done = subprocess.run(["/bin/sh", str(FIRMWARE / "scripts" / script)], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"{script}: {done.stdout}{done.stderr}"
    assert done.stdout.strip().endswith("enrolled") and (state / "enrolled").is_file()
    assert "admin secret (shown this once" in done.stdout  # the page's staff login: no default password
    assert (state / "admin_secret.json").stat().st_mode & 0o777 == 0o600


def test_a_unit_enrols_pairs_runs_an_exam_and_once_revoked_is_refused(stack: Stack) -> None:
    staff_password = stack.root / "secrets" / "staff.pw"
    staff_password.write_text(STAFF_PASSWORD + "\n")
    stack.cli("staff", "add", "ana", "--password-file", str(staff_password))
    code = stack.cli("enrol-code", "--label", "desk 4").split()[0]
    client_token = stack.cli("token", "create", "--role", "client", "--label", "exam pc").strip()
    proctor_token = stack.cli("token", "create", "--role", "proctor", "--label", "desk", "--exam", EXAM).strip()

    boot = stack.root / "boot" / "invigil-seed.toml"  # what staff type on the SD card's boot partition
    boot.parent.mkdir(parents=True)
    boot.write_text(f'hostname = "invigil-desk-4"\n[bridge]\nurl = "{stack.url}"\nenrol_code = "{code}"\n')
    first_boot(stack)
    assert code not in boot.read_text() and not (stack.root / "edge" / "data" / "enrol-code").exists()
    env = read_env(stack.root / "edge" / "data" / ENV_FILE)
    device = env["INVIGIL_DEVICE_ID"]
    assert device != "unit-0001" and env["INVIGIL_LINK__BROKER__PORT"] == str(stack.broker_port)

    truth = json.loads((SCENARIO / "truth.json").read_text())
    pc = PcExamClient(stack.url, client_token)
    session = pc.create_session(EXAM, "cand-4", jpeg_of(photo(truth["enrolled"])))
    stack.screen.parent.mkdir(parents=True, exist_ok=True)
    stack.screen.write_bytes(pc.qr_png(session["session_id"]))
    edge = stack.start_edge(env=env)
    output: list[bytes] = []  # the unit's JSON lines, read so that its pipe never fills
    threading.Thread(target=lambda: output.extend(iter(edge.stdout.readline, b"")),  # type: ignore[union-attr]
                     daemon=True).start()
    until(lambda: edge.poll() is not None or pc.session(session["session_id"])["state"] == "paired", 60,
          "pairing by the QR code")
    assert edge.poll() is None, stack.tail("edge.log")
    assert pc.session(session["session_id"])["device_id"] == device
    stack.screen.unlink()

    def alerts() -> list[dict[str, Any]]:
        found = call(f"{stack.url}/api/v1/exams/{EXAM}/alerts", proctor_token)["alerts"]
        return [a for a in found if a["kind"] != "device_offline"]

    until(lambda: alerts() or edge.poll() is not None, 90, "an alert of the scenario at the bridge")
    raised = alerts()
    assert raised, f"the unit ended without an alert reaching the bridge: {stack.tail('edge.log')}"
    assert {(a["device"], a["session"]) for a in raised} == {(device, session["session_id"])}
    assert "extra_person" in {a["kind"] for a in raised}

    staff = call(f"{stack.url}/api/v1/staff/login", body={"username": "ana", "password": STAFF_PASSWORD})["token"]
    [listed] = call(f"{stack.url}/api/v1/fleet", staff)["units"]
    assert (listed["device_id"], listed["software_version"], listed["exam"]["session_id"]) == \
        (device, software_version(), session["session_id"])
    assert listed["model_version"].startswith("int8-")  # a digest of the installed models' manifest
    log = stack.logs / "edge.log"
    seen = log.stat().st_size
    assert edge.poll() is None, "the scenario ended before the revocation: nothing to drop"

    def since() -> str:
        return log.read_bytes()[seen:].decode(errors="replace")

    revoked = call(f"{stack.url}/api/v1/fleet/{device}/revoke", staff, {"reason": "lost at desk 4"})
    assert revoked["disconnected"] is True  # the broker was told at once
    wait_for(lambda: REFUSED in since(), 20, "the unit's next connection refused")
    assert since().index(DROPPED) < since().index(REFUSED), since()
    assert f"{REFUSED}: Not authorized" in since()
    # ... and says why on its own output, its page and its LED (which follow that output), not only in its log
    wait_for(lambda: any(b'"credentials_refused"' in line for line in list(output)), 10, "the unit's local status")
    page_state = stack.root / "edge" / "data" / "page" / "state.json"
    wait_for(lambda: json.loads(page_state.read_text())["status"].get("credentials_refused"), 10, "the page's state")
    assert "re-enrol" in json.loads(page_state.read_text())["status"]["credentials_refused"]["message"]
    unit = Peer(stack.broker_port, device, (stack.root / "edge" / "data" / PASSWORD_FILE).read_text().strip())
    assert unit.connect().value == NOT_AUTHORIZED  # its own account and password, from anywhere: refused
    [listed] = call(f"{stack.url}/api/v1/fleet", staff)["units"]
    assert listed["status"] == "revoked"
    audit = [entry["action"] for entry in call(f"{stack.url}/api/v1/audit", staff)["entries"]]
    assert [action for action in audit if action in ("issue_code", "enrol", "revoke")] == \
        ["issue_code", "enrol", "revoke"], audit
