"""The pins a unit image installs: pyproject's dependencies plus the ``pi`` and ``audio`` extras (and ``page``,
the unit's local page that invigil-page.service runs, when pyproject defines it).

``python -m tools.image.pins`` prints them as a requirements file; the image build keys its wheel cache on
this text, so changing a pin rebuilds the wheels.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE_EXTRAS = ("pi", "audio")
OPTIONAL_EXTRAS = ("page",)


def image_pins(pyproject: Path = ROOT / "pyproject.toml", extras: tuple[str, ...] = IMAGE_EXTRAS) -> list[str]:
    """``name==version`` lines, in pyproject order; every line must be an exact pin."""
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = list(project["dependencies"])
    defined = project["optional-dependencies"]
    for extra in (*extras, *(e for e in OPTIONAL_EXTRAS if e in defined)):
        lines += defined[extra]
    loose = [line for line in lines if "==" not in line]
    if loose:
        raise ValueError(f"the image installs exact pins only; not pinned: {', '.join(loose)}")
    return [line.replace(" ", "") for line in lines]


if __name__ == "__main__":
    print("\n".join(image_pins()))
    sys.exit(0)
