"""First-boot enrolment with the bridge: ``python -m edge_app enrol --config FILE --code-file FILE``.

The unit makes its Ed25519 key (if it has none) at the config's key path, sends its public half with the
one-time code staff issued and its versions to the bridge's ``POST /api/v1/enrol``, and keeps what comes back,
each file written atomically into ``data_dir``:

  mqtt.password     the unit's broker password (mode 0600; the bridge shows it only this once)
  bridge.pub        the bridge's public key (PEM): commands not signed by it are refused
  broker-ca.pem     the CA certificate(s) the broker's TLS certificate is verified by, when the bridge sends
                    them (a private CA); without them the link trusts the system's CAs and a stale file goes
  enrolment.env     the ``INVIGIL_*`` overrides that make the config's ``[link]`` this enrolment's: device id,
                    broker host, port, TLS (and CA file), user name and password file, bridge key, evidence
                    URL (mode 0600; systemd reads it with ``EnvironmentFile=``)

The code file is removed only once all of them are written. A refusal (its reason from the bridge), an
unreachable bridge or an unusable answer writes nothing but the device key, and the code stays for a retry.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from edge_app.atomic import write_bytes_atomic
from edge_app.config import EdgeConfig
from edge_app.protocol import DEVICE_ID
from edge_app.protocol.keys import load_or_create_key, public_pem
from edge_app.protocol.transport import ca_bundle
from edge_app.versions import PACKAGE, installed_version, model_version

ENV_FILE, PASSWORD_FILE, BRIDGE_KEY_FILE = "enrolment.env", "mqtt.password", "bridge.pub"
CA_FILE = "broker-ca.pem"  # the broker's CA, when the bridge names one (public: 0644)
PROVISION = "provision.json"  # written by `python -m edge_app seed` beside the code (edge_app/seed.py)
TIMEOUT = 30.0
HOST = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[?[0-9A-Fa-f:.]{2,45}\]?)$")
PLAIN = re.compile(r"^[A-Za-z0-9._:/@+,=-]*$")  # an env-file value needing no quotes
REFUSALS = {  # what staff should do, by the bridge's reason
    "unknown_code": "check the code in the seed file, or ask staff for a new one",
    "used_code": "ask staff for a new code",
    "expired_code": "ask staff for a new code",
    "bad_code": "check the code in the seed file (12 characters)",
    "device_exists": "that device id is taken: enrol without --device-id, or with another id",
    "wrong_device": "the code is for another device id: enrol with that id, or ask staff for a new code",
    "broker_unavailable": "the bridge could not reach its broker: the code stays usable, try again later",
    "rate_limited": "try again in a minute",
}


class EnrolError(RuntimeError):
    """An enrolment that did not happen; ``reason`` is the bridge's (unknown_code, used_code, ...) or local
    (unreachable, bad_answer, no_code, no_bridge_url, config)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def software_version() -> str:
    """The running release's version (edge_app.versions); EnrolError when nothing names it."""
    found = installed_version()
    if found is None:
        raise EnrolError("config", f"the software version is unknown: neither the release's manifest nor the "
                         f"installed {PACKAGE} package names it")
    return found


def read_code(path: Path) -> str:
    try:
        code = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise EnrolError("no_code", f"cannot read the enrolment code {path}: {exc.strerror}") from None
    if not code:
        raise EnrolError("no_code", f"{path} holds no enrolment code")
    return code


def provisioned_url(code_file: Path) -> str:
    """The bridge URL of the seed (``provision.json`` beside the code file)."""
    path = code_file.parent / PROVISION
    try:
        url = json.loads(path.read_text(encoding="utf-8"))["bridge_url"]
    except (OSError, ValueError, KeyError, TypeError):
        raise EnrolError("no_bridge_url", f"no bridge address: {path} names none; give --bridge-url") from None
    if not isinstance(url, str) or not re.match(r"^https?://", url):
        raise EnrolError("no_bridge_url", f"{path}: bridge_url {url!r} is not an http(s) address")
    return url.rstrip("/")


def post_enrolment(bridge_url: str, body: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
    """POST the enrolment; the bridge's answer, or EnrolError with its refusal or the network's."""
    request = urllib.request.Request(f"{bridge_url}/api/v1/enrol", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            refusal = json.loads(exc.read())
            reason, detail = str(refusal["error"]), str(refusal.get("detail", ""))
        except (ValueError, KeyError, TypeError, OSError):
            raise EnrolError("bad_answer", f"the bridge at {bridge_url} answered HTTP {exc.code} without a "
                             "reason (is this the bridge's address?)") from None
        advice = REFUSALS.get(reason)
        raise EnrolError(reason, f"the bridge refused the enrolment ({reason}): {detail}"
                         + (f"; {advice}" if advice else "")) from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        raise EnrolError("unreachable", f"cannot reach the bridge at {bridge_url}: {why}; the code stays for "
                         "the next try") from None
    except ValueError:
        raise EnrolError("bad_answer", f"the bridge at {bridge_url} did not answer with JSON") from None
    if not isinstance(answer, dict):
        raise EnrolError("bad_answer", f"the bridge at {bridge_url} answered with no enrolment")
    return answer


def _checked(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer's fields, each checked (they end up in an env file and the link's config)."""
    broker = answer.get("broker")
    problems = []
    if not isinstance(answer.get("device_id"), str) or not DEVICE_ID.fullmatch(answer["device_id"]):
        problems.append("device_id")
    if not isinstance(answer.get("username"), str) or not PLAIN.fullmatch(answer["username"]) \
            or not answer["username"]:
        problems.append("username")
    password = answer.get("password")
    if not isinstance(password, str) or not password or not password.isprintable() or password != password.strip():
        problems.append("password")
    if not isinstance(broker, dict) or not isinstance(broker.get("host"), str) or not HOST.fullmatch(broker["host"]) \
            or isinstance(broker.get("port"), bool) or not isinstance(broker.get("port"), int) \
            or not 1 <= broker["port"] <= 65535 or not isinstance(broker.get("tls"), bool):
        problems.append("broker")
    elif "ca_pem" in broker:
        if not broker["tls"]:
            problems.append("broker.ca_pem (sent without tls)")
        else:
            try:
                broker["ca_pem"] = ca_bundle(broker["ca_pem"])
            except ValueError as exc:
                problems.append(f"broker.ca_pem: {exc}")
    try:
        key = load_pem_public_key(str(answer.get("bridge_public_key")).encode())
        if not isinstance(key, Ed25519PublicKey):
            problems.append("bridge_public_key (not Ed25519)")
    except ValueError:
        problems.append("bridge_public_key")
    if problems:
        raise EnrolError("bad_answer", f"the bridge's answer is unusable ({', '.join(problems)}): nothing written")
    return answer


def _env_value(value: str) -> str:
    if PLAIN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def env_lines(answer: dict[str, Any], data_dir: Path, bridge_url: str) -> dict[str, str]:
    """The INVIGIL_* overrides of an enrolment (the unit's config stays as shipped)."""
    broker = answer["broker"]
    return {"INVIGIL_DEVICE_ID": answer["device_id"],
            "INVIGIL_LINK__BROKER__HOST": broker["host"].strip("[]"),
            "INVIGIL_LINK__BROKER__PORT": str(broker["port"]),
            "INVIGIL_LINK__BROKER__TLS": "true" if broker["tls"] else "false",
            **({"INVIGIL_LINK__BROKER__CA_FILE": str(data_dir / CA_FILE)} if broker.get("ca_pem") else {}),
            "INVIGIL_LINK__BROKER__USERNAME": answer["username"],
            "INVIGIL_LINK__BROKER__PASSWORD_FILE": str(data_dir / PASSWORD_FILE),
            "INVIGIL_LINK__BRIDGE_KEY": str(data_dir / BRIDGE_KEY_FILE),
            "INVIGIL_LINK__EVIDENCE_URL": bridge_url}


def read_env(path: Path) -> dict[str, str]:
    """The variables of an env file as :func:`write_enrolment` writes it (and systemd reads it)."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        found[name.strip()] = value
    return found


def write_enrolment(data_dir: Path, answer: dict[str, Any], bridge_url: str) -> Path:
    """Write the password, the bridge key, the broker's CA (if sent) and then the env file (the last: its presence
    means enrolled); on a failure the files written here are removed again. An answer without a CA removes one
    an earlier enrolment left (the new env file no longer names it). The env file's path."""
    data_dir = data_dir.resolve()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    variables = env_lines(answer, data_dir, bridge_url)
    text = (f"# Written by `python -m edge_app enrol` on {stamp}: this unit's enrolment with {bridge_url}.\n"
            "# The unit's service reads it (EnvironmentFile=); enrol again to replace it.\n"
            + "".join(f"{name}={_env_value(value)}\n" for name, value in variables.items()))
    ca_pem = answer["broker"].get("ca_pem")
    files = [(PASSWORD_FILE, answer["password"] + "\n", 0o600), (BRIDGE_KEY_FILE, answer["bridge_public_key"], 0o644),
             *([(CA_FILE, ca_pem, 0o644)] if ca_pem else []), (ENV_FILE, text, 0o600)]
    written: list[Path] = []
    try:
        for name, data, mode in files:
            write_bytes_atomic(data_dir / name, data.encode(), mode=mode)
            written.append(data_dir / name)
    except OSError:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    if not ca_pem:
        with contextlib.suppress(OSError):  # unused from now on: a leftover would only mislead
            (data_dir / CA_FILE).unlink(missing_ok=True)
    return data_dir / ENV_FILE


def key_path(config: EdgeConfig) -> Path:
    """Where the unit's signing key lives: the link's key_file under data_dir (device.key by default)."""
    return config.link.under(config.data_dir, config.link.key_file) if config.link else config.data_dir / "device.key"


def enrol(config: EdgeConfig, code_file: Path, bridge_url: str | None = None, device_id: str | None = None,
          timeout: float = TIMEOUT) -> dict[str, Any]:
    """Enrol this unit; what it became (device id, broker, files). EnrolError when it did not."""
    code = read_code(code_file)
    url = (bridge_url or provisioned_url(code_file)).rstrip("/")
    key = load_or_create_key(key_path(config))
    body: dict[str, Any] = {"code": code, "public_key": public_pem(key), "software_version": software_version(),
                            "model_version": model_version(config)}
    if device_id is not None:
        body["device_id"] = device_id
    answer = _checked(post_enrolment(url, body, timeout))
    try:
        env_file = write_enrolment(config.data_dir, answer, url)
    except OSError as exc:
        raise EnrolError("write_failed", f"enrolled as {answer['device_id']} but its credentials could not be "
                         f"kept in {config.data_dir}: {exc}; ask staff to revoke it and issue a new code") from None
    code_file.unlink(missing_ok=True)
    ca_file = str(env_file.parent / CA_FILE) if answer["broker"].get("ca_pem") else None
    return {"device_id": answer["device_id"], "broker": answer["broker"], "env_file": str(env_file), "ca_file": ca_file,
            "software_version": body["software_version"], "model_version": body["model_version"]}
