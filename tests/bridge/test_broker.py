"""The generated broker configuration: the renderers by table, then a real Mosquitto with its TLS listener.
(What the accounts may do on a real broker is in test_dynsec.py.)"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import os
import shutil
import socket
import ssl
import stat
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTErrorCode

from cloud_bridge.broker import (
    MAX_PACKET_BYTES,
    PLUGIN_NAME,
    BrokerUser,
    TlsFiles,
    checked_users,
    find_plugin,
    hash_password,
    new_password,
    render_conf,
    write_broker_files,
)
from cloud_bridge.dynsec import render_dynsec
from cloud_bridge.mqtt import subscriptions
from edge_app.protocol import device_topic
from edge_app.protocol.commands import MAX_COMMAND_BYTES
from tests.bridge.broker_site import GRANTED_QOS1, NO_SUBSCRIBERS, NOT_AUTHORIZED, Peer, Site, plain_mqtt_is_dropped
from tests.certs import Authority, make_authority, make_client, make_server
from tests.mosquitto import wait_for
from tests.need import need

HASH = hash_password("x", salt=b"0123456789ab")
PLUGIN = Path("/opt/mosquitto/dynsec.so")


# -- pure renderers ----------------------------------------------------------------------------------------

def test_hash_matches_a_line_written_by_mosquitto_passwd() -> None:
    # `mosquitto_passwd -b passwords alice s3cret` wrote this line (Mosquitto 2.0.11)
    written = ("$7$101$Qr8JTS7Tsnybu0dt$fUULiQSLaTtEDWEcTixOVUYwAA14VJCTF5NiBqnKVEiVVvwlWlTL2aIX4MhGrL9LC0rfbl+//"
               "at420l6N/C7Iw==")
    assert hash_password("s3cret", salt=base64.b64decode("Qr8JTS7Tsnybu0dt")) == written


@pytest.mark.parametrize("password", ["s3cret", "pässwörd with spaces", new_password()])
def test_hash_matches_mosquitto_passwd_on_this_machine(tmp_path: Path, password: str) -> None:
    tool = shutil.which("mosquitto_passwd")
    need(tool is not None, "mosquitto_passwd is not installed: apt-get install -y mosquitto")
    subprocess.run([tool, "-c", "-b", str(tmp_path / "pw"), "alice", password], check=True, capture_output=True)
    line = (tmp_path / "pw").read_text().strip()  # alice:$7$101$<salt>$<hash>
    assert f"alice:{hash_password(password, salt=base64.b64decode(line.split('$')[3]))}" == line


def test_hashes_are_salted_and_passwords_random() -> None:
    first, second = hash_password("same"), hash_password("same")
    assert first != second and first.startswith("$7$101$") and hash_password("same", iterations=5).startswith("$7$5$")
    assert len(base64.b64decode(first.split("$")[3])) == 12 and len(base64.b64decode(first.split("$")[4])) == 64
    passwords = {new_password() for _ in range(20)}
    assert len(passwords) == 20
    alphabet = set(string.ascii_letters + string.digits + "-_")
    assert all(set(p) <= alphabet and len(p) * 6 >= 128 for p in passwords)


def conf(host: str = "127.0.0.1", port: int = 1883, data: str = "d", **options: object) -> str:
    return render_conf(host, port, Path(data), Path("dynsec.json"), PLUGIN, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("make, message", [
    (lambda: BrokerUser("Unit 7", HASH, "device"), "device user 'Unit 7': a device id is 3-14"),
    (lambda: BrokerUser("u7", HASH, "device"), "device user 'u7'"),
    (lambda: BrokerUser("bridge", HASH, "admin"), "role 'admin' is unknown"),  # type: ignore[arg-type]
    (lambda: BrokerUser("bridge:1", HASH, "bridge"), "a user name is 1-64 of"),
    (lambda: BrokerUser("bridge/#", HASH, "bridge"), "a user name is 1-64 of"),
    (lambda: BrokerUser("bridge", "s3cret", "bridge"), "not a Mosquitto hash"),
    (lambda: BrokerUser("bridge", "$6$c2FsdA==$aGFzaA==", "bridge"), "not a Mosquitto hash"),  # not PBKDF2
    (lambda: checked_users([BrokerUser("unit-7", HASH, "device"), BrokerUser("unit-7", HASH, "proctor")]),
     "user 'unit-7' is listed twice"),
    (lambda: hash_password(""), "the password is empty"),
    (lambda: conf(data="/my data"), "data_dir '/my data'"),
    (lambda: conf(port=0), "port 0"),
    (lambda: conf(log_dest="stderr\nuser x"), "log_dest"),
    (lambda: conf(host="0.0.0.0"), "plain-TCP listener on 0.0.0.0 would carry passwords in clear text"),
    (lambda: conf(host="192.0.2.7"), "--allow-plaintext"),
    (lambda: TlsFiles(Path("a"), Path("b"), Path("c"), min_version="tlsv1.1"),  # type: ignore[arg-type]
     "TLS version 'tlsv1.1' is not one of tlsv1.2, tlsv1.3"),
])
def test_bad_input_is_refused_with_the_reason(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def directives(text: str) -> dict[str, list[str]]:
    """Directive -> values; also checks each directive line comes after a comment."""
    found: dict[str, list[str]] = {}
    lines = text.splitlines()
    for before, line in itertools.pairwise(lines):
        if line and not line.startswith("#"):
            assert before.startswith("#") or before.split()[0] == line.split()[0] == "log_type", line
            name, _, value = line.partition(" ")
            found.setdefault(name, []).append(value)
    return found


TLS = TlsFiles(Path("/etc/tls/ca.pem"), Path("/etc/tls/server.pem"), Path("/etc/tls/server.key"))
TLS_LINES = {"cafile": ["/etc/tls/ca.pem"], "certfile": ["/etc/tls/server.pem"], "keyfile": ["/etc/tls/server.key"]}


@pytest.mark.parametrize("host, options, expected, absent", [
    ("127.0.0.1", {}, {"listener": ["1883 127.0.0.1"]}, {"user", "cafile", "tls_version"}),
    ("::1", {"user": "mosquitto"}, {"user": ["mosquitto"], "listener": ["1883 ::1"]}, {"cafile"}),
    ("localhost", {}, {"listener": ["1883 localhost"]}, {"cafile"}),
    ("0.0.0.0", {"allow_plaintext": True}, {"listener": ["1883 0.0.0.0"]}, {"cafile"}),  # asked for explicitly
    ("0.0.0.0", {"tls": TLS}, {"listener": ["1883 0.0.0.0"], **TLS_LINES, "tls_version": ["tlsv1.2"],
                               "require_certificate": ["false"]}, {"user"}),
    ("0.0.0.0", {"tls": dataclasses.replace(TLS, require_certificate=True, min_version="tlsv1.3")},
     {**TLS_LINES, "tls_version": ["tlsv1.3"], "require_certificate": ["true"]}, {"user"}),
])
def test_render_conf(host: str, options: dict[str, object], expected: dict[str, list[str]], absent: set[str]) -> None:
    found = directives(render_conf(host, 1883, Path("/var/lib/b"), Path("/etc/b/dynsec.json"), PLUGIN,
                                   **options))  # type: ignore[arg-type]
    common = {"per_listener_settings": ["false"], "allow_anonymous": ["false"], "persistence": ["true"],
              "plugin": [str(PLUGIN)], "plugin_opt_config_file": ["/etc/b/dynsec.json"], "autosave_interval": ["10"],
              "persistence_location": ["/var/lib/b/"], "max_packet_size": [str(MAX_PACKET_BYTES)],
              "log_dest": ["stderr"]}
    assert {name: found.get(name) for name in common | expected} == common | expected
    assert not absent & set(found) and not {"password_file", "acl_file"} & set(found)
    assert MAX_PACKET_BYTES >= MAX_COMMAND_BYTES + 64 * 1024


def test_the_plugin_is_found_next_to_mosquitto() -> None:
    plugin = find_plugin()
    need(plugin is not None, f"Mosquitto's {PLUGIN_NAME} is not installed: apt-get install -y mosquitto")
    assert plugin is not None and plugin.name == PLUGIN_NAME and plugin.is_file()
    assert find_plugin("/nowhere/sbin/mosquitto") is None


def test_write_broker_files_modes_and_contents(tmp_path: Path) -> None:
    plugin = tmp_path / PLUGIN_NAME
    plugin.write_bytes(b"")
    users = [BrokerUser("unit-7", HASH, "device")]
    files = write_broker_files(tmp_path / "b", users, "127.0.0.1", 1883, plugin=plugin)
    assert stat.S_IMODE(files.dynsec.stat().st_mode) == 0o600  # password hashes
    assert stat.S_IMODE(files.conf.stat().st_mode) == 0o644
    assert files.dynsec.read_text() == render_dynsec(users)
    assert files.conf.read_text() == render_conf("127.0.0.1", 1883, files.data_dir, files.dynsec, plugin)
    assert files.data_dir.is_dir()
    for bad, message in (({"users": users * 2}, "listed twice"), ({"host": "0.0.0.0"}, "plain-TCP"),
                         ({"plugin": tmp_path / "missing.so"}, "dynamic-security plugin")):
        arguments: dict[str, object] = {"users": users, "host": "127.0.0.1", "plugin": plugin} | bad
        with pytest.raises(ValueError, match=message):  # nothing changes when the input is bad
            write_broker_files(tmp_path / "b", port=1883, **arguments)  # type: ignore[arg-type]
    assert files.dynsec.read_text() == render_dynsec(users)
    assert sorted(os.listdir(tmp_path / "b")) == ["data", "dynamic-security.json", "mosquitto.conf"]  # no temp files


# -- a real Mosquitto with a generated TLS listener ---------------------------------------------------------

@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return make_authority(tmp_path / "ca")


@pytest.fixture
def tls_site(tmp_path: Path, authority: Authority, request: pytest.FixtureRequest) -> Iterator[Site]:
    """A broker with a TLS listener (options from the test's parameter) and unit-a and the bridge."""
    tls = dataclasses.replace(make_server(authority, tmp_path / "ca"), **getattr(request, "param", {}))
    site = Site(tmp_path / "broker", tls)
    for name, role in (("unit-a", "device"), ("bridge", "bridge")):
        site.add(name, role)  # type: ignore[arg-type]
    site.start()
    yield site
    site.close()


def dropped_before_connack(peer: Peer) -> bool:
    """True when the broker ends ``peer``'s connection (in the TLS handshake or right after) with no CONNACK."""
    try:
        peer.client.connect("127.0.0.1", peer.port, 30)
    except (ssl.SSLError, OSError):
        return True

    def dropped() -> bool:
        try:
            return peer.client.loop(0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS
        except (ssl.SSLError, OSError):
            return True

    wait_for(dropped, what=f"the broker to drop {peer.name}")
    return peer.connack is None


def test_the_tls_listener_carries_the_accounts_and_refuses_plain_mqtt(tls_site: Site) -> None:
    bridge = tls_site.connected("bridge", client_id="invigil-bridge-0")
    assert bridge.subscribe(*subscriptions(0)) == [GRANTED_QOS1] * 4
    unit = tls_site.connected("unit-a")
    assert unit.publish(device_topic("unit-a", "event"), b"over tls") == 0
    wait_for(lambda: bridge.payloads(device_topic("unit-a", "event")) == [b"over tls"], what="the event over TLS")
    assert tls_site.peer("unit-a", client_id="unit-b").connect().value == NOT_AUTHORIZED  # accounts as on any listener
    assert plain_mqtt_is_dropped(tls_site.port, tls_site.passwords["bridge"])


@pytest.mark.parametrize("tls_site", [{"min_version": "tlsv1.3"}], indirect=True)
def test_a_tls_1_3_listener_refuses_tls_1_2(tls_site: Site) -> None:
    assert tls_site.tls is not None
    for maximum, accepted in ((ssl.TLSVersion.TLSv1_2, False), (ssl.TLSVersion.TLSv1_3, True)):
        context = ssl.create_default_context(cafile=str(tls_site.tls.ca_file))
        context.maximum_version = maximum
        with socket.create_connection(("127.0.0.1", tls_site.port), 5) as raw:
            try:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    assert accepted and sock.version() == "TLSv1.3"
            except ssl.SSLError as exc:
                assert not accepted, exc


@pytest.mark.parametrize("tls_site", [{"require_certificate": True}], indirect=True)
def test_require_certificate_refuses_a_client_without_one(tls_site: Site, authority: Authority,
                                                          tmp_path: Path) -> None:
    assert dropped_before_connack(tls_site.peer("unit-a"))  # its password alone is not enough
    stranger = make_client(make_authority(tmp_path / "other", "Other CA"), tmp_path / "other", "unit-a")
    assert dropped_before_connack(tls_site.peer("unit-a", cert=stranger))
    with_cert = tls_site.peer("unit-a", cert=make_client(authority, tmp_path / "clients", "unit-a"))
    assert with_cert.connect().value == 0  # its certificate and its password
    assert with_cert.publish(device_topic("unit-a", "event"), b"x") == NO_SUBSCRIBERS  # accepted
