"""Release folders, the atomic ``current`` switch, the health check and the rollback.

Under the state root (``/var/lib/invigil`` on the device)::

  releases/<version>/{app,models,manifest.json,manifest.sig}   (the image's first release: manifest.json only)
  releases/current  -> <version>     what the services run (PYTHONPATH and the models folder point through it)
  releases/previous -> <version>     what a rollback returns to
  update-status.json                 the last apply or rollback: result, reason, versions

``releases/`` (links included) belongs to root and is read-only to the unit's service, although the rest of the
state root is the unit's own: the network-facing process can neither change the code it runs nor repoint it.

A switch makes a new relative symlink under a temporary name and renames it over ``current`` (``os.replace``):
a power cut leaves the old link or the new one. After the switch a health check (a callable; on the device a
command that restarts the unit's service and waits for its READY) decides: a failure switches back at once.
Nothing starts while the unit says an exam is running (:mod:`edge_app.exam_flag`). A rollback first checks the
release it returns to against its manifest (:func:`release_difference`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_app import exam_flag
from edge_app.atomic import write_bytes_atomic
from edge_app.update.bundle import (
    MANIFEST,
    UpdateRefused,
    make_manifest,
    open_bundle,
    parse_version,
    release_difference,
)

HealthCheck = Callable[[Path], "str | None"]  # the current release's folder -> None when healthy, else why not
STATUS = "update-status.json"


def command_health(command: list[str], timeout: float = 180.0) -> HealthCheck:
    """A health check that runs ``command`` (with INVIGIL_RELEASE set to the release folder): healthy when it
    exits 0 within ``timeout`` seconds."""

    def check(release: Path) -> str | None:
        try:
            done = subprocess.run(command, env={**os.environ, "INVIGIL_RELEASE": str(release)}, timeout=timeout,
                                  capture_output=True, text=True, check=False)
        except subprocess.TimeoutExpired:
            return f"{command[0]} did not finish within {timeout:g} s"
        except OSError as exc:
            return f"{command[0]} cannot run: {exc}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
            return f"{command[0]} exited {done.returncode}: {tail[0]}"
        return None

    return check


class Releases:
    """The releases under one state root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "releases"

    def _target(self, link: str) -> str | None:
        try:
            return Path(os.readlink(self.dir / link)).name
        except FileNotFoundError:
            return None

    def current(self) -> str | None:
        return self._target("current")

    def previous(self) -> str | None:
        return self._target("previous")

    def installed(self) -> list[str]:
        names = [p.name for p in self.dir.iterdir() if _is_version(p.name) and p.is_dir() and not p.is_symlink()] \
            if self.dir.is_dir() else []
        return sorted(names, key=parse_version)

    def point(self, link: str, version: str | None) -> None:
        """Make ``releases/<link>`` name ``<version>`` (None: remove it) with one atomic rename."""
        final = self.dir / link
        if version is None:
            final.unlink(missing_ok=True)
        else:
            temp = self.dir / f".{link}.{os.getpid()}.tmp"
            temp.unlink(missing_ok=True)
            os.symlink(version, temp)
            os.replace(temp, final)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One apply or rollback at a time; UpdateRefused("busy") when another holds the lock."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".update.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UpdateRefused("busy", "another update or rollback is running") from None
            yield

    def running(self) -> bool:
        """Whether an apply or rollback holds the lock now (the unit shows ``updating``); never blocks."""
        try:
            with open(self.dir / ".update.lock", "rb") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(lock, fcntl.LOCK_UN)
        except OSError:  # no lock file yet: no update has ever run
            return False
        return False

    def refuse_during_exam(self) -> None:
        exam = exam_flag.running(self.root)
        if exam is not None:
            raise UpdateRefused("exam_running", f"session {exam.get('session')} is running: updates wait for "
                                "its end")

    def record(self, **fields: Any) -> dict[str, Any]:
        status = {"at": time.time(), "current": self.current(), "previous": self.previous(), **fields}
        write_bytes_atomic(self.root / STATUS, (json.dumps(status, indent=2) + "\n").encode(), mode=0o644)
        return status

    def status(self) -> dict[str, Any]:
        try:
            last = json.loads((self.root / STATUS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            last = None
        return {"current": self.current(), "previous": self.previous(), "installed": self.installed(),
                "exam_running": exam_flag.running(self.root), "last": last}

    def _switch(self, new: str, old: str | None, health: HealthCheck) -> str | None:
        """Make ``new`` current and ``old`` previous, check health; on failure switch back (``old`` current again,
        the previous link as it was) and return why."""
        kept_previous = self.previous()
        self.point("current", new)
        self.point("previous", old)
        problem = _check(health, self.dir / "current")
        if problem is None or old is None:
            return problem
        self.point("current", old)
        self.point("previous", kept_previous)
        again = _check(health, self.dir / "current")  # the old release's unit started again
        return problem if again is None else f"{problem} (and after the switch back: {again})"

    def _prune(self) -> None:
        keep = {self.current(), self.previous()}
        for name in self.installed():
            if name not in keep:
                shutil.rmtree(self.dir / name, ignore_errors=True)
        for partial in self.dir.glob(".partial-*"):
            shutil.rmtree(partial, ignore_errors=True)

    def apply(self, bundle_path: Path, key: Ed25519PublicKey, health: HealthCheck) -> dict[str, Any]:
        """Install the bundle and switch to it; UpdateRefused with the reason when it is not (recorded too)."""
        try:
            with self.locked():
                return self._apply(bundle_path, key, health)
        except UpdateRefused as exc:
            if exc.reason != "busy":
                self.record(result="refused", reason=exc.reason, detail=exc.detail, bundle=str(bundle_path))
            raise

    def _apply(self, bundle_path: Path, key: Ed25519PublicKey, health: HealthCheck) -> dict[str, Any]:
        self.refuse_during_exam()
        bundle = open_bundle(bundle_path, key)
        version, old = bundle.version, self.current()
        if old is not None and _is_version(old):
            if parse_version(version) <= parse_version(old):
                raise UpdateRefused("downgrade", f"bundle {version} is not newer than the running {old}")
            if parse_version(old) < parse_version(bundle.manifest["min_version"]):
                raise UpdateRefused("too_old", f"bundle {version} upgrades {bundle.manifest['min_version']} or "
                                    f"newer; this unit runs {old}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._prune()
        partial = self.dir / f".partial-{version}-{os.getpid()}"
        try:
            bundle.extract(partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        target = self.dir / version
        if target.exists():  # left by a rollback from this very version: replaced by the verified copy
            shutil.rmtree(target)
        os.replace(partial, target)
        try:
            self.refuse_during_exam()  # an exam may have started while the bundle was unpacked
        except UpdateRefused:
            shutil.rmtree(target, ignore_errors=True)
            raise
        problem = self._switch(version, old, health)
        if problem is not None:
            if old is not None:
                shutil.rmtree(target, ignore_errors=True)
            raise UpdateRefused("health_check_failed", f"{version}: {problem}; " +
                                (f"rolled back to {old}" if old else "no previous release to roll back to"))
        self._prune()
        return self.record(result="installed", version=version, replaced=old)

    def rollback(self, health: HealthCheck) -> dict[str, Any]:
        """Return to the previous release (which becomes previous in turn), checking health as an apply does."""
        try:
            with self.locked():
                self.refuse_during_exam()
                old, back = self.current(), self.previous()
                if back is None or not (self.dir / back / MANIFEST).is_file():
                    raise UpdateRefused("no_previous", "there is no previous release to roll back to")
                difference = release_difference(self.dir / back)
                if difference is not None:
                    raise UpdateRefused("tampered", f"release {back} no longer matches its manifest: {difference}; "
                                        f"{old} kept")
                problem = self._switch(back, old, health)
                if problem is not None:
                    raise UpdateRefused("health_check_failed", f"{back}: {problem}; {old} kept")
                return self.record(result="rolled_back", version=back, replaced=old)
        except UpdateRefused as exc:
            if exc.reason != "busy":
                self.record(result="refused", reason=exc.reason, detail=exc.detail)
            raise


def write_first_manifest(release: Path) -> None:
    """The manifest of the release the image installs (``releases/<version>``, no bundle and so no signature):
    its files as they are, its folder's name as version, so a later rollback to it checks them as any release's.
    Called by firmware/image/install-unit.sh."""
    version = release.name
    write_bytes_atomic(release / MANIFEST, make_manifest(release, version, version), mode=0o644)


def _check(health: HealthCheck, release: Path) -> str | None:
    try:
        return health(release)
    except Exception as exc:  # a broken check is a failed check: the switch is undone
        return f"the health check failed: {exc!r}"


def _is_version(name: str) -> bool:
    try:
        parse_version(name)
    except ValueError:
        return False
    return True
