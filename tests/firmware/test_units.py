"""The invigil-* systemd units: `systemd-analyze verify` in a scratch root, every directive known and commented,
the hardening the issue asks for; shellcheck on the firmware's scripts; the first-boot scripts run for real."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_app import admin_secret
from tests.need import need

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
UNITS = sorted((FIRMWARE / "systemd").glob("invigil-*.service")) + sorted((FIRMWARE / "systemd").glob("*.timer"))
DROP_INS = sorted((FIRMWARE / "systemd").glob("*.d/*.conf"))
SCRIPTS = sorted(FIRMWARE.rglob("*.sh"))
ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
INSTALL_SHELLCHECK = "apt-get install shellcheck (Debian package shellcheck)"
# Directives the units may use, by section (systemd.directives(7)); the fallback check where the analyzer is missing.
KNOWN = {
    "Unit": {"Description", "Documentation", "Wants", "After", "Before", "StartLimitIntervalSec", "StartLimitBurst",
             "ConditionPathExists", "ConditionPathExistsGlob", "RequiresMountsFor"},
    "Service": {"Type", "NotifyAccess", "ExecStart", "WatchdogSec", "TimeoutStartSec", "TimeoutStopSec", "Restart",
                "RestartSec", "User", "Group", "SupplementaryGroups", "Environment", "EnvironmentFile",
                "WorkingDirectory", "RuntimeDirectory", "RuntimeDirectoryPreserve", "RuntimeDirectoryMode", "UMask",
                "ProtectSystem", "ReadWritePaths", "ReadOnlyPaths", "PrivateTmp", "ProtectHome", "NoNewPrivileges",
                "CapabilityBoundingSet", "AmbientCapabilities", "DevicePolicy", "DeviceAllow", "ProtectKernelTunables",
                "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
                "ProtectHostname", "ProtectProc", "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime",
                "RestrictSUIDSGID", "LockPersonality", "SystemCallArchitectures", "SystemCallFilter",
                "SystemCallErrorNumber", "PrivateDevices", "PrivateNetwork", "IPAddressAllow", "IPAddressDeny",
                "RemainAfterExit", "Nice", "IOSchedulingClass"},
    "Timer": {"OnBootSec", "OnUnitActiveSec", "RandomizedDelaySec", "Unit"},
    "Install": {"WantedBy"},
    "Journal": {"Storage", "SystemMaxUse", "SystemKeepFree", "SystemMaxFileSize", "MaxRetentionSec",
                "SyncIntervalSec", "RateLimitIntervalSec", "RateLimitBurst"},
}


def directives(path: Path) -> list[tuple[str, str, str, str]]:
    """(section, key, value, the line before) for every directive of a unit-style file."""
    found, section, before = [], "", ""
    for line in path.read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and key == key.strip(), f"{path.name}: not a Key=Value line: {line!r}"
            found.append((section, key, value, before))
        before = line
    return found


def values(path: Path, key: str) -> list[str]:
    return [value for _section, name, value, _before in directives(path) if name == key]


@pytest.mark.parametrize("path", [*UNITS, *DROP_INS, FIRMWARE / "systemd" / "journald.conf.d" / "invigil.conf"],
                         ids=lambda p: p.name if p.parent.name == "systemd" else f"{p.parent.name}/{p.name}")
def test_every_directive_is_known_and_commented(path: Path) -> None:
    found = directives(path)
    assert found, path
    for section, key, _value, before in found:
        assert key in KNOWN.get(section, set()), f"{path.name}: [{section}] {key} is not a directive we know"
        assert before.startswith("# "), f"{path.name}: {key}= has no comment line right above it"


def test_the_unit_app_is_a_hardened_notify_service_with_a_watchdog() -> None:
    unit = FIRMWARE / "systemd" / "invigil-unit.service"
    single = {key: value for _s, key, value, _b in directives(unit)}
    assert single["Type"] == "notify" and int(single["WatchdogSec"]) > 0 and single["Restart"] == "on-failure"
    assert single["ProtectSystem"] == "strict" and single["ReadWritePaths"] == "/var/lib/invigil"
    assert single["User"] == "invigil" and single["SystemCallFilter"] == "@system-service"
    for key in ("PrivateTmp", "NoNewPrivileges", "ProtectHome", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectKernelLogs", "ProtectControlGroups"):
        assert single[key] == "yes", key
    assert set(single["RestrictAddressFamilies"].split()) <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert {v.split()[0] for v in values(unit, "DeviceAllow")} >= {"char-video4linux", "char-alsa", "char-gpiochip"}
    assert "time-sync.target" in single["After"] and "systemd-time-wait-sync.service" in single["Wants"]
    assert "releases/current" in " ".join(values(unit, "Environment"))


def test_units_share_one_prefix_and_the_environment_one_prefix() -> None:
    for unit in UNITS:
        assert unit.name.startswith("invigil-"), unit
        for assignment in " ".join(values(unit, "Environment")).split():
            name = assignment.split("=", 1)[0]
            assert name.startswith(("INVIGIL_", "PYTHON")), f"{unit.name}: {name}"


def test_first_boot_and_update_conditions() -> None:
    systemd = FIRMWARE / "systemd"
    assert values(systemd / "invigil-firstboot.service", "ConditionPathExists") == ["!/var/lib/invigil/enrolled"]
    after = values(systemd / "invigil-firstboot.service", "After")[0].split()
    assert {"network-online.target", "time-sync.target", "invigil-seed.service"} <= set(after)
    assert "NetworkManager.service" in values(systemd / "invigil-seed.service", "Before")[0]
    assert values(systemd / "invigil-update.timer", "Unit") == ["invigil-update.service"]
    page = {key: value for _s, key, value, _b in directives(systemd / "invigil-page.service")}
    assert page["IPAddressDeny"] == "any" and "192.168.0.0/16" in page["IPAddressAllow"] and page["User"] != "root"
    journal = configparser.ConfigParser()
    journal.optionxform = str  # type: ignore[assignment,method-assign]
    journal.read(systemd / "journald.conf.d" / "invigil.conf")
    assert journal["Journal"]["SystemMaxUse"].endswith("M")


def scratch_root(tmp_path: Path) -> Path:
    """A root with this machine's system units, stubs at the units' executables, and ours installed."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    stubbed = list(UNITS)
    for unit in UNITS:
        shutil.copy(unit, units)
    for drop_in in DROP_INS:
        if drop_in.parent.name.endswith(".service.d"):
            (units / drop_in.parent.name).mkdir(exist_ok=True)
            shutil.copy(drop_in, units / drop_in.parent.name)
            stubbed.append(SYSTEM_UNITS / drop_in.parent.name.removesuffix(".d"))
    for unit in stubbed:  # the analyzer checks that every command exists in the root
        for command in values(unit, "ExecStart"):
            stub = root / command.split()[0].lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    return root


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    need(ANALYZE is not None and SYSTEM_UNITS.is_dir(),
         "systemd-analyze is not installed (Debian package systemd): the units are only parsed")
    root = scratch_root(tmp_path)
    names = [unit.name for unit in UNITS] + [d.parent.name.removesuffix(".d") for d in DROP_INS
                                            if d.parent.name.endswith(".service.d")]
    done = subprocess.run([str(ANALYZE), f"--root={root}", "verify", *names], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


def test_systemd_analyze_catches_a_broken_unit(tmp_path: Path) -> None:
    """The verify above would fail on a mistake: an unknown key and a bad value are reported."""
    need(ANALYZE is not None and SYSTEM_UNITS.is_dir(), "systemd-analyze is not installed (Debian package systemd)")
    root = scratch_root(tmp_path)
    unit = root / "etc" / "systemd" / "system" / "invigil-unit.service"
    unit.write_text(unit.read_text().replace("WatchdogSec=30", "WatchdogSec=thirty\nWatchdogSecs=30"))
    done = subprocess.run([str(ANALYZE), f"--root={root}", "verify", unit.name], capture_output=True, text=True,
                          timeout=120)
    assert "thirty" in done.stderr and "WatchdogSecs" in done.stderr


def test_shellcheck_on_the_firmware_scripts() -> None:
    need(shutil.which("shellcheck") is not None, f"shellcheck is not installed: {INSTALL_SHELLCHECK}")
    assert SCRIPTS
    done = subprocess.run(["shellcheck", "--external-sources", *map(str, SCRIPTS)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def bin_without_system_tools(tmp_path: Path) -> str:
    """A PATH with the tools the scripts need but no hostnamectl, iw or systemctl (the machine running the tests
    keeps its hostname)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("mkdir", "chmod", "chown", "cat", "date", "mv"):
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    return str(folder)


def test_the_seed_script_applies_the_seed(tmp_path: Path) -> None:
    seed, state = tmp_path / "invigil-seed.toml", tmp_path / "state"
    shutil.copy(FIRMWARE / "seed" / "invigil-seed.toml.example", seed)
    env = {"PATH": bin_without_system_tools(tmp_path), "PYTHONPATH": str(ROOT), "INVIGIL_SEED": str(seed),
           "INVIGIL_STATE_ROOT": str(state), "INVIGIL_PYTHON": sys.executable, "INVIGIL_USER": ""}
    done = subprocess.run(["/bin/sh", str(FIRMWARE / "scripts" / "invigil-seed.sh")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (state / "enrol-code").is_file() and (state / "network").stat().st_mode & 0o777 == 0o700
    assert "correct horse" not in seed.read_text()
    seed.write_text(seed.read_text().replace('hostname = "invigil-room12-01"', 'hostname = "Bad Name"'))
    done = subprocess.run(["/bin/sh", str(FIRMWARE / "scripts" / "invigil-seed.sh")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and re.search(r"hostname: String should match", done.stderr), done.stderr


def test_first_boot_without_a_code_waits_for_one(tmp_path: Path) -> None:
    env = {"PATH": bin_without_system_tools(tmp_path), "INVIGIL_STATE_ROOT": str(tmp_path),
           "INVIGIL_PYTHON": sys.executable}
    done = subprocess.run(["/bin/sh", str(FIRMWARE / "scripts" / "invigil-firstboot.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "no enrolment code" in done.stdout
    assert not (tmp_path / "enrolled").exists()  # so it runs again at the next boot


def test_first_boot_makes_the_admin_secret_and_shows_it_once(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(f'device_id = "unit-0001"\ndata_dir = "{tmp_path}"\n[camera]\ntype = "opencv"\nuri = 0\n')
    env = {"PATH": bin_without_system_tools(tmp_path), "INVIGIL_STATE_ROOT": str(tmp_path),
           "INVIGIL_PYTHON": sys.executable, "INVIGIL_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run(["/bin/sh", str(FIRMWARE / "scripts" / "invigil-firstboot.sh")], env=env,
                           capture_output=True, text=True, timeout=60) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0]
    shown = re.search(r"admin secret \(shown this once; write it on the unit's label\): (\S+)", runs[0].stdout)
    assert shown is not None and "admin secret" not in runs[1].stdout  # never again
    assert admin_secret.verify(tmp_path, shown.group(1)) and not admin_secret.verify(tmp_path, "A" * 23)


@pytest.mark.parametrize(("enrolled", "link", "healthy"), [
    (False, None, True),  # a standalone unit: nothing to reconnect to
    (True, "after", True),  # reached its broker again since the restart
    (True, "before", False),  # the last connection was the old release's
    (True, None, False),  # never connected
])
def test_the_health_check_wants_an_enrolled_unit_reconnected(tmp_path: Path, enrolled: bool, link: str | None,
                                                             healthy: bool) -> None:
    tools = Path(bin_without_system_tools(tmp_path))
    (tools / "sleep").symlink_to(shutil.which("sleep") or "/bin/sleep")
    systemctl = tools / "systemctl"  # the restart and the checks succeed: what is left is the reconnection
    systemctl.write_text("#!/bin/sh\nexit 0\n")
    systemctl.chmod(0o755)
    release, state = tmp_path / "release", tmp_path / "state"
    release.mkdir()
    (release / "app").symlink_to(ROOT)
    state.mkdir()
    if enrolled:
        (state / "enrolment.env").write_text("INVIGIL_DEVICE_ID=unit-1\n")
    if link is not None:
        at = time.time() + (60 if link == "after" else -600)
        (state / "link.json").write_text(json.dumps({"connected_at": at}))
    env = {"PATH": str(tools), "INVIGIL_RELEASE": str(release), "INVIGIL_STATE_ROOT": str(state),
           "INVIGIL_PYTHON": sys.executable, "INVIGIL_HEALTH_SETTLE": "0"}
    done = subprocess.run(["/bin/sh", str(FIRMWARE / "scripts" / "invigil-health.sh")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert (done.returncode == 0) == healthy, done.stdout + done.stderr
    if not healthy:
        assert "did not reconnect" in done.stderr
