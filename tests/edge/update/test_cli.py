"""`python -m tools.release` makes a key and signs a bundle; `python -m edge_app update` applies, checks, rolls
back and reports, as the unit's update service runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.__main__ import main
from tests.edge.update.conftest import write_source
from tools.release import main as release

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    key, pub = tmp_path / "offline" / "release.key", tmp_path / "release.pub"
    assert release(["keygen", str(key), str(pub)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600 and pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(SystemExit, match="exists"):
        release(["keygen", str(key), str(pub)])
    return key, pub


def bundle(tmp_path: Path, key: Path, version: str, healthy: bool = True) -> Path:
    folder = tmp_path / f"source-{version}"
    while folder.exists():
        folder = folder.with_name(folder.name + "+")
    source = write_source(folder, version, healthy)
    out = folder.with_name(f"invigil-{folder.name}.tar")
    assert release(["build", str(source), "--version", version, "--min-version", "1.0.0", "--key", str(key),
                    "--out", str(out)]) == 0
    return out


def update(root: Path, pub: Path, *args: str) -> list[str]:
    health = f"{sys.executable} -c \"import os, pathlib, sys; " \
             "sys.exit(not (pathlib.Path(os.environ['INVIGIL_RELEASE']) / 'models/manifest.json').is_file())\""
    return ["update", "--root", str(root), "--key", str(pub), "--health", health, *args]


def test_release_then_apply_status_and_rollback(keys: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    key, pub = keys
    root = tmp_path / "state"
    assert main(update(root, pub, "apply", str(bundle(tmp_path, key, "1.0.0")))) == 0
    assert main(update(root, pub, "apply", str(bundle(tmp_path, key, "1.1.0")))) == 0
    assert "installed 1.1.0 (was 1.0.0)" in capsys.readouterr().out
    assert main(update(root, pub, "apply", str(bundle(tmp_path, key, "1.2.0", healthy=False)))) == 1
    assert "refused: health_check_failed" in capsys.readouterr().err
    assert main(update(root, pub, "rollback")) == 0
    assert main(update(root, pub, "status")) == 0
    status = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert status["current"] == "1.0.0" and status["previous"] == "1.1.0" and status["last"]["result"] == "rolled_back"


def test_check_applies_the_waiting_bundle_and_files_refusals(keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    root = tmp_path / "state"
    incoming = root / "updates" / "incoming"
    incoming.mkdir(parents=True)
    assert main(update(root, pub, "check")) == 0  # nothing waiting
    bundle(tmp_path, key, "1.0.0").rename(incoming / "a.tar")
    assert main(update(root, pub, "check")) == 0
    assert (root / "updates" / "done" / "a.tar").is_file() and (root / "releases" / "current").is_symlink()
    bundle(tmp_path, key, "1.0.0").rename(incoming / "b.tar")  # the same version again: a downgrade
    assert main(update(root, pub, "check")) == 1
    reason = json.loads((root / "updates" / "refused" / "b.tar.json").read_text())
    assert reason["reason"] == "downgrade" and not list(incoming.iterdir())


def test_the_command_line_runs_as_the_update_service_runs_it(keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, pub = keys
    root = tmp_path / "state"
    unsigned = tmp_path / "unsigned.tar"
    subprocess.run(["tar", "-cf", str(unsigned), "-C", str(write_source(tmp_path / "plain", "3.0.0")), "app"],
                   check=True)
    env = {"PATH": "/usr/bin:/bin", "INVIGIL_STATE_ROOT": str(root), "INVIGIL_UPDATE_KEY": str(pub),
           "INVIGIL_UPDATE_HEALTH": "true"}
    done = subprocess.run([sys.executable, "-m", "edge_app", "update", "apply", str(unsigned)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "refused: malformed" in done.stderr  # no manifest at all
    done = subprocess.run([sys.executable, "-m", "edge_app", "update", "apply", str(bundle(tmp_path, key, "1.0.0"))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (root / "releases" / "current" / "models" / "detector.int8.tflite").is_file()
