"""The unit's status LED, button and buzzer: the patterns per state (pure) and the gpiozero driver.

The settings and the patterns load eagerly; the driver imports gpiozero only when it is built, so that
validating a config needs no GPIO library.
"""

from __future__ import annotations

from edge_app.indicators.config import IndicatorsConfig
from edge_app.indicators.patterns import (
    PATTERNS,
    Action,
    Pattern,
    Press,
    State,
    StateTracker,
    action_for,
    classify_press,
    output_at,
    pattern_for,
)

__all__ = ["PATTERNS", "Action", "IndicatorsConfig", "Pattern", "Press", "State", "StateTracker", "action_for",
           "classify_press", "output_at", "pattern_for"]
