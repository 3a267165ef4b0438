"""Boot the arm64 image in full-system emulation and time power-on to ready (``make image-test BOOT=1``).

1. Kernel and initrd: Debian's ``linux-image-arm64`` installed into a throwaway copy of the cached root
   filesystem (cached as ``image/bootkit-<root filesystem key>/`` in the Invigil cache).
2. Disk: an ext4 image of ``build/image/rootfs`` plus the photos and a one-shot unit that runs the
   self-test at boot and powers off (the image itself is not changed).
3. ``qemu-system-aarch64 -M virt`` on an emulated Raspberry Pi core: the seconds from power-on to
   ``multi-user.target`` and to "selftest ready" (int8 models loaded) are read off the serial console.
4. The report is read back from the disk (debugfs) for :mod:`tools.image.compare`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

UNIT = """[Unit]
Description=Invigil image self-test at boot (make image-test), then power off
After=local-fs.target
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
Environment=PYTHONUNBUFFERED=1 PYTHONPATH=/var/lib/invigil/releases/current/app
ExecStart=/opt/invigil/venv/bin/python /opt/invigil/selftest/selftest.py \\
    --requirements /opt/invigil/requirements.txt --models /var/lib/invigil/releases/current/models \\
    --photos /var/lib/invigil-imagetest/photos --out /var/lib/invigil-imagetest/report.json
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""
TEST_UNIT = "invigil-imagetest.service"
BOOT_TIMEOUT_S = 900  # power-on to power-off; the emulated boot and self-test take about 2 minutes
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # systemd's colours on the console


def _run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=True, text=True, **kwargs)


def boot_kit(base: Path, cache: Path) -> tuple[Path, Path]:
    """(vmlinuz, initrd) of Debian's arm64 kernel, built once per root filesystem."""
    kit = cache / f"bootkit-{base.name.removeprefix('rootfs-')}"
    if (kit / ".complete").exists():
        return kit / "vmlinuz", kit / "initrd.img"
    work = cache / f"{kit.name}.root"
    shutil.rmtree(work, ignore_errors=True)
    _run("cp", "-a", str(base), str(work))
    shutil.copy("/etc/resolv.conf", work / "etc/resolv.conf")
    mounts = [work / "proc", work / "dev"]
    _run("mount", "--bind", "/proc", str(mounts[0]))
    _run("mount", "--bind", "/dev", str(mounts[1]))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
    # Only what the emulated board needs: copying every module ("most") one process at a time is slow emulated.
    (work / "etc/initramfs-tools/conf.d").mkdir(parents=True, exist_ok=True)
    (work / "etc/initramfs-tools/conf.d/invigil").write_text("MODULES=list\nCOMPRESS=gzip\n")
    (work / "etc/initramfs-tools/modules").write_text("virtio_mmio\nvirtio_pci\nvirtio_blk\next4\n")
    try:
        _run("chroot", str(work), "apt-get", "update", "-qq", env=env)
        _run("chroot", str(work), "apt-get", "install", "-y", "-qq", "--no-install-recommends",
             "-o", "Dpkg::Options::=--force-confold", "linux-image-arm64", "initramfs-tools",
             env=env, stdout=subprocess.DEVNULL)
    finally:
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", str(mount)], check=False)
    kit.mkdir(parents=True, exist_ok=True)
    shutil.copy(sorted((work / "boot").glob("vmlinuz-*"))[-1], kit / "vmlinuz")
    shutil.copy(sorted((work / "boot").glob("initrd.img-*"))[-1], kit / "initrd.img")
    shutil.rmtree(work)
    (kit / ".complete").touch()
    return kit / "vmlinuz", kit / "initrd.img"


def make_disk(rootfs: Path, photos: Path, disk: Path) -> None:
    """ext4 image of the root filesystem with the photos and the boot-time self-test unit added."""
    added = [rootfs / "var/lib/invigil-imagetest", rootfs / "etc/systemd/system" / TEST_UNIT,
             rootfs / "etc/systemd/system/multi-user.target.wants" / TEST_UNIT]
    shutil.copytree(photos, added[0] / "photos", dirs_exist_ok=True)
    added[1].write_text(UNIT)
    added[2].parent.mkdir(parents=True, exist_ok=True)
    added[2].unlink(missing_ok=True)
    added[2].symlink_to(f"../{TEST_UNIT}")
    try:
        used = int(_run("du", "-sm", str(rootfs), capture_output=True).stdout.split()[0])
        disk.unlink(missing_ok=True)
        _run("mkfs.ext4", "-q", "-F", "-L", "invigil", "-d", str(rootfs), str(disk), f"{used + used // 3 + 256}M")
    finally:
        shutil.rmtree(added[0], ignore_errors=True)
        added[1].unlink(missing_ok=True)
        added[2].unlink(missing_ok=True)


def boot(kernel: Path, initrd: Path, disk: Path, cpu: str, console_log: Path) -> dict[str, float]:
    """Boot the disk; return seconds from power-on to each milestone seen on the serial console."""
    command = [
        "qemu-system-aarch64", "-M", "virt", "-cpu", cpu, "-smp", "2", "-m", "2048", "-nographic",
        "-accel", "tcg,thread=multi", "-no-reboot", "-nic", "none", "-kernel", str(kernel), "-initrd", str(initrd),
        "-drive", f"file={disk},format=raw,if=virtio",
        "-append", "root=/dev/vda rw console=ttyAMA0 systemd.show_status=1 net.ifnames=0",
    ]
    milestones = {"kernel": "Booting Linux", "first_target": "Reached target", "xnnpack": "XNNPACK delegate",
                  "ready": "selftest ready", "done": "selftest aarch64", "unit_starting": "Starting invigil-unit",
                  "multi_user": "Reached target multi-user.target"}
    seen: dict[str, float] = {}
    started = time.perf_counter()
    with console_log.open("w") as log, subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        errors="replace",
    ) as qemu:
        assert qemu.stdout is not None
        watchdog = threading.Timer(BOOT_TIMEOUT_S, qemu.kill)  # bounded even if the console falls silent
        watchdog.start()
        for line in qemu.stdout:
            elapsed = time.perf_counter() - started
            log.write(f"{elapsed:8.1f} {line}")
            plain = ANSI.sub("", line)
            for name, marker in milestones.items():
                if name not in seen and marker in plain:
                    seen[name] = round(elapsed, 1)
        watchdog.cancel()
        seen["powered_off"] = round(time.perf_counter() - started, 1)
    return seen


def read_report(disk: Path, report: Path) -> None:
    _run("debugfs", "-R", f"dump /var/lib/invigil-imagetest/report.json {report}", str(disk),
         capture_output=True)
    if not report.exists() or report.stat().st_size == 0:
        raise RuntimeError(f"the boot-time self-test left no report on {disk}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m tools.image.boot ROOTFS_CACHE_DIR CACHE_DIR   (builds the kernel kit only)")
    print(boot_kit(Path(sys.argv[1]), Path(sys.argv[2])))
