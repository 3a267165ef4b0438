"""Host-side steps of the image build (firmware/image/build-rootfs.sh) that are easier in Python.

    python -m tools.image.layout models SRC DEST     copy manifest.json and the int8 models, checking sha256
    python -m tools.image.layout figures OUT ...     sizes and build times -> OUT/image.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any


def install_models(source: Path, dest: Path) -> list[str]:
    """Copy the manifest and every int8 model file; refuse a file whose hash differs from the manifest."""
    manifest = json.loads((source / "manifest.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name, entry in manifest["models"].items():
        info = entry["files"]["int8"]
        data = (source / info["file"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != info["sha256"]:
            raise ValueError(f"{source / info['file']} does not match the manifest ({name}): rebuild the models")
        (dest / info["file"]).write_bytes(data)
        copied.append(info["file"])
    shutil.copy2(source / "manifest.json", dest / "manifest.json")
    return copied


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root`` (hard links counted once, symlinks not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            stat = os.lstat(os.path.join(folder, name))
            if not os.path.isfile(os.path.join(folder, name)) or os.path.islink(os.path.join(folder, name)):
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
    return total


def figures(out: Path, debootstrap_s: int, wheels_s: int, build_s: int) -> dict[str, Any]:
    rootfs = out / "rootfs"
    mib = 1024 * 1024
    result = {
        "rootfs_mib": round(tree_bytes(rootfs) / mib, 1),
        "venv_mib": round(tree_bytes(rootfs / "opt/invigil/venv") / mib, 1),
        "release_mib": round(tree_bytes(rootfs / "var/lib/invigil/releases") / mib, 1),  # app + int8 models
        "tarball_mib": round((out / "invigil-arm64-rootfs.tar.zst").stat().st_size / mib, 1),
        "debootstrap_s": debootstrap_s,
        "wheels_s": wheels_s,
        "build_s": build_s,
        "wheels": sorted(line.strip() for line in (out / "freeze-aarch64.txt").read_text().splitlines() if line),
    }
    (out / "image.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"image: root filesystem {result['rootfs_mib']} MiB (venv {result['venv_mib']}, release with app and "
          f"int8 models {result['release_mib']}), packed {result['tarball_mib']} MiB; this run {build_s} s "
          f"(debootstrap when built: {debootstrap_s} s, aarch64 wheels when built: {wheels_s} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models")
    models.add_argument("source", type=Path)
    models.add_argument("dest", type=Path)
    figs = commands.add_parser("figures")
    figs.add_argument("out", type=Path)
    figs.add_argument("--debootstrap-s", type=int, required=True)
    figs.add_argument("--wheels-s", type=int, required=True)
    figs.add_argument("--build-s", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "models":
        print(f"int8 models installed: {', '.join(install_models(args.source, args.dest))}")
    else:
        figures(args.out, args.debootstrap_s, args.wheels_s, args.build_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
