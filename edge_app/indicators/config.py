"""Indicator settings: which GPIO pins (BCM numbers) the status LED, the button and the buzzer use.

The defaults match ``hw/pinout.csv`` (a test checks both ways); change them only together with the wiring.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

# BCM pins a unit must leave alone: I2C (2, 3, the camera's and HATs' EEPROM on 0, 1), UART (14, 15) and the
# I2S microphone (18, 19, 20, 21).
RESERVED = {0: "ID EEPROM", 1: "ID EEPROM", 2: "I2C SDA", 3: "I2C SCL", 14: "UART TX", 15: "UART RX",
            18: "I2S BCLK", 19: "I2S LRCLK", 20: "I2S DIN", 21: "I2S DOUT"}
PIN_FIELDS = ("red_pin", "green_pin", "blue_pin", "button_pin", "buzzer_pin")


def _pin(default: int, what: str) -> int:
    return Field(default, ge=0, le=27, description=f"BCM number of the GPIO for {what}")


class IndicatorsConfig(BaseModel):
    """The unit's status LED (RGB, one GPIO per colour), its button and its buzzer (see hw/wiring.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="drive the LED, button and buzzer; off: the unit shows nothing "
                          "(a machine without GPIO turns them off by itself, with a log line)")
    red_pin: int = _pin(17, "the LED's red channel")
    green_pin: int = _pin(27, "the LED's green channel")
    blue_pin: int = _pin(22, "the LED's blue channel")
    led_active_high: bool = Field(True, description="true: common-cathode LED (a high pin lights a colour); "
                                  "false: common-anode LED")
    button_pin: int = _pin(23, "the push button (to ground; the internal pull-up is used)")
    buzzer_pin: int = _pin(24, "the buzzer's transistor base (through 1 kΩ)")
    long_press: float = Field(3.0, ge=1.0, le=10.0, description="seconds the button is held for a long press")
    min_press: float = Field(0.05, ge=0.0, le=0.5, description="shorter presses are contact bounce and ignored")
    quiet: bool = Field(False, description="never sound the buzzer (it is silent during exams anyway)")

    @model_validator(mode="after")
    def _distinct_free_pins(self) -> IndicatorsConfig:
        pins = [getattr(self, name) for name in PIN_FIELDS]
        problems = [f"{name} = {pin} is taken by {RESERVED[pin]}" for name, pin in zip(PIN_FIELDS, pins, strict=True)
                    if pin in RESERVED]
        if len(set(pins)) != len(pins):
            problems.append("the LED, button and buzzer pins must all differ: " + ", ".join(map(str, pins)))
        if problems:
            raise ValueError("; ".join(problems))
        return self
