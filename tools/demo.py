"""`make demo` until the end-to-end demo exists: every model on the fixture photos.

Runs ``python -m edge_app detect`` on a few real photos (people, a portrait, one person three times
and another person), comparing every face with an enrolled photo of the first person.
"""

from __future__ import annotations

import sys

from edge_app.__main__ import main as edge_main
from tools.fixtures import photo

DEMO_PHOTOS = ["bus.jpg", "zidane.jpg", "grace_hopper.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "coffee.png"]


def main() -> int:
    paths = [str(photo(name)) for name in DEMO_PHOTOS]
    enrolled = str(photo("obama.jpg"))
    print(f"Invigil demo: the on-device models on real photos; identity compared with {photo('obama.jpg').name}\n")
    return edge_main(["detect", *paths, "--enrolled", enrolled])


if __name__ == "__main__":
    sys.exit(main())
