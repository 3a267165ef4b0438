"""A real release: this checkout's app and the built int8 models, staged, signed, installed in a temporary root,
and health-checked as the unit would be: the release's own app loads the release's models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge_app.update.bundle import UpdateRefused, load_public_key
from edge_app.update.releases import Releases, command_health
from tools.release import main as release

# The release's app (not this checkout's) loads the release's models, in a fresh interpreter.
LOADS = ("import os, sys; r = os.environ['INVIGIL_RELEASE']; sys.path.insert(0, r + '/app'); "
         "import edge_app, pathlib; assert edge_app.__file__.startswith(r), edge_app.__file__; "
         "from edge_app.vision.models import load_models; load_models(pathlib.Path(r) / 'models', 'int8', 1)")


def test_a_staged_release_installs_and_its_models_load(models_dir: Path, tmp_path: Path) -> None:
    key, pub = tmp_path / "release.key", tmp_path / "release.pub"
    assert release(["keygen", str(key), str(pub)]) == 0
    source = tmp_path / "source"
    assert release(["stage", str(source), "--models", str(models_dir)]) == 0
    assert (source / "app" / "edge_app" / "__main__.py").is_file() and not list(source.rglob("__pycache__"))
    assert sorted(p.name for p in (source / "models").iterdir() if "float" in p.name) == []
    with pytest.raises(SystemExit, match="already"):
        release(["stage", str(source), "--models", str(models_dir)])
    out = tmp_path / "invigil-1.0.0.tar"
    assert release(["build", str(source), "--version", "1.0.0", "--min-version", "0.1.0", "--key", str(key),
                    "--out", str(out)]) == 0
    releases = Releases(tmp_path / "state")
    health = command_health([sys.executable, "-c", LOADS], timeout=300)
    releases.apply(out, load_public_key(pub), health)
    assert releases.current() == "1.0.0"
    # The same tree with a model that does not load: the check fails and the unit stays on 1.0.0.
    (source / "models" / "pose.int8.tflite").write_bytes(b"not a model")
    broken = tmp_path / "invigil-1.1.0.tar"
    assert release(["build", str(source), "--version", "1.1.0", "--min-version", "1.0.0", "--key", str(key),
                    "--out", str(broken)]) == 0
    with pytest.raises(UpdateRefused, match="health_check_failed"):
        releases.apply(broken, load_public_key(pub), health)
    assert releases.current() == "1.0.0"


def test_build_refuses_a_bad_version(tmp_path: Path) -> None:
    key, pub = tmp_path / "release.key", tmp_path / "release.pub"
    release(["keygen", str(key), str(pub)])
    (tmp_path / "src" / "app").mkdir(parents=True)
    (tmp_path / "src" / "app" / "x.py").write_text("")
    assert release(["build", str(tmp_path / "src"), "--version", "1.0", "--min-version", "0.1.0", "--key", str(key),
                    "--out", str(tmp_path / "b.tar")]) == 2
    with pytest.raises(SystemExit, match="not found"):
        release(["build", str(tmp_path / "src"), "--version", "1.0.0", "--min-version", "0.1.0",
                 "--key", str(tmp_path / "none.key"), "--out", str(tmp_path / "b.tar")])
