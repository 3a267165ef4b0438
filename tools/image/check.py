"""``make image-test`` (python -m tools.image.check): the self-test in the arm64 root filesystem under
emulation and on this host, compared (see :mod:`tools.image.compare`). Needs root and ``make image`` first.

The arm64 side runs through qemu-user-static registered with binfmt_misc: ``chroot`` into the root
filesystem and the image's own venv python, once per Raspberry Pi core. "Ready" is the time from entering
the root filesystem to the int8 models loaded (interpreter start, every pinned import, model load).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.fixtures import model_photos
from tools.image.compare import compare, load, table
from tools.image.emulate import CORES, run_selftest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "image"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--boot", action="store_true",
                        help="also boot the image in qemu-system-aarch64 (Debian's arm64 kernel) and time it")
    args = parser.parse_args(argv)
    rootfs = args.out / "rootfs"
    if not (rootfs / "opt/invigil/venv/bin/python").exists():
        print("image-test: no image root filesystem; run `make image` first", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("image-test: needs root (chroot and bind mounts)", file=sys.stderr)
        return 2
    photos = args.out / "selftest" / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for name, path in model_photos().items():
        shutil.copy(path, photos / name)
    reference = args.out / "selftest" / "x86_64.json"
    subprocess.run(
        [sys.executable, "-m", "tools.image.selftest", "--reference", "--requirements",
         str(args.out / "requirements.txt"), "--models", str(ROOT / "build" / "models"),
         "--photos", str(photos), "--out", str(reference)],
        check=True, cwd=ROOT,
    )
    ref = load(reference)
    image = json.loads((args.out / "image.json").read_text()) if (args.out / "image.json").exists() else {}
    results = {}
    # The two Pi cores on the device's path (XNNPACK), then the builtin-kernel fallback for the record.
    for name, cpu, xnnpack in (("cortex-a72", "cortex-a72", True), ("cortex-a76", "cortex-a76", True),
                               ("cortex-a72-builtin", "cortex-a72", False)):
        candidate = args.out / "selftest" / f"aarch64-{name}.json"
        run = run_selftest(rootfs, photos, candidate, cpu, xnnpack)
        cand = load(candidate)
        result = compare(ref, cand)
        board = CORES[cpu].board + ("" if xnnpack else ", XNNPACK off: TFLite builtin kernels (not gated)")
        result.update(
            cpu=cpu, board=board, xnnpack=run.xnnpack, gated=xnnpack, emulated_ready_s=run.ready_s,
            emulated_wall_s=run.wall_s,
            emulated_detect_ms_per_photo=round(sum(p["ms"] for p in cand["photos"].values()) / len(cand["photos"])),
            host_detect_ms_per_photo=round(sum(p["ms"] for p in ref["photos"].values()) / len(ref["photos"])),
        )
        if xnnpack and not run.xnnpack:
            result["passed"] = False
            result["bad_imports"]["xnnpack"] = "the XNNPACK delegate was not created: not the device's int8 path"
        results[name] = result
        _print(result)
    if args.boot:
        results["boot"] = _boot(args.out, rootfs, photos, ref)
    (args.out / "parity.json").write_text(json.dumps({"image": image, "runs": results}, indent=1) + "\n")
    if image:
        print(f"image: root filesystem {image['rootfs_mib']} MiB, packed {image['tarball_mib']} MiB")
    return 0 if all(r["passed"] for r in results.values() if r.get("gated", True)) else 1


def _boot(out: Path, rootfs: Path, photos: Path, ref: dict[str, Any]) -> dict[str, Any]:
    """Full-system boot on an emulated Pi 4 core: milestones in seconds from power-on, and parity."""
    from tools.image import boot

    base = Path((out / "base-path").read_text().strip())
    kernel, initrd = boot.boot_kit(base, base.parent)
    disk = out / "boot.ext4"
    boot.make_disk(rootfs, photos, disk)
    try:
        seen = boot.boot(kernel, initrd, disk, "cortex-a72", out / "boot-console.log")
        report = out / "selftest" / "aarch64-boot.json"
        boot.read_report(disk, report)
    finally:
        disk.unlink(missing_ok=True)
    result = compare(ref, load(report))
    result.update(cpu="cortex-a72", board="Pi 4, full-system boot", milestones_s=seen, xnnpack="xnnpack" in seen,
                  emulated_ready_s=seen.get("ready", float("nan")), emulated_wall_s=seen.get("powered_off"),
                  emulated_detect_ms_per_photo=round(sum(p["ms"] for p in load(report)["photos"].values())
                                                     / len(ref["photos"])),
                  host_detect_ms_per_photo=round(sum(p["ms"] for p in ref["photos"].values()) / len(ref["photos"])))
    _print(result)
    print("boot milestones (s from power-on): " + ", ".join(f"{k} {v}" for k, v in seen.items()))
    return result


def _print(result: dict[str, Any]) -> None:
    print(f"\n## {result['cpu']} ({result['board']}) vs {result['reference']}; XNNPACK {result.get('xnnpack')}\n")
    print(table(result))
    for row in result["photos"]:
        for note in row.get("flips", []) + row.get("lost", []):
            print(f"  {row['photo']}: {note}")
    print(f"emulated {result['cpu']}: ready (python up, pins imported, int8 models loaded) in "
          f"{result['emulated_ready_s']} s, whole self-test {result['emulated_wall_s']} s; detection "
          f"{result['emulated_detect_ms_per_photo']} ms per photo emulated vs {result['host_detect_ms_per_photo']} ms "
          "on this x86 host")
    if result["needs_pi_os"]:
        print("installed, import needs Raspberry Pi OS: " + ", ".join(result["needs_pi_os"]))
    same = sum(1 for r in result["photos"] if r.get("same"))
    verdict = "PASS" if result["passed"] else f"FAIL {result['bad_imports'] or ''} {result['bad_models'] or ''}"
    if not result.get("gated", True):
        verdict = f"{'same' if result['passed'] else 'differs'} (recorded, not gated)"
    print(f"parity ({result['runtime']}): {same}/{len(result['photos'])} photos identical, score tolerance "
          f"{result['score_tolerance']}, IoU >= {result['iou_min']}: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
