"""``python -m tools.scenarios``: render the scenario definitions (see tools/scenarios/render.py)."""

import sys

from tools.scenarios.render import main

sys.exit(main())
