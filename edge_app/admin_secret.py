"""The unit's local admin secret: made at first boot, shown once, kept only as an scrypt hash.

:func:`ensure` creates the secret when the unit has none and returns it (the only time the plain secret
exists: the first-boot step prints it on the label or the console); afterwards only
``<data_dir>/admin_secret.json`` (mode 0600, written atomically) holds its salted scrypt hash, and
:func:`verify` checks a typed secret against it in constant time. There is no default secret: a unit
without the file lets no one in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

from edge_app.atomic import write_bytes_atomic

FILE = "admin_secret.json"
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a label and typed by hand
GROUPS, GROUP = 4, 5  # XXXXX-XXXXX-XXXXX-XXXXX: about 99 bits
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB and tens of ms on a Pi: cheap once, slow to guess
MAX_TYPED = 200  # characters; anything longer is not a secret


class SecretError(RuntimeError):
    """The stored hash cannot be read or is not ours."""


def path_of(data_dir: Path) -> Path:
    return Path(data_dir) / FILE


def exists(data_dir: Path) -> bool:
    return path_of(data_dir).is_file()


def normalize(typed: str) -> str:
    """The canonical form of a typed secret: upper case, without spaces and dashes."""
    return "".join(c for c in typed.upper() if c not in " -\t")


def generate() -> str:
    """A new secret in groups of five characters."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP))
    return "-".join(chars[i:i + GROUP] for i in range(0, len(chars), GROUP))


def _hash(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(normalize(secret).encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=32)


def store(data_dir: Path, secret: str) -> None:
    """Keep the scrypt hash of ``secret`` (replacing any earlier one), readable by the unit's user only."""
    salt = secrets.token_bytes(16)
    record = {"scheme": "scrypt", **SCRYPT, "salt": base64.b64encode(salt).decode("ascii"),
              "hash": base64.b64encode(_hash(secret, salt, **SCRYPT)).decode("ascii")}
    write_bytes_atomic(path_of(data_dir), json.dumps(record).encode("utf-8") + b"\n", mode=0o600)


def ensure(data_dir: Path) -> str | None:
    """Create the secret if the unit has none: the new secret (show it once), else None."""
    if exists(data_dir):
        return None
    secret = generate()
    store(data_dir, secret)
    return secret


def _record(data_dir: Path) -> dict[str, Any]:
    try:
        record = json.loads(path_of(data_dir).read_text(encoding="utf-8"))
        if record.get("scheme") != "scrypt":
            raise SecretError(f"{path_of(data_dir)}: unknown scheme {record.get('scheme')!r}")
        record["salt"], record["hash"] = base64.b64decode(record["salt"]), base64.b64decode(record["hash"])
        for key in ("n", "r", "p"):
            record[key] = int(record[key])
        return record
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SecretError(f"{path_of(data_dir)}: unreadable ({exc})") from None


def verify(data_dir: Path, typed: str) -> bool:
    """True when ``typed`` is the unit's secret; False for any other, and when the unit has none."""
    if not typed or len(typed) > MAX_TYPED or not exists(data_dir):
        return False
    record = _record(data_dir)
    candidate = _hash(typed, record["salt"], record["n"], record["r"], record["p"])
    return hmac.compare_digest(candidate, record["hash"])
