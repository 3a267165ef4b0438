"""Run the image's self-test in its arm64 root filesystem through qemu-user-static (binfmt_misc + chroot).

qemu-user hands the program the host's own ``/proc/cpuinfo`` (x86). XNNPACK (the TFLite delegate that runs
the int8 models on the device) identifies the CPU through cpuinfo, which then fails, and TFLite silently falls
back to its builtin kernels, whose int8 arithmetic differs. So each run shows the program the
``/proc/cpuinfo`` a Raspberry Pi's kernel shows for that core, and the same core is emulated (QEMU_CPU, which
sets the instruction-set hwcaps XNNPACK picks its kernels from). ``xnnpack=False`` runs without it on purpose:
the fallback path, for the record.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

RELEASE = "/var/lib/invigil/releases/current"  # what the units run: PYTHONPATH and models through this link
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": "/root", "LANG": "C.UTF-8"}
XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate"


@dataclass(frozen=True)
class Core:
    board: str
    features: str  # as the arm64 kernel lists them
    part: str  # MIDR part number
    variant: str
    revision: int

    def cpuinfo(self, cpus: int) -> str:
        return "".join(
            f"processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: {self.features}\nCPU implementer\t: 0x41\n"
            f"CPU architecture: 8\nCPU variant\t: {self.variant}\nCPU part\t: {self.part}\n"
            f"CPU revision\t: {self.revision}\n\n"
            for n in range(cpus)
        )


# The Raspberry Pi cores: the A76 has the dot-product instructions XNNPACK's fastest int8 kernels use.
CORES = {
    "cortex-a72": Core("Pi 4", "fp asimd evtstrm crc32 cpuid", "0xd08", "0x0", 3),
    "cortex-a76": Core("Pi 5", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
                               "lrcpc dcpop asimddp", "0xd0b", "0x4", 1),
}


@dataclass
class Run:
    ready_s: float  # entering the root filesystem -> int8 models loaded
    wall_s: float
    xnnpack: bool  # the XNNPACK delegate was created


def _host_cpus() -> int:
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    return int(text.split("-")[-1]) + 1


def run_selftest(rootfs: Path, photos: Path, report: Path, cpu: str, xnnpack: bool = True) -> Run:
    """The self-test on one emulated core, as the units run the app; the JSON report is copied to ``report``."""
    inner = rootfs / "tmp" / "selftest"
    (inner / "photos").mkdir(parents=True, exist_ok=True)
    cpuinfo = inner / "cpuinfo"
    cpuinfo.write_text(CORES[cpu].cpuinfo(_host_cpus()))
    mounts: list[tuple[list[str], Path]] = [
        (["--bind", "/proc"], rootfs / "proc"), (["--bind", "/dev"], rootfs / "dev"),
        (["--bind", "-o", "ro", str(photos)], inner / "photos"),
    ]
    if xnnpack:  # cpuinfo also reads the processor lists under /sys
        mounts += [(["--bind", str(cpuinfo)], rootfs / "proc/cpuinfo"), (["--rbind", "/sys"], rootfs / "sys")]
    done: list[Path] = []
    ready, seen_xnnpack = float("nan"), False
    try:
        for args, target in mounts:
            subprocess.run(["mount", *args, str(target)], check=True)
            done.append(target)
        started = time.perf_counter()
        with subprocess.Popen(
            ["chroot", str(rootfs), "/opt/invigil/venv/bin/python", "/opt/invigil/selftest/selftest.py",
             "--requirements", "/opt/invigil/requirements.txt", "--models", f"{RELEASE}/models",
             "--photos", "/tmp/selftest/photos", "--out", "/tmp/selftest/report.json"],
            env={**CLEAN_ENV, "QEMU_CPU": cpu, "PYTHONPATH": f"{RELEASE}/app"}, stderr=subprocess.PIPE, text=True,
        ) as process:
            assert process.stderr is not None
            for line in process.stderr:
                if line.startswith("selftest ready"):
                    ready = time.perf_counter() - started
                elif XNNPACK_LINE in line:
                    seen_xnnpack = True
                elif not line.startswith("Error in cpuinfo"):
                    sys.stderr.write(line)
        elapsed = time.perf_counter() - started
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)
    if process.returncode not in (0, 1) or not (inner / "report.json").exists():
        raise RuntimeError(f"the self-test on {cpu} failed (exit {process.returncode}) and left no report")
    shutil.copy(inner / "report.json", report)
    shutil.rmtree(inner)
    return Run(round(ready, 1), round(elapsed, 1), seen_xnnpack)
