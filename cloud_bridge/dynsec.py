"""The accounts and rights file of Mosquitto's dynamic-security plugin, generated from the bridge's registry.

Mosquitto 2.0's ``acl_file`` grants every SUBSCRIBE and only checks each delivery, so a unit could join the
bridge's ``$share/bridge`` group and have the broker hand it other units' events, which the delivery check
then drops; and its ``password_file`` lets any account connect with any client id, taking over another
unit's or a bridge consumer's session. The dynamic-security plugin closes both (measured on 2.0.11 in
tests/bridge/test_dynsec.py):

- every account except the bridge's is bound to one client id, its own user name: a unit that connects with
  another client id is refused (Not authorized) and the client holding that id stays connected;
- SUBSCRIBE is checked against the full filter, ``$share/<group>/`` included: only the bridge role may
  subscribe to ``$share/bridge/invigil/v1/...``; a unit may subscribe only to its own ``cmd/#``;
- anything not granted is denied (publish, subscribe, delivery); anonymous clients are refused.

Bridge client ids (``<client_prefix>-<n>``) are reserved by construction: no other account may connect with a
client id other than its own name, and :func:`render_dynsec` refuses an account named like a bridge client.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from edge_app.protocol import PREFIX

if TYPE_CHECKING:
    from cloud_bridge.broker import BrokerUser

SHARE_GROUP = "bridge"  # the bridge consumers' shared-subscription group (cloud_bridge.mqtt subscribes to it)
DEVICE_WRITES = ("event", "pair", "stats", "status")  # what a unit publishes under its own topic
CONTROL_TOPIC = "$CONTROL/dynamic-security"  # the plugin's control topic (admin accounts only)
SALT_BYTES, HASH_BYTES = 12, 64  # the plugin's PBKDF2-SHA512 salt and hash sizes (as mosquitto_passwd)


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def _reads(topic_filter: str) -> list[dict[str, Any]]:
    """Subscribe to ``topic_filter`` (or narrower), receive what matches it, unsubscribe again."""
    return [_acl("subscribePattern", topic_filter), _acl("publishClientReceive", topic_filter),
            _acl("unsubscribePattern", topic_filter)]


def role_acls(user: BrokerUser) -> list[dict[str, Any]]:
    """The ACL entries of one account's role."""
    if user.role == "bridge":
        everything = f"{PREFIX}/#"
        shared = f"$share/{SHARE_GROUP}/{everything}"
        return [_acl("publishClientSend", everything), *_reads(everything),
                _acl("subscribePattern", shared), _acl("unsubscribePattern", shared)]
    if user.role == "proctor":
        return _reads(f"{PREFIX}/proctor/#")
    if user.role == "control":  # the bridge's broker admin (cloud_bridge.broker_admin): accounts, nothing else
        return [_acl("publishClientSend", f"{CONTROL_TOPIC}/#"), *_reads(f"{CONTROL_TOPIC}/#")]
    own = f"{PREFIX}/dev/{user.name}"
    return [*(_acl("publishClientSend", f"{own}/{leaf}") for leaf in DEVICE_WRITES), *_reads(f"{own}/cmd/#")]


def _credentials(user: BrokerUser) -> dict[str, Any]:
    """The plugin's password fields from a ``$7$<iterations>$<salt>$<hash>`` line (same PBKDF2-SHA512)."""
    parts = user.password_hash.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise ValueError(f"user {user.name!r}: only $7$ (PBKDF2-SHA512) hashes can be used by the "
                         "dynamic-security plugin; make a new password with hash_password()")
    try:
        salt, digest = base64.b64decode(parts[3], validate=True), base64.b64decode(parts[4], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"user {user.name!r}: the password hash is not valid base64: {exc}") from None
    if len(salt) != SALT_BYTES or len(digest) != HASH_BYTES:
        raise ValueError(f"user {user.name!r}: the hash needs a {SALT_BYTES}-byte salt and a {HASH_BYTES}-byte "
                         f"digest, not {len(salt)} and {len(digest)}")
    return {"password": parts[4], "salt": parts[3], "iterations": int(parts[2])}


def render_dynsec(users: Sequence[BrokerUser], bridge_client_prefixes: Iterable[str] = ()) -> str:
    """The plugin's JSON config for ``users`` (already checked and sorted by name), deny by default.

    ``bridge_client_prefixes``: the bridge processes' ``client_prefix`` values; an account other than the
    bridge's whose name starts with ``<prefix>-`` could take a bridge client id, so it is refused."""
    prefixes = tuple(f"{prefix}-" for prefix in bridge_client_prefixes)
    clients, roles = [], []
    for user in users:
        if user.role != "bridge" and prefixes and user.name.startswith(prefixes):
            raise ValueError(f"user {user.name!r} ({user.role}) is named like a bridge client id "
                             f"({', '.join(p + '<n>' for p in prefixes)}): choose another name")
        rolename = f"{user.role}-{user.name}"
        roles.append({"rolename": rolename, "acls": role_acls(user)})
        client: dict[str, Any] = {"username": user.name, "textname": user.role, **_credentials(user),
                                  "roles": [{"rolename": rolename, "priority": 0}], "groups": []}
        if user.role != "bridge":  # bridge workers connect with several client ids; everyone else with one
            client["clientid"] = user.name
        clients.append(client)
    config = {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False, "subscribe": False,
                             "unsubscribe": False},
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(config, indent=1, sort_keys=True) + "\n"
