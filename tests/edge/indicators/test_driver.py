"""The driver on real gpiozero devices over gpiozero's mock pin factory: pins follow the pattern on an
injected clock, the button's presses become actions, no GPIO turns it off."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from edge_app.indicators import Action, IndicatorsConfig, State, StateTracker
from edge_app.indicators.driver import Indicators

CONFIG = IndicatorsConfig()
R, G, B, BUTTON, BUZZER = CONFIG.red_pin, CONFIG.green_pin, CONFIG.blue_pin, CONFIG.button_pin, CONFIG.buzzer_pin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    pins = MockFactory(pin_class=MockPWMPin)
    yield pins
    pins.reset()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(factory: MockFactory, clock: Clock, config: IndicatorsConfig = CONFIG,
         actions: list[tuple[Action, State]] | None = None) -> Indicators:
    on_action = (lambda action, state: actions.append((action, state))) if actions is not None else None
    indicators = Indicators(config, on_action, clock=clock, pin_factory=factory)
    assert indicators.active
    return indicators


def rgb(factory: MockFactory) -> tuple[float, float, float]:
    return factory.pin(R).state, factory.pin(G).state, factory.pin(B).state


def values(factory: MockFactory, pin: int) -> list[float]:
    """The pin's history of levels, repeats folded."""
    levels: list[float] = []
    for change in factory.pin(pin).states:
        if not levels or levels[-1] != change.state:
            levels.append(float(change.state))
    return levels


def test_ready_lights_green_and_beeps_once(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock)
    assert rgb(factory) == (0, 0, 1)  # booting: blue
    indicators.set_state(State.READY)
    assert rgb(factory) == (0, 1, 0) and factory.pin(BUZZER).state
    for t in (0.05, 0.15, 0.5, 2.0, 60.0):
        indicators.step(t)
    assert rgb(factory) == (0, 1, 0)
    assert values(factory, BUZZER) == [0, 1, 0]  # one beep, then silence


def test_booting_blinks_blue_on_the_clock(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock)
    for t in (0.1, 0.4, 0.6, 0.9, 1.1, 1.6):
        indicators.step(t)
    assert values(factory, B) == [0, 1, 0, 1, 0]  # on 0.5 s, off 0.5 s
    assert values(factory, R) == [0] and values(factory, G) == [0]


def test_a_dim_colour_is_a_pwm_duty_cycle(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock)
    indicators.set_state(State.IN_EXAM)
    assert rgb(factory) == pytest.approx((0, 0.2, 0))


def test_a_common_anode_led_is_driven_inverted(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock, IndicatorsConfig(led_active_high=False))
    indicators.set_state(State.ALERT)
    assert rgb(factory) == (0, 1, 1)  # red sinks current: low; green and blue stay high (dark)


def test_the_fault_beeps_three_times_and_an_exam_stays_silent(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock)
    clock.now = 10.0
    indicators.set_state(State.FAULT)
    for i in range(1, 100):
        indicators.step(10.0 + i * 0.05)
    assert values(factory, BUZZER).count(1) == 3
    assert values(factory, R).count(1) > 10  # 0.1 s on, 0.1 s off
    before = len(factory.pin(BUZZER).states)
    for state in (State.IN_EXAM, State.ALERT, State.IN_EXAM):
        indicators.set_state(state)
        indicators.replay()
        indicators.step(clock.now + 0.05)
    assert not any(change.state for change in factory.pin(BUZZER).states[before:])


def test_quiet_never_sounds_the_buzzer(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock, IndicatorsConfig(quiet=True))
    indicators.set_state(State.FAULT)
    indicators.step(0.2)
    assert values(factory, BUZZER) == [0] and factory.pin(R).state == 1


def press(factory: MockFactory, clock: Clock, seconds: float) -> None:
    factory.pin(BUTTON).drive_low()  # the button shorts its pin to ground; the pull-up holds it high
    clock.now += seconds
    factory.pin(BUTTON).drive_high()


def test_presses_call_their_actions(factory: MockFactory, clock: Clock) -> None:
    actions: list[tuple[Action, State]] = []
    indicators = make(factory, clock, actions=actions)
    indicators.set_state(State.READY)
    press(factory, clock, 0.3)
    press(factory, clock, 3.5)
    press(factory, clock, 0.01)  # contact bounce: nothing
    assert actions == [(Action.SHOW_STATUS, State.READY), (Action.PLACEMENT_CHECK, State.READY)]


def test_a_long_press_in_an_exam_does_nothing(factory: MockFactory, clock: Clock) -> None:
    actions: list[tuple[Action, State]] = []
    indicators = make(factory, clock, actions=actions)
    indicators.set_state(State.IN_EXAM)
    press(factory, clock, 5.0)
    indicators.set_state(State.ALERT)
    press(factory, clock, 8.0)
    assert actions == []
    press(factory, clock, 0.2)
    assert actions == [(Action.SHOW_STATUS, State.ALERT)]


def test_a_short_press_replays_the_beep(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock)
    indicators.set_state(State.READY)
    clock.now = 5.0
    indicators.step()
    assert values(factory, BUZZER) == [0, 1, 0]
    press(factory, clock, 0.2)
    assert values(factory, BUZZER) == [0, 1, 0, 1]
    indicators.step(clock.now + 0.15)
    assert values(factory, BUZZER) == [0, 1, 0, 1, 0]


def test_close_turns_everything_off(factory: MockFactory, clock: Clock) -> None:
    indicators = make(factory, clock)
    indicators.set_state(State.READY)
    indicators.close()
    assert rgb(factory) == (0, 0, 0) and not factory.pin(BUZZER).state and not indicators.active
    indicators.set_state(State.FAULT)  # a no-op now
    assert rgb(factory) == (0, 0, 0)


def test_without_gpio_the_indicators_are_off_with_a_log_line(monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")  # what gpiozero meets on a board-less PC
    with caplog.at_level(logging.INFO, logger="edge_app.indicators.driver"):
        indicators = Indicators(IndicatorsConfig())
    assert not indicators.active
    assert any("indicators off: no usable GPIO" in record.getMessage() for record in caplog.records)
    indicators.set_state(State.FAULT)
    indicators.step(1.0)
    indicators.start()
    indicators.close()


def test_disabled_indicators_touch_no_pin(factory: MockFactory, clock: Clock) -> None:
    indicators = Indicators(IndicatorsConfig(enabled=False), clock=clock, pin_factory=factory)
    indicators.set_state(State.FAULT)
    assert not indicators.active and factory.pins == {}


def test_the_sequencer_thread_follows_its_state_source(factory: MockFactory) -> None:
    state = [State.BOOTING]
    indicators = Indicators(CONFIG, pin_factory=factory, source=lambda: state[0])
    indicators.start()
    try:
        state[0] = State.ALERT
        deadline = time.monotonic() + 10.0  # a bounded wait for the thread's next steps
        while rgb(factory) != (1, 0, 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert indicators.state is State.ALERT and rgb(factory) == (1, 0, 0)
    finally:
        indicators.close()


def test_a_unit_whose_credentials_are_refused_blinks_the_fault(factory: MockFactory, clock: Clock) -> None:
    tracker = StateTracker(connected=lambda: False)
    indicators = Indicators(CONFIG, clock=clock, pin_factory=factory, source=tracker.state)
    tracker.update({"type": "calibration", "usable": True})
    indicators.set_state(tracker.state())
    assert indicators.state is State.OFFLINE
    clock.now = 5.0
    indicators.set_state(tracker.update({"type": "status", "state": "credentials_refused", "reason": "Not authorized"}))
    for i in range(1, 60):
        indicators.step(5.0 + i * 0.05)
    assert indicators.state is State.FAULT
    assert values(factory, R).count(1) > 10 and factory.pin(B).state == 0  # fast red, not offline's magenta
    assert values(factory, BUZZER).count(1) == 3  # offline was silent: these are the fault's three beeps
    indicators.close()
