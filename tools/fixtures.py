"""Real photos from registry packages, for tests, calibration and the demo.

Never committed: each comes out of a pinned, sha256-checked archive into the cache on first use.
``python -m tools.fixtures`` fetches them all and prints where they are.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tools.fetch import Package, extract

ULTRALYTICS = Package(
    "pypi", "ultralytics", "8.4.190", "ultralytics-8.4.190-py3-none-any.whl",
    "bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8", "AGPL-3.0",
)
SKIMAGE = Package(
    "pypi", "scikit-image", "0.25.2",
    "scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641", "BSD-3-Clause",
)
MATPLOTLIB = Package(
    "pypi", "matplotlib", "3.10.7",
    "matplotlib-3.10.7-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
    "2222c7ba2cbde7fe63032769f6eb7e83ab3227f47d997a8453377709b7fe3a5a", "matplotlib licence (PSF-style)",
)
FACE_RECOGNITION = Package(
    "pypi", "face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz",
    "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec", "MIT",
)

# local name -> (package, member path in the archive)
PHOTOS: dict[str, tuple[Package, str]] = {
    "bus.jpg": (ULTRALYTICS, "ultralytics/assets/bus.jpg"),
    "zidane.jpg": (ULTRALYTICS, "ultralytics/assets/zidane.jpg"),
    "astronaut.png": (SKIMAGE, "skimage/data/astronaut.png"),
    "camera.png": (SKIMAGE, "skimage/data/camera.png"),
    "coffee.png": (SKIMAGE, "skimage/data/coffee.png"),
    "chelsea.png": (SKIMAGE, "skimage/data/chelsea.png"),
    "rocket.jpg": (SKIMAGE, "skimage/data/rocket.jpg"),
    "motorcycle_left.png": (SKIMAGE, "skimage/data/motorcycle_left.png"),
    "page.png": (SKIMAGE, "skimage/data/page.png"),
    "grace_hopper.jpg": (MATPLOTLIB, "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    "obama.jpg": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/obama.jpg"),
    "obama2.jpg": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/obama2.jpg"),
    "obama3.jpg": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/obama3.jpg"),
    "biden.jpg": (FACE_RECOGNITION, "face_recognition-1.3.0/tests/test_images/biden.jpg"),
}

PEOPLE_PHOTOS = ["bus.jpg", "zidane.jpg", "astronaut.png", "camera.png", "grace_hopper.jpg",
                 "obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]
NO_PEOPLE_PHOTOS = ["coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "page.png"]


def photo(name: str) -> Path:
    """Path of one fixture photo, fetched on first use."""
    package, member = PHOTOS[name]
    return extract(package, {member: name}, "photos")[name]


def all_photos() -> dict[str, Path]:
    by_package: dict[Package, dict[str, str]] = {}
    for name, (package, member) in PHOTOS.items():
        by_package.setdefault(package, {})[member] = name
    found: dict[str, Path] = {}
    for package, members in by_package.items():
        found.update(extract(package, members, "photos"))
    return {name: found[name] for name in PHOTOS}


if __name__ == "__main__":
    for name, path in all_photos().items():
        print(f"{name}\t{path}")
    sys.exit(0)
