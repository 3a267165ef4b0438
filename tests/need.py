"""What a test needs from the machine: skipped with the reason where it is missing, a failure in CI.

`make test` installs every Debian package and renders every scenario, and CI has the shared phone photos,
so in CI (``CI=true``) nothing a test needs may be missing: the test fails instead of skipping.
"""

from __future__ import annotations

import shutil

import pytest

from tools.scenarios.audio import INSTALL_ESPEAK
from tools.scenarios.sources import in_ci


def need(present: bool, what: str) -> None:
    """Skip the running test when ``present`` is false, saying ``what`` is missing and how to get it; fail in CI."""
    if present:
        return
    if in_ci():
        pytest.fail(f"{what} (CI must have it)")
    pytest.skip(what)


def needs(present: bool, what: str) -> pytest.MarkDecorator:
    """The marker form of :func:`need`: skips where ``present`` is false, except in CI, where the test runs."""
    return pytest.mark.skipif(not present and not in_ci(), reason=what)


needs_espeak = needs(shutil.which("espeak-ng") is not None, f"espeak-ng is not installed: {INSTALL_ESPEAK}")
