"""The two outside parties of the demo: the PC exam client (HTTP API) and a proctor reading the alerts topic."""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_app.protocol import proctor_topic


class ApiError(RuntimeError):
    pass


# What the demo's candidate does on the PC, in seconds after pairing: the review timeline shows both angles.
PC_EVENTS = ((3.0, "focus_lost", {"window": "browser"}), (6.0, "focus_back", None), (8.0, "copy_paste", {"chars": 240}),
             (12.0, "second_monitor", {"screens": 2}))


class PcExamClient:
    """What the exam software on the candidate's PC does: create a session, show its QR code, post its own events
    (with the session's pc_token), end it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url.rstrip("/"), token
        self.pc_tokens: dict[str, str] = {}  # session -> its secret for the PC's events
        self.plan = list(PC_EVENTS)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              token: str | None = None) -> tuple[bytes, str]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}") from None

    def create_session(self, exam_id: str, candidate_id: str, photo_jpeg: bytes) -> dict[str, Any]:
        body, _ = self._call("POST", "/api/v1/sessions", {
            "exam_id": exam_id, "candidate_id": candidate_id, "photo": base64.b64encode(photo_jpeg).decode()})
        created = json.loads(body)
        self.pc_tokens[created["session_id"]] = created["pc_token"]
        return created

    def post_events(self, session_id: str, events: list[tuple[str, dict[str, Any] | None]]) -> int:
        """The PC's own events (kind, detail), timed now; how many the bridge stored."""
        now_ms = int(time.time() * 1000)
        body, _ = self._call("POST", f"/api/v1/sessions/{session_id}/pc-events", {"events": [
            {"kind": kind, "t": now_ms, **({"detail": detail} if detail else {})} for kind, detail in events]},
            token=self.pc_tokens[session_id])
        return int(json.loads(body)["stored"])

    def pc_tick(self, session_id: str, since_pairing: float) -> list[str]:
        """Post the demo's PC events that are due; their kinds."""
        due = [(kind, detail) for at, kind, detail in self.plan if at <= since_pairing]
        if due:
            self.plan = [item for item in self.plan if item[0] > since_pairing]
            self.post_events(session_id, due)
        return [kind for kind, _detail in due]

    def session(self, session_id: str) -> dict[str, Any]:
        return json.loads(self._call("GET", f"/api/v1/sessions/{session_id}")[0])

    def qr_png(self, session_id: str) -> bytes:
        return self._call("GET", f"/api/v1/sessions/{session_id}/qr.png")[0]

    def end_session(self, session_id: str) -> dict[str, Any]:
        return json.loads(self._call("POST", f"/api/v1/sessions/{session_id}/end")[0])


class ProctorWatcher:
    """Subscribes to an exam's alerts topic with a proctor account; each alert lands in ``alerts`` (a queue)."""

    def __init__(self, host: str, port: int, username: str, password: str, exam_id: str) -> None:
        self.alerts: queue.Queue[dict[str, Any]] = queue.Queue()
        self.subscribed = threading.Event()
        # the broker binds a proctor account to one client id, its name
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=username, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(username, password)
        self.topic = proctor_topic(exam_id)
        self.client.on_connect = lambda c, *_a: c.subscribe(self.topic, qos=2)  # exactly once from the bridge
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async(host, port, keepalive=10)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError):  # the bridge publishes only JSON
            self.alerts.put(json.loads(message.payload))

    def start(self) -> None:
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
