"""The boot partition's seed file: validated in full, copied into the state root, its secrets scrubbed."""

from __future__ import annotations

import json
import shutil
import stat
import tomllib
from pathlib import Path

import pytest

from edge_app.__main__ import main
from edge_app.seed import WIFI_KEYFILE, SeedError, apply_seed, read_seed, wifi_keyfile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "firmware" / "seed" / "invigil-seed.toml.example"


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    path = tmp_path / "boot" / "invigil-seed.toml"
    path.parent.mkdir()
    shutil.copy(EXAMPLE, path)
    return path


def test_the_example_applies_and_its_secrets_leave_the_boot_partition(seed: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    record = apply_seed(seed, state)
    assert record["bridge_url"] == "https://bridge.example.org" and record["hostname"] == "invigil-room12-01"
    assert (state / "enrol-code").read_text() == "ABCDEFGHJKMN\n"
    assert stat.S_IMODE((state / "enrol-code").stat().st_mode) == 0o600
    keyfile = (state / WIFI_KEYFILE).read_text()
    assert "ssid=exam-hall\n" in keyfile and "psk=correct horse battery staple\n" in keyfile
    assert stat.S_IMODE((state / WIFI_KEYFILE).stat().st_mode) == 0o600
    assert (state / "hostname").read_text() == "invigil-room12-01\n"
    assert json.loads((state / "provision.json").read_text())["wifi_country"] == "GB"
    text = seed.read_text()
    assert "correct horse" not in text and "ABCD-EFGH" not in text
    assert "# psk: applied to the unit and removed from this file on" in text
    assert "# Remove this whole section" in text  # the person's comments stay
    scrubbed = tomllib.loads(text)
    assert "psk" not in scrubbed["wifi"] and "enrol_code" not in scrubbed["bridge"]
    assert not [p for p in seed.parent.iterdir() if p.name != seed.name]  # no temp file left on the FAT
    again = apply_seed(seed, state)  # applied again (the unit not enrolled yet): the secrets it holds stay
    assert again["hostname"] == "invigil-room12-01" and (state / WIFI_KEYFILE).read_text() == keyfile
    assert (state / "enrol-code").is_file()


def test_every_problem_is_named_and_nothing_is_written(seed: Path, tmp_path: Path) -> None:
    seed.write_text('hostname = "Room 12"\ncolour = "red"\n[bridge]\nurl = "ftp://x"\nenrol_code = "ABC"\n'
                    '[wifi]\nssid = "hall"\npsk = "short"\ncountry = "gb"\n')
    with pytest.raises(SeedError) as caught:
        apply_seed(seed, tmp_path / "state")
    message = str(caught.value)
    for field in ("hostname", "colour", "bridge.url", "bridge.enrol_code", "wifi.psk", "wifi.country"):
        assert f"  {field}: " in message, (field, message)
    assert str(seed) in message and "6 problem(s)" in message
    assert not (tmp_path / "state").exists() and "short" in seed.read_text()


def test_unreadable_seeds_say_why(seed: Path, tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="cannot read"):
        read_seed(tmp_path / "absent.toml")
    seed.write_text("hostname = \n")
    with pytest.raises(SeedError, match="not valid TOML"):
        read_seed(seed)


def test_a_scrubbed_seed_for_another_network_needs_its_passphrase(seed: Path, tmp_path: Path) -> None:
    apply_seed(seed, tmp_path / "state")
    seed.write_text(seed.read_text().replace('ssid = "exam-hall"', 'ssid = "library"'))
    with pytest.raises(SeedError, match=r"wifi\.psk: missing"):
        apply_seed(seed, tmp_path / "state")


def test_a_wired_unit_has_no_wifi_and_an_odd_ssid_is_escaped(seed: Path, tmp_path: Path) -> None:
    seed.write_text('hostname = "unit-7"\n[bridge]\nurl = "http://10.0.0.2:8000/"\n')
    record = apply_seed(seed, tmp_path / "state")
    assert record["bridge_url"] == "http://10.0.0.2:8000" and record["wifi_ssid"] is None
    assert not (tmp_path / "state" / WIFI_KEYFILE).exists()
    assert seed.read_text() == 'hostname = "unit-7"\n[bridge]\nurl = "http://10.0.0.2:8000/"\n'  # no secret: as is
    wifi = read_seed(EXAMPLE).wifi
    assert wifi is not None
    odd = wifi.model_copy(update={"ssid": " a;b\\c"})
    assert "ssid=\\sa\\;b\\\\c\n" in wifi_keyfile(odd, "12345678")


def test_the_seed_command(seed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--seed", str(seed), "--root", str(tmp_path / "state")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["hostname"] == "invigil-room12-01" and "psk" not in json.dumps(printed)
    assert main(["seed", "--seed", str(tmp_path / "none.toml"), "--root", str(tmp_path / "state")]) == 2
    assert "cannot read the seed file" in capsys.readouterr().err


def test_dotted_and_quoted_secret_keys_are_scrubbed_too(seed: Path, tmp_path: Path) -> None:
    seed.write_text('hostname = "unit-7"\nbridge.url = "https://b.example"\nbridge."enrol_code" = "ABCDEFGHJKMN"\n'
                    'wifi.ssid = "hall"\nwifi.psk = "12345678"\nwifi.country = "FR"\n')
    apply_seed(seed, tmp_path / "state")
    assert "12345678" not in seed.read_text() and "ABCDEFGHJKMN" not in seed.read_text()
    assert (tmp_path / "state" / "enrol-code").read_text() == "ABCDEFGHJKMN\n"
