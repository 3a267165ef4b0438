"""The bridge's root config: parsing, environment overrides, paths relative to the file, error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloud_bridge.config import BridgeConfig, ConfigError, load, parse
from edge_app.protocol.commands import MAX_PHOTO_BYTES

MINIMAL = '[mqtt]\nhost = "127.0.0.1"\n'


def write(folder: Path, text: str, name: str = "bridge.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, MINIMAL), environ={})
    assert config.database_url == f"sqlite:///{tmp_path / 'bridge.db'}"
    assert config.key_file == tmp_path / "bridge.key"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.workers, config.mqtt.client_prefix) == (
        "127.0.0.1", 1883, 2, "invigil-bridge")
    assert (config.http.host, config.http.port, config.http.max_photo_bytes) == ("127.0.0.1", 8080, MAX_PHOTO_BYTES)
    assert (config.pairing_ttl, config.offline_after, config.rules) == (900.0, 30.0, {})
    assert (config.mqtt.batch_max, config.mqtt.batch_wait_ms) == (250, 5.0)


def test_a_full_config(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt.pw").write_text("pw\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    config = load(write(tmp_path, """
database_url = "postgresql+psycopg://bridge@db.internal/invigil"
key_file = "keys/bridge.key"
pairing_ttl = 300
offline_after = 15
[mqtt]
host = "broker.internal"
port = 8883
tls = true
ca_file = "ca.pem"
username = "bridge"
password_file = "secrets/mqtt.pw"
workers = 4
client_prefix = "bridge-a"
session_expiry = 3600
[http]
host = "0.0.0.0"
port = 0
threads = 32
[rules]
preset = "strict"
phone = { min_score = 0.3 }
"""), environ={})
    assert config.database_url == "postgresql+psycopg://bridge@db.internal/invigil"  # not a path: untouched
    assert config.key_file == tmp_path / "keys" / "bridge.key"
    assert config.mqtt.ca_file == tmp_path / "ca.pem" and config.mqtt.password_file == tmp_path / "secrets" / "mqtt.pw"
    assert (config.mqtt.workers, config.mqtt.session_expiry, config.http.port, config.http.threads) == (4, 3600, 0, 32)
    assert config.rules == {"preset": "strict", "phone": {"min_score": 0.3}}
    assert (config.pairing_ttl, config.offline_after) == (300.0, 15.0)


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///data/bridge.db", "sqlite:///{base}/data/bridge.db"),
    ("sqlite:////var/lib/invigil/bridge.db", "sqlite:////var/lib/invigil/bridge.db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_sqlite_paths_are_relative_to_the_file(tmp_path: Path, url: str, expected: str) -> None:
    config = load(write(tmp_path, f'database_url = "{url}"\n' + MINIMAL), environ={})
    assert config.database_url == expected.format(base=tmp_path)


def test_absolute_paths_stay(tmp_path: Path) -> None:
    key = tmp_path / "elsewhere" / "bridge.key"
    config = load(write(tmp_path / "conf", f'key_file = "{key}"\n' + MINIMAL), environ={})
    assert config.key_file == key


@pytest.mark.parametrize(("environ", "check"), [
    ({"INVIGIL_BRIDGE__MQTT__PORT": "1884"}, lambda c: c.mqtt.port == 1884),
    ({"INVIGIL_BRIDGE__MQTT__HOST": "broker-2"}, lambda c: c.mqtt.host == "broker-2"),
    ({"INVIGIL_BRIDGE__MQTT__USERNAME": "1234"}, lambda c: c.mqtt.username == "1234"),  # a text field takes text
    ({"INVIGIL_BRIDGE__MQTT__USERNAME": '"q"'}, lambda c: c.mqtt.username == '"q"'),  # as it is, never JSON
    ({"INVIGIL_BRIDGE__MQTT__TLS": "true", "INVIGIL_BRIDGE__MQTT__PORT": "8883"},
     lambda c: c.mqtt.tls is True and c.mqtt.port == 8883),
    ({"INVIGIL_BRIDGE__RULES__PHONE__MIN_SCORE": "0.3"}, lambda c: c.rules == {"phone": {"min_score": 0.3}}),
    ({"INVIGIL_BRIDGE__DATABASE_URL": "postgresql+psycopg://u@h:5432/db?sslmode=require"},
     lambda c: c.database_url == "postgresql+psycopg://u@h:5432/db?sslmode=require"),
    ({"INVIGIL_BRIDGE__DATABASE_URL": "sqlite:///other.db"}, lambda c: c.database_url.endswith("/conf/other.db")),
    ({"INVIGIL_BRIDGE__KEY_FILE": "k/b.key"}, lambda c: str(c.key_file).endswith("/conf/k/b.key")),
    ({"INVIGIL_BRIDGE__RULES": '{"preset":"relaxed"}'}, lambda c: c.rules == {"preset": "relaxed"}),
    ({"INVIGIL_BRIDGE__HTTP__PORT": "0", "INVIGIL_BRIDGE__HTTP__THREADS": "4"},
     lambda c: (c.http.port, c.http.threads) == (0, 4)),
    ({"INVIGIL_BRIDGE__OFFLINE_AFTER": "12.5"}, lambda c: c.offline_after == 12.5),
    ({"INVIGIL_OTHER": "x", "INVIGIL_BRIDGE_PORT": "1"}, lambda c: c.mqtt.port == 1883),  # not overrides
])
def test_environment_overrides(tmp_path: Path, environ: dict[str, str], check: Any) -> None:
    assert check(load(write(tmp_path / "conf", MINIMAL), environ=environ))


def test_an_override_can_fill_a_missing_section(tmp_path: Path) -> None:
    config = load(write(tmp_path, "pairing_ttl = 60\n"), environ={"INVIGIL_BRIDGE__MQTT__HOST": "10.0.0.5"})
    assert config.mqtt.host == "10.0.0.5"


@pytest.mark.parametrize(("text", "environ", "problems"), [
    ("", {}, ["mqtt: Field required"]),
    (MINIMAL + "extra = 1\n", {}, ["extra: Extra inputs are not permitted"]),
    ("port = 1\n" + MINIMAL, {}, ["port: Extra inputs"]),
    ('[mqtt]\nhost = "h"\nport = 0\nworkers = 99\n', {}, ["mqtt.port:", "mqtt.workers:"]),
    ('[mqtt]\nhost = "h"\nclient_prefix = "a b"\n', {}, ["mqtt.client_prefix:"]),
    ('[mqtt]\nhost = "h"\nbatch_max = 0\nbatch_wait_ms = -1\n', {}, ["mqtt.batch_max:", "mqtt.batch_wait_ms:"]),
    ('[mqtt]\nhost = "h"\nca_file = "ca.pem"\n', {}, ["mqtt.ca_file:", "is not a file"]),
    ('[mqtt]\nhost = "h"\npassword_file = "missing"\nusername = "u"\n', {}, ["mqtt.password_file:"]),
    (MINIMAL + f"[http]\nmax_photo_bytes = {MAX_PHOTO_BYTES + 1}\n", {}, ["http.max_photo_bytes:"]),
    ("pairing_ttl = 0\n" + MINIMAL, {}, ["pairing_ttl:"]),
    (MINIMAL, {"INVIGIL_BRIDGE__MQTT__PORT": "high"}, ["mqtt.port:"]),
    (MINIMAL, {"INVIGIL_BRIDGE__NOPE": "1"}, ["nope: Extra inputs"]),
    (MINIMAL, {"INVIGIL_BRIDGE__HTTP": "port=1"}, ["INVIGIL_BRIDGE__HTTP: expected JSON"]),
    # rules a unit would refuse (it checks them with its own RulesConfig) are refused at start, naming the field
    (MINIMAL + "[rules]\nphone = { min_s = 1.5 }\n", {}, ["rules: Value error", "phone.min_s: Extra inputs"]),
    (MINIMAL, {"INVIGIL_BRIDGE__RULES": '{"preset":"lenient"}'}, ["preset: Input should be 'strict'"]),
    (MINIMAL, {"INVIGIL_BRIDGE__RULES__GAZE_AWAY__YAW_DEG": "120"}, ["gaze_away.yaw_deg: Input should be less"]),
])
def test_errors_name_the_file_and_every_field(tmp_path: Path, text: str, environ: dict[str, str],
                                              problems: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, environ=environ)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for problem in problems:
        assert problem in message


def test_an_override_below_a_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bridge\.toml: INVIGIL_BRIDGE__PAIRING_TTL__X: pairing_ttl is not a sec"):
        load(write(tmp_path, "pairing_ttl = 60\n" + MINIMAL), environ={"INVIGIL_BRIDGE__PAIRING_TTL__X": "1"})


@pytest.mark.parametrize(("text", "problem"), [
    (None, "cannot read the config"),
    ("[mqtt\n", "not valid TOML"),
    ("\udcff", "not valid TOML"),
])
def test_unreadable_files(tmp_path: Path, text: str | None, problem: str) -> None:
    path = tmp_path / "bridge.toml"
    if text is not None:
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError, match=problem):
        load(path, environ={})


def test_parse_without_a_base_keeps_paths(tmp_path: Path) -> None:
    config = parse({"mqtt": {"host": "h"}, "key_file": "rel.key"}, environ={})
    assert isinstance(config, BridgeConfig) and config.key_file == Path("rel.key")
    assert config.database_url == "sqlite:///bridge.db"


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "cloud_bridge" / "bridge.example.toml"
    config = load(example, environ={})
    assert config.mqtt.workers == 2 and config.rules == {"preset": "standard"}
    assert config.key_file == example.parent / "bridge.key"  # relative to the file, not the working folder
