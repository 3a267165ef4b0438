"""The status LED, the button and the buzzer on the unit's GPIO header, through gpiozero.

:class:`Indicators` plays the pattern of the current state (edge_app.indicators.patterns) with its own
sequencer: :meth:`Indicators.step` sets the pins for a moment on ``clock``, a daemon thread calls it every
``TICK`` seconds (tests call it with their own times). The button's presses are timed on the same clock and
mapped to an :class:`Action`; its handler runs on gpiozero's callback thread and must only hand work over.
On a machine without GPIO (or without gpiozero) the indicators are off, said once in the log.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from edge_app.indicators.config import IndicatorsConfig
from edge_app.indicators.patterns import (
    EXAM_STATES,
    OFF,
    Action,
    Colour,
    State,
    action_for,
    classify_press,
    output_at,
    pattern_for,
)

log = logging.getLogger(__name__)
TICK = 0.02  # seconds between sequencer steps: blinks of 0.1 s are drawn to within a fifth


class Indicators:
    """Drives the LED and the buzzer from the state; calls ``on_action(action, state)`` for button presses.

    ``source``: where the sequencer thread reads the state at each step (a StateTracker's ``state``), besides
    :meth:`set_state`. ``pin_factory``: a gpiozero pin factory (tests pass a MockFactory); None: gpiozero's
    default for the board.
    """

    def __init__(self, config: IndicatorsConfig, on_action: Callable[[Action, State], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, pin_factory: Any = None,
                 source: Callable[[], State] | None = None) -> None:
        self.config, self.on_action, self.clock, self.source = config, on_action, clock, source
        self.state, self.started = State.BOOTING, clock()
        self.led: Any = None
        self.buzzer: Any = None
        self.button: Any = None
        self._pressed_at: float | None = None
        self._shown: tuple[Colour, bool] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.active = config.enabled and self._open(pin_factory)
        if self.active:
            self.step()

    def _open(self, pin_factory: Any) -> bool:
        try:
            from gpiozero import RGBLED, Button, Buzzer
        except ImportError:
            log.info("indicators off: gpiozero is not installed (the 'pi' extra)")
            return False
        c = self.config
        try:
            with warnings.catch_warnings():  # one line below, not a warning per pin factory tried
                warnings.simplefilter("ignore")
                self.led = RGBLED(c.red_pin, c.green_pin, c.blue_pin, active_high=c.led_active_high, pwm=True,
                                  pin_factory=pin_factory)
                self.buzzer = Buzzer(c.buzzer_pin, pin_factory=pin_factory)
                self.button = Button(c.button_pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
        except Exception as exc:  # GPIOZeroError off a Pi; a backend's own errors (a pin held by another process)
            self.close()
            log.info("indicators off: no usable GPIO on this machine (%s)", exc)
            return False
        self.button.when_pressed = self._pressed
        self.button.when_released = self._released
        log.info("indicators on: LED on GPIO %d/%d/%d, button on GPIO %d, buzzer on GPIO %d", c.red_pin,
                 c.green_pin, c.blue_pin, c.button_pin, c.buzzer_pin)
        return True

    # -- state and sequencer ------------------------------------------------------------------------------

    def set_state(self, state: State) -> None:
        """Show ``state``; its pattern (and its beeps) starts over only when the state changes."""
        with self._lock:
            if state is self.state:
                return
            self.state, self.started = state, self.clock()
        self.step()

    def replay(self) -> None:
        """Start the current pattern over, beeps included (a short press)."""
        with self._lock:
            self.started = self.clock()
        self.step()

    def step(self, now: float | None = None) -> None:
        """Set the pins for ``now`` (default: the clock); a pin is written only when its value changes."""
        if not self.active:
            return
        with self._lock:
            now = self.clock() if now is None else now
            colour, beep = output_at(pattern_for(self.state), now - self.started)
            beep = beep and not self.config.quiet and self.state not in EXAM_STATES
            if (colour, beep) == self._shown:
                return
            self._shown = (colour, beep)
            self.led.value = colour
            self.buzzer.value = beep

    def start(self) -> None:
        """Run the sequencer on a daemon thread until :meth:`close`."""
        if self.active and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="indicators", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            if self.source is not None:
                self.set_state(self.source())
            self.step()

    def close(self) -> None:
        """Stop the sequencer, turn the LED and the buzzer off and release the pins."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        for device in (self.led, self.buzzer):
            if device is not None:
                device.value = OFF if device is self.led else False
        for device in (self.button, self.buzzer, self.led):
            if device is not None:
                device.close()
        self.led = self.buzzer = self.button = None
        self.active = False

    # -- button -------------------------------------------------------------------------------------------

    def _pressed(self) -> None:
        self._pressed_at = self.clock()

    def _released(self) -> None:
        if self._pressed_at is None:
            return
        held, self._pressed_at = self.clock() - self._pressed_at, None
        press = classify_press(held, self.config.min_press, self.config.long_press)
        if press is None:
            return
        state = self.state
        action = action_for(state, press)
        log.info("button: %s press (%.1f s) in %s: %s", press.value, held, state.value, action.value)
        if action is Action.SHOW_STATUS:
            self.replay()
        if action is not Action.NONE and self.on_action is not None:
            self.on_action(action, state)
