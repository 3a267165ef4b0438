"""The [indicators] section: defaults, refused pins, and its place in the root config."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edge_app.config import ConfigError, load
from edge_app.indicators import IndicatorsConfig

BASE = 'device_id = "unit-01"\n[camera]\ntype = "scenario"\npath = "scenes/normal"\n'


def test_the_defaults_are_five_distinct_free_pins() -> None:
    config = IndicatorsConfig()
    assert (config.red_pin, config.green_pin, config.blue_pin, config.button_pin, config.buzzer_pin) == \
        (17, 27, 22, 23, 24)


@pytest.mark.parametrize(("fields", "expected"), [
    ({"buzzer_pin": 18}, "buzzer_pin = 18 is taken by I2S BCLK"),
    ({"red_pin": 2}, "red_pin = 2 is taken by I2C SDA"),
    ({"button_pin": 17}, "must all differ"),
    ({"blue_pin": 28}, "less than or equal to 27"),
    ({"buzzer": 24}, "Extra inputs are not permitted"),
])
def test_bad_pins_are_refused(fields: dict[str, int], expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        IndicatorsConfig.model_validate(fields)
    assert expected in str(info.value)


def test_the_root_config_takes_the_section_and_its_overrides(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(BASE + "[indicators]\nled_active_high = false\nlong_press = 4\n")
    config = load(path, environ={"INVIGIL_INDICATORS__BUZZER_PIN": "25"})
    assert not config.indicators.led_active_high and config.indicators.long_press == 4.0
    assert config.indicators.buzzer_pin == 25
    path.write_text(BASE)
    assert load(path, environ={}).indicators == IndicatorsConfig()
    path.write_text(BASE + "[indicators]\nbutton_pin = 14\n")
    with pytest.raises(ConfigError, match="indicators: Value error, button_pin = 14 is taken by UART TX"):
        load(path, environ={})
