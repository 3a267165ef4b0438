"""``python -m edge_app page`` as its own process, reading what the unit mirrors; ``python -m edge_app secret``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from edge_app import admin_secret
from edge_app.page.state import PageState
from edge_app.run import page_publisher
from edge_app.vision.models import load_models
from tests.edge.page.conftest import unit_config

ROOT = Path(__file__).resolve().parents[3]
WAIT = 30.0  # upper bound of every wait (a slow machine), never a speed requirement


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "unit.toml"
    path.write_text(f'device_id = "unit-7"\ndata_dir = "data"\n[camera]\ntype = "scenario"\npath = "x"\n'
                    f'[page]\nport = {port}\nstate_dir = "run/page"\n')
    return path


def test_the_page_process_serves_what_the_unit_mirrors_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    unit = PageState(mirror=tmp_path / "run" / "page")  # the running unit's side
    unit.publish_placement({"usable": False, "checks": {"candidate": False}, "guidance": ["sit down"],
                            "boxes": {}, "frame_size": [640, 480], "t": 1.0, "source": "live"})
    unit.publish_frame(b"\xff\xd8 a frame")
    process = subprocess.Popen([sys.executable, "-m", "edge_app", "page", "--config", str(config)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, found = time.monotonic() + WAIT, None
        while found is None and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/placement", timeout=5) as response:
                    found = json.load(response)
            except OSError:
                time.sleep(0.2)
        assert found is not None, process.stderr.read() if process.poll() is not None else "no answer"
        assert found["placement"]["guidance"] == ["sit down"] and found["live"] is True
        unit.publish_placement({"usable": True, "checks": {"candidate": True}, "guidance": [], "boxes": {},
                                "frame_size": [640, 480], "t": 2.0, "source": "live"})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/placement", timeout=5) as response:
            assert json.load(response)["ready"] is True
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/staff", timeout=5) as response:
            assert response.url.endswith("/staff/login?next=/staff")  # staff functions need the secret
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(WAIT)
        process.stderr.close()
        process.stdout.close()
    assert code == 0


def test_the_secret_command_shows_the_secret_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    command = [sys.executable, "-m", "edge_app", "secret", "--config", str(config)]
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
    assert first.returncode == 0
    assert admin_secret.verify(tmp_path / "data", first.stdout.strip())
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
    assert again.returncode == 1 and again.stdout == "" and "shown only once" in again.stderr


def test_the_running_unit_mirrors_for_the_page_unless_disabled(tmp_path: Path, models_dir: Path) -> None:
    models = load_models(models_dir, "int8", threads=1)
    publisher = page_publisher(unit_config(tmp_path), models)
    assert publisher is not None and publisher.state.mirror == tmp_path / "data" / "page"
    assert publisher.state.snapshot()["status"]["versions"]["models"].startswith("int8 on ")
    assert page_publisher(unit_config(tmp_path, enabled=False), models) is None
