"""What the status LED and the buzzer show in each state of the unit, and what the button does: pure functions.

=================  ============  ==================  =====================  ===========================================
state              colour        blink on / off (s)  buzzer                 meaning
=================  ============  ==================  =====================  ===========================================
booting            blue          0.5 / 0.5           silent                 starting; no placement verdict yet
needs_placement    amber         1.0 / 1.0           1 beep                 move the unit: see the unit's page
ready              green         steady              1 short beep           placed and connected; waiting for an exam
in_exam            dim green     steady              silent                 an exam runs (nothing distracts anyone)
alert              red           steady              silent                 an alert is open (the proctor has it)
offline            magenta       0.2 / 1.8           silent                 placed, but the bridge is out of reach
updating           cyan          0.25 / 0.25         silent                 an update is being installed
fault              red           0.1 / 0.1           3 long beeps           the camera or the unit failed, or the
                                                                            bridge refused its credentials: call staff
=================  ============  ==================  =====================  ===========================================

Beeps sound once, when the state is entered (and again on a short press); the buzzer never sounds in an exam.
Button: a short press replays the current state's pattern (and the app shows its status); a long press (held
``long_press`` seconds, then released) asks for a new placement check, but only outside an exam: no press
ever ends or pauses an exam.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Colour = tuple[float, float, float]
OFF: Colour = (0.0, 0.0, 0.0)


class State(enum.Enum):
    BOOTING = "booting"
    NEEDS_PLACEMENT = "needs_placement"
    READY = "ready"
    IN_EXAM = "in_exam"
    ALERT = "alert"
    OFFLINE = "offline"
    UPDATING = "updating"
    FAULT = "fault"


@dataclass(frozen=True)
class Pattern:
    """An LED colour, blinking ``on_time``/``off_time`` seconds (``off_time`` 0: steady), and ``beeps`` beeps
    of ``beep_on``/``beep_off`` seconds at the start."""

    colour: Colour
    on_time: float = 1.0
    off_time: float = 0.0
    beeps: int = 0
    beep_on: float = 0.1
    beep_off: float = 0.1


PATTERNS: dict[State, Pattern] = {
    State.BOOTING: Pattern((0.0, 0.0, 1.0), 0.5, 0.5),
    State.NEEDS_PLACEMENT: Pattern((1.0, 0.5, 0.0), 1.0, 1.0, beeps=1, beep_on=0.3),
    State.READY: Pattern((0.0, 1.0, 0.0), beeps=1, beep_on=0.1),
    State.IN_EXAM: Pattern((0.0, 0.2, 0.0)),
    State.ALERT: Pattern((1.0, 0.0, 0.0)),
    State.OFFLINE: Pattern((1.0, 0.0, 1.0), 0.2, 1.8),
    State.UPDATING: Pattern((0.0, 1.0, 1.0), 0.25, 0.25),
    State.FAULT: Pattern((1.0, 0.0, 0.0), 0.1, 0.1, beeps=3, beep_on=0.5, beep_off=0.5),
}
EXAM_STATES = frozenset({State.IN_EXAM, State.ALERT})


def pattern_for(state: State) -> Pattern:
    return PATTERNS[state]


def output_at(pattern: Pattern, elapsed: float) -> tuple[Colour, bool]:
    """The LED colour and whether the buzzer sounds ``elapsed`` seconds after the pattern started."""
    elapsed = max(0.0, elapsed)
    lit = pattern.off_time <= 0 or elapsed % (pattern.on_time + pattern.off_time) < pattern.on_time
    beep_period = pattern.beep_on + pattern.beep_off
    beeping = elapsed < pattern.beeps * beep_period and elapsed % beep_period < pattern.beep_on
    return (pattern.colour if lit else OFF), beeping


class Press(enum.Enum):
    SHORT = "short"
    LONG = "long"


class Action(enum.Enum):
    NONE = "none"
    SHOW_STATUS = "show_status"
    PLACEMENT_CHECK = "placement_check"


def classify_press(seconds: float, min_press: float, long_press: float) -> Press | None:
    """A press held ``seconds``: None below ``min_press`` (contact bounce), long from ``long_press`` on."""
    if seconds < min_press:
        return None
    return Press.LONG if seconds >= long_press else Press.SHORT


def action_for(state: State, press: Press) -> Action:
    """Short: show the status, in any state. Long: a placement check when no exam runs and the unit is up."""
    if press is Press.SHORT:
        return Action.SHOW_STATUS
    if state in (State.NEEDS_PLACEMENT, State.READY, State.OFFLINE):
        return Action.PLACEMENT_CHECK
    return Action.NONE  # booting, updating, fault, and above all in an exam


class StateTracker:
    """The unit's state from the messages the session loop emits (edge_app.loop, edge_app.connected).

    ``connected`` is None for a standalone unit (no ``[link]``), whose run is the exam once the placement is
    usable; otherwise it tells whether the bridge is reachable now. Priority, highest first: fault, updating,
    booting, alert, in_exam, needs_placement, offline, ready. Offline is not shown during an exam (events
    wait in the outbox and the candidate is not disturbed). A unit whose credentials the broker refuses
    (``credentials_refused``, until ``credentials_accepted``) is at fault, not offline: waiting will not fix it.
    """

    def __init__(self, connected: Callable[[], bool] | None = None,
                 updating: Callable[[], bool] | None = None) -> None:
        """``updating``: whether an update is being installed now (asked at most once a second)."""
        self.connected = connected
        self.update_running = updating
        self._asked: tuple[float, bool] = (-1.0, False)  # monotonic time, answer
        self.placement: bool | None = None  # None until the first calibration message: booting
        self.session: str | None = None
        self.open_alerts: set[str] = set()
        self.camera_fault = False
        self.credentials_refused = False
        self.updating = False

    def update(self, message: dict[str, Any]) -> State:
        kind, state = message.get("type"), message.get("state")
        if kind == "calibration":
            self.placement = bool(message.get("usable"))
        elif kind == "alert" and message.get("id"):
            if message.get("phase") == "end":
                self.open_alerts.discard(str(message["id"]))
            else:
                self.open_alerts.add(str(message["id"]))
        elif state == "session_started":
            self.session = str(message.get("session"))
        elif state == "session_stopped":
            self.session = None
        elif state in ("camera_stalled", "camera_recovered"):
            self.camera_fault = state == "camera_stalled"
        elif state in ("credentials_refused", "credentials_accepted"):
            self.credentials_refused = state == "credentials_refused"
        return self.state()

    def _update_running(self) -> bool:
        if self.update_running is None:
            return False
        now = time.monotonic()
        if now - self._asked[0] >= 1.0:
            self._asked = (now, self.update_running())
        return self._asked[1]

    def state(self) -> State:
        if self.camera_fault or self.credentials_refused:
            return State.FAULT
        if self.updating or self._update_running():
            return State.UPDATING
        if self.placement is None:
            return State.BOOTING
        if self.open_alerts:
            return State.ALERT
        in_exam = self.session is not None if self.connected is not None else self.placement
        if in_exam:
            return State.IN_EXAM
        if not self.placement:
            return State.NEEDS_PLACEMENT
        if self.connected is not None and not self.connected():
            return State.OFFLINE
        return State.READY
