"""Apply, switch, health check and rollback in a temporary state root; every refusal with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge_app import exam_flag
from edge_app.update.bundle import UpdateRefused
from edge_app.update.releases import Releases, command_health, write_first_manifest
from tests.edge.update.conftest import MakeBundle, rewrite, write_source

# The unit's check, as the device's does it: the release's app imports and its models are there.
CHECK = ("import os, pathlib, edge_app; r = pathlib.Path(os.environ['INVIGIL_RELEASE']); "
         "assert (r / 'models' / 'manifest.json').is_file(), 'models missing'; print(edge_app.VERSION)")


def health_of(calls: list[str]):  # type: ignore[no-untyped-def]
    """A health check that records which release it saw: healthy when its models have their manifest."""

    def check(release: Path) -> str | None:
        calls.append(release.resolve().name)
        return None if (release / "models" / "manifest.json").is_file() else "models did not load"

    return check


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "state"


def installed(root: Path, make_bundle: MakeBundle, public_key: Ed25519PublicKey, *versions: str) -> Releases:
    releases = Releases(root)
    for version in versions:
        releases.apply(make_bundle(version), public_key, health_of([]))
    return releases


def refused(reason: str, call) -> UpdateRefused:  # type: ignore[no-untyped-def]
    with pytest.raises(UpdateRefused) as caught:
        call()
    assert caught.value.reason == reason, caught.value
    return caught.value


def test_apply_switches_current_and_keeps_the_previous(root: Path, make_bundle: MakeBundle,
                                                       public_key: Ed25519PublicKey) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0")
    calls: list[str] = []
    result = releases.apply(make_bundle("1.1.0"), public_key, health_of(calls))
    assert result["result"] == "installed" and result["replaced"] == "1.0.0"
    assert calls == ["1.1.0"]  # checked after the switch, through the current link
    links = root / "releases"
    assert os.readlink(links / "current") == "1.1.0" and os.readlink(links / "previous") == "1.0.0"
    assert (root / "releases" / "current" / "app" / "edge_app" / "__init__.py").read_text() == 'VERSION = "1.1.0"\n'
    assert (root / "releases" / "current" / "manifest.sig").is_file()
    assert releases.installed() == ["1.0.0", "1.1.0"]
    releases.apply(make_bundle("1.2.0"), public_key, health_of([]))
    assert releases.installed() == ["1.1.0", "1.2.0"]  # the one before the previous is pruned
    assert json.loads((root / "update-status.json").read_text())["version"] == "1.2.0"
    assert not list((root / "releases").glob(".current*")) and not list((root / "releases").glob(".partial-*"))


def test_a_failed_health_check_rolls_back(root: Path, make_bundle: MakeBundle, public_key: Ed25519PublicKey) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0", "1.1.0")
    calls: list[str] = []
    error = refused("health_check_failed",
                    lambda: releases.apply(make_bundle("1.2.0", healthy=False), public_key, health_of(calls)))
    assert "models did not load" in error.detail and "rolled back to 1.1.0" in error.detail
    assert calls == ["1.2.0", "1.1.0"]  # the new release failed; the old one was started again
    assert releases.current() == "1.1.0" and releases.previous() == "1.0.0"
    assert not (root / "releases" / "1.2.0").exists()
    status = releases.status()
    assert status["last"]["result"] == "refused" and status["last"]["reason"] == "health_check_failed"


def test_a_health_command_decides_and_a_raising_check_counts_as_failed(
        root: Path, make_bundle: MakeBundle, public_key: Ed25519PublicKey) -> None:
    releases = Releases(root)
    command = [sys.executable, "-c", f"import sys; sys.path.insert(0, __import__('os').environ['INVIGIL_RELEASE'] "
               f"+ '/app'); exec({CHECK!r})"]
    releases.apply(make_bundle("1.0.0"), public_key, command_health(command))
    error = refused("health_check_failed",
                    lambda: releases.apply(make_bundle("1.1.0", healthy=False), public_key, command_health(command)))
    assert "models missing" in error.detail and releases.current() == "1.0.0"

    def broken(_release: Path) -> str | None:
        raise RuntimeError("no bridge")

    error = refused("health_check_failed", lambda: releases.apply(make_bundle("1.1.0"), public_key, broken))
    assert "no bridge" in error.detail and releases.current() == "1.0.0"


def test_rollback_returns_to_the_previous_release(root: Path, make_bundle: MakeBundle,
                                                  public_key: Ed25519PublicKey) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0", "1.1.0")
    result = releases.rollback(health_of([]))
    assert result["version"] == "1.0.0" and releases.current() == "1.0.0" and releases.previous() == "1.1.0"
    releases.point("previous", None)
    refused("no_previous", lambda: releases.rollback(health_of([])))


@pytest.mark.parametrize("damage", ["changed", "added", "removed"])
def test_a_rollback_to_a_release_whose_files_changed_on_disk_is_refused(
        root: Path, make_bundle: MakeBundle, public_key: Ed25519PublicKey, damage: str) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0", "1.1.0")
    old = root / "releases" / "1.0.0"
    cache = old / "app" / "edge_app" / "__pycache__"
    cache.mkdir()
    (cache / "__init__.cpython-311.pyc").write_bytes(b"derived")  # a cache is not the release's content
    target = old / "models" / "detector.int8.tflite"
    if damage == "changed":
        target.write_bytes(target.read_bytes()[:-1] + b"x")  # one byte rotted: same size
    elif damage == "added":
        (old / "app" / "edge_app" / "extra.py").write_text("print('not released')\n")
    else:
        target.unlink()
    error = refused("tampered", lambda: releases.rollback(health_of([])))
    assert "1.1.0 kept" in error.detail and ("detector.int8.tflite" in error.detail or "extra.py" in error.detail)
    assert releases.current() == "1.1.0" and releases.previous() == "1.0.0"
    assert releases.status()["last"]["reason"] == "tampered"


def test_the_images_first_release_can_be_rolled_back_to_once_it_has_its_manifest(
        root: Path, make_bundle: MakeBundle, public_key: Ed25519PublicKey) -> None:
    releases = Releases(root)
    first = write_source(root / "releases" / "0.1.0", "0.1.0")  # as firmware/image/install-unit.sh lays it out
    releases.point("current", "0.1.0")
    releases.apply(make_bundle("0.2.0"), public_key, health_of([]))
    refused("no_previous", lambda: releases.rollback(health_of([])))  # no manifest: nothing to check it by
    write_first_manifest(first)
    assert json.loads((first / "manifest.json").read_text())["version"] == "0.1.0"
    assert not (first / "manifest.sig").exists()
    calls: list[str] = []
    result = releases.rollback(health_of(calls))
    assert result["version"] == "0.1.0" and calls == ["0.1.0"] and releases.previous() == "0.2.0"


def test_tampered_files_are_refused_and_nothing_changes(root: Path, make_bundle: MakeBundle,
                                                        public_key: Ed25519PublicKey, tmp_path: Path) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0")
    good = make_bundle("1.1.0")
    changed = rewrite(good, tmp_path / "changed.tar", {"app/edge_app/__init__.py": b"import os; os.system('x')\n"})
    extra = rewrite(good, tmp_path / "extra.tar", {"app/edge_app/backdoor.py": b"print('hi')\n"})
    dropped = rewrite(good, tmp_path / "dropped.tar", {"models/detector.int8.tflite": None})
    for bundle in (changed, extra, dropped):
        error = refused("tampered", lambda bundle=bundle: releases.apply(bundle, public_key, health_of([])))
        assert releases.current() == "1.0.0" and releases.installed() == ["1.0.0"], error
    assert not list((root / "releases").glob(".partial-*"))


def test_unsigned_and_badly_signed_bundles_are_refused(root: Path, make_bundle: MakeBundle,
                                                       public_key: Ed25519PublicKey, tmp_path: Path) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0")
    good = make_bundle("1.1.0")
    refused("unsigned", lambda: releases.apply(rewrite(good, tmp_path / "u.tar", {"manifest.sig": None}),
                                               public_key, health_of([])))
    other = make_bundle("1.2.0", key=Ed25519PrivateKey.generate())
    refused("bad_signature", lambda: releases.apply(other, public_key, health_of([])))
    with_version = rewrite(good, tmp_path / "v.tar", {"manifest.json": json.dumps({"version": "9.0.0"}).encode()})
    refused("bad_signature", lambda: releases.apply(with_version, public_key, health_of([])))
    escape = rewrite(good, tmp_path / "e.tar", {"../outside.py": b"x"})
    refused("malformed", lambda: releases.apply(escape, public_key, health_of([])))
    link = tmp_path / "link.tar"
    with tarfile.open(good) as source, tarfile.open(link, "w") as target:
        for member in source:
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        pointer = tarfile.TarInfo("app/edge_app/passwd")
        pointer.type, pointer.linkname = tarfile.SYMTYPE, "/etc/passwd"
        target.addfile(pointer)
    refused("malformed", lambda: releases.apply(link, public_key, health_of([])))
    (tmp_path / "junk.tar").write_bytes(b"not a tar")
    refused("malformed", lambda: releases.apply(tmp_path / "junk.tar", public_key, health_of([])))
    assert releases.current() == "1.0.0" and not (tmp_path / "outside.py").exists()
    assert releases.status()["last"]["reason"] == "malformed"


def test_downgrades_and_too_old_units_are_refused(root: Path, make_bundle: MakeBundle,
                                                  public_key: Ed25519PublicKey) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0", "1.1.0")
    assert "not newer" in refused("downgrade", lambda: releases.apply(make_bundle("1.0.0"), public_key,
                                                                       health_of([]))).detail
    refused("downgrade", lambda: releases.apply(make_bundle("1.1.0"), public_key, health_of([])))
    refused("too_old", lambda: releases.apply(make_bundle("2.0.0", min_version="1.2.0"), public_key, health_of([])))
    assert releases.current() == "1.1.0"


def test_no_update_while_an_exam_runs(root: Path, make_bundle: MakeBundle, public_key: Ed25519PublicKey) -> None:
    releases = installed(root, make_bundle, public_key, "1.0.0", "1.1.0")
    assert exam_flag.mark(root, "session-42")
    error = refused("exam_running", lambda: releases.apply(make_bundle("1.2.0"), public_key, health_of([])))
    assert "session-42" in error.detail
    refused("exam_running", lambda: releases.rollback(health_of([])))
    assert releases.current() == "1.1.0"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    exam_flag.mark(root, "session-42", pid=int(ended.stdout))  # left by a unit that has ended (a crash)
    assert exam_flag.running(root) is None
    releases.apply(make_bundle("1.2.0"), public_key, health_of([]))
    exam_flag.clear(root)
    assert releases.current() == "1.2.0" and exam_flag.running(root) is None


def test_a_second_apply_at_the_same_time_is_busy(root: Path, make_bundle: MakeBundle,
                                                 public_key: Ed25519PublicKey) -> None:
    releases = Releases(root)
    bundle = make_bundle("1.0.0")
    with releases.locked():
        refused("busy", lambda: Releases(root).apply(bundle, public_key, health_of([])))
    assert releases.current() is None


def test_an_update_holding_its_lock_shows_as_running_to_the_unit(tmp_path: Path) -> None:
    releases = Releases(tmp_path)
    assert not releases.running()  # no update has ever run
    with releases.locked():
        assert Releases(tmp_path).running()  # what the unit's indicators ask, from another open file
        with pytest.raises(UpdateRefused, match="another update"), Releases(tmp_path).locked():
            pass
    assert not releases.running()
