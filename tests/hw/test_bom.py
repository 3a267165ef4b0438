"""hw/: the BOM is complete for both builds, the pinout matches the header and the code's defaults both ways,
and the power budget adds up."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from edge_app.indicators.config import PIN_FIELDS, RESERVED, IndicatorsConfig

HW = Path(__file__).resolve().parents[2] / "hw"
BUILDS = ("pi5", "pi4")
REQUIRED = {"board", "cooler", "camera", "camera_cable", "microphone", "led", "resistor_330", "resistor_100",
            "resistor_1k", "button", "buzzer", "transistor", "diode", "wires", "power_supply", "microsd",
            "enclosure", "mount"}
FUNCTIONS = {"red_pin": "led_red", "green_pin": "led_green", "blue_pin": "led_blue", "button_pin": "button",
             "buzzer_pin": "buzzer"}
# The 40-pin header of every Pi since the B+: physical pin -> BCM GPIO, or the supply it carries.
HEADER: dict[int, int | str] = {
    1: "3V3", 2: "5V", 3: 2, 4: "5V", 5: 3, 6: "GND", 7: 4, 8: 14, 9: "GND", 10: 15, 11: 17, 12: 18, 13: 27,
    14: "GND", 15: 22, 16: 23, 17: "3V3", 18: 24, 19: 10, 20: "GND", 21: 9, 22: 25, 23: 11, 24: 8, 25: "GND",
    26: 7, 27: 0, 28: 1, 29: 5, 30: "GND", 31: 6, 32: 12, 33: 13, 34: "GND", 35: 19, 36: 16, 37: 26, 38: 20,
    39: "GND", 40: 21,
}


def read_csv(name: str) -> list[dict[str, str]]:
    with (HW / name).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(None not in row and None not in row.values() for row in rows), f"{name}: ragged rows"
    return rows


BOM = read_csv("bom.csv")
PINOUT = read_csv("pinout.csv")


def table(text: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header line starts with ``header`` (header and rule left out)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[start + 2:end]]


@pytest.mark.parametrize("build", BUILDS)
def test_every_required_item_is_in_each_build(build: str) -> None:
    items = [row["item"] for row in BOM if row["build"] == build]
    assert set(items) >= REQUIRED, REQUIRED - set(items)
    assert len(items) == len(set(items)), "an item listed twice"


def test_rows_are_complete_with_positive_quantities_and_numeric_prices() -> None:
    assert {row["build"] for row in BOM} == set(BUILDS)
    for row in BOM:
        where = f"{row['build']}/{row['item']}"
        assert all(row[key].strip() for key in ("description", "manufacturer", "part_number", "substitutes")), where
        assert row["quantity"].isdigit() and int(row["quantity"]) > 0, where
        assert re.fullmatch(r"\d+\.\d{2}", row["unit_price_eur"]), where
        assert float(row["unit_price_eur"]) > 0 or "included" in row["part_number"], where


def test_the_readme_states_the_build_totals() -> None:
    readme = (HW / "README.md").read_text(encoding="utf-8")
    for build, label in (("pi5", "Pi 5"), ("pi4", "Pi 4")):
        total = sum(int(row["quantity"]) * float(row["unit_price_eur"]) for row in BOM if row["build"] == build)
        assert f"about {round(total)} EUR ({label})" in readme
    assert "list prices as of 2026, approximate" in readme


def test_the_pinout_has_no_duplicate_and_matches_the_header() -> None:
    headers = [int(row["header_pin"]) for row in PINOUT]
    gpios = [int(row["bcm"]) for row in PINOUT if row["bcm"]]
    assert len(headers) == len(set(headers)) and len(gpios) == len(set(gpios))
    for row in PINOUT:
        expected = HEADER[int(row["header_pin"])]
        if row["bcm"]:
            assert expected == int(row["bcm"]) and row["signal"] == f"GPIO{row['bcm']}", row
        else:
            assert row["signal"] == expected and row["function"] in ("ground", "power"), row


def test_the_code_defaults_and_the_pinout_agree_both_ways() -> None:
    defaults = IndicatorsConfig()
    by_key = {row["config_key"]: row for row in PINOUT if row["config_key"]}
    assert set(by_key) == {f"indicators.{name}" for name in PIN_FIELDS}  # nothing more, nothing less
    for name in PIN_FIELDS:
        row = by_key[f"indicators.{name}"]
        assert int(row["bcm"]) == getattr(defaults, name) and row["function"] == FUNCTIONS[name], row
    for row in PINOUT:  # a pin the config refuses is only ever wired for what it is reserved for
        if row["bcm"] and int(row["bcm"]) in RESERVED:
            assert not row["config_key"] and RESERVED[int(row["bcm"])].split()[0].lower() in row["function"], row


def test_the_wiring_guide_lists_the_same_pins() -> None:
    rows = table((HW / "wiring.md").read_text(encoding="utf-8"), "| what | BCM |")
    keyed = {cells[3].strip("`"): cells for cells in rows if cells[3].startswith("`")}
    for row in PINOUT:
        if row["config_key"]:
            cells = keyed[row["config_key"]]
            assert (cells[1], cells[2]) == (row["bcm"], row["header_pin"]), row


def test_the_power_budget_adds_up() -> None:
    rows = table((HW / "mounting.md").read_text(encoding="utf-8"), "| component |")
    names = [cells[0] for cells in rows]
    total_at = names.index("**total**")
    parts, total = rows[:total_at], rows[total_at]
    supply, headroom = rows[names.index("supply rating")], rows[names.index("headroom")]
    assert len(parts) >= 7
    for column in (1, 2):  # Pi 5, Pi 4
        assert sum(int(cells[column]) for cells in parts) == int(total[column])
        assert int(supply[column]) - int(total[column]) == int(headroom[column]) > 0
