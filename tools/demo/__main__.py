"""`make demo`: the whole system on this machine, pairing the real way, one scenario played as the camera.

Starts a Mosquitto with generated passwords and ACL, the bridge on SQLite, and a PC exam client that
creates a session and shows its pairing QR code on the "PC screen" of the scenario; the camera unit sees
the code, pairs, receives the enrolled photo, and its alerts reach the proctor topic, which this program
reads like a proctor would. Prints the proctor page address and each alert as it arrives; exits 0 with a
summary when the scenario has played, ending with the address of the session's review page and the paths of its
report (HTML, PDF) and signed export, written under the demo's folder (``--keep`` leaves everything running to
browse the pages).
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2

from edge_app.atomic import write_bytes_atomic
from tools.demo.clients import PcExamClient, ProctorWatcher
from tools.demo.stack import Stack
from tools.fixtures import photo

ROOT = Path(__file__).resolve().parents[2]
EXAM, CANDIDATE = "demo-exam", "cand-0001"
DRAIN_SECONDS = 15.0


def jpeg_of(path: Path) -> bytes:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"error: cannot read the enrolled photo {path}")
    return bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1])


def describe(alert: dict[str, Any]) -> str:
    evidence = f" snapshot {alert['evidence']}" if alert.get("evidence") else ""
    return (f"proctor | {alert['phase']:<6} {alert['kind']:<17} {alert['severity']:<8} "
            f"candidate {alert['candidate']} session {alert['session'][:8]}{evidence}")


def pipe_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put(raw.decode(errors="replace").rstrip())


def run(args: argparse.Namespace) -> int:
    scenario = args.scenarios / args.scenario
    if not (scenario / "truth.json").is_file():
        print(f"error: scenario {scenario} is not rendered: run `make scenarios`", file=sys.stderr)
        return 2
    truth = json.loads((scenario / "truth.json").read_text())
    shutil.rmtree(args.workdir, ignore_errors=True)
    stack = Stack(args.workdir)
    stack.prepare(scenario)
    received: list[dict[str, Any]] = []
    watcher = None
    try:
        stack.start_broker()
        stack.start_bridge()
        watcher = ProctorWatcher("127.0.0.1", stack.broker_port, "proctor", stack.proctor_password, EXAM)
        watcher.start()
        if not watcher.subscribed.wait(10):
            print("error: the proctor could not subscribe to the alerts topic", file=sys.stderr)
            return 1
        pc = PcExamClient(stack.url, stack.tokens["client"])
        session = pc.create_session(EXAM, CANDIDATE, jpeg_of(photo(truth["enrolled"])))
        write_bytes_atomic(stack.screen, pc.qr_png(session["session_id"]))
        page = f"{stack.url}/proctor/{EXAM}?token={stack.tokens['proctor']}"
        print(f"Invigil demo: scenario {args.scenario!r} ({truth['duration']:.0f} s) as the camera")
        print(f"  proctor page: {page}")
        print(f"  session {session['session_id'][:8]} for {CANDIDATE}: the PC screen shows pairing code "
              f"{session['pairing_code']} as a QR code", flush=True)
        edge = stack.start_edge(text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=pipe_lines, args=(edge.stdout, lines), daemon=True).start()
        paired_at = None
        ended_at = None
        while True:
            while not lines.empty():
                print(f"unit    | {lines.get()}", flush=True)
            while not watcher.alerts.empty():
                received.append(watcher.alerts.get())
                print(describe(received[-1]), flush=True)
            if paired_at is None and pc.session(session["session_id"])["state"] == "paired":
                paired_at = time.monotonic()
                stack.screen.unlink(missing_ok=True)  # the exam software hides the code once paired
                print(f"pc      | paired with {stack.device_id}: the QR code is hidden", flush=True)
            if paired_at is not None:
                for kind in pc.pc_tick(session["session_id"], time.monotonic() - paired_at):
                    print(f"pc      | {kind.replace('_', ' ')} (posted to the bridge)", flush=True)
            if edge.poll() is not None and ended_at is None:
                ended_at = time.monotonic()
            open_alerts = {a["alert"] for a in received if a["phase"] == "start"} - \
                {a["alert"] for a in received if a["phase"] == "end"}
            if ended_at is not None and (not open_alerts or time.monotonic() - ended_at > DRAIN_SECONDS) \
                    and lines.empty():
                break
            time.sleep(0.2)
        pc.post_events(session["session_id"], [("answer_submitted", {"question": "all"})])
        pc.end_session(session["session_id"])
        review = review_outputs(stack, session["session_id"])
        return summary(truth, received, paired_at is not None, edge.returncode, stack, page, args.keep, review)
    finally:
        if watcher is not None:
            watcher.stop()
        stack.stop()


def review_outputs(stack: Stack, session_id: str) -> list[str]:
    """After the session: a staff login for the review pages, the session's report (HTML and PDF) and its signed
    export under the demo's folder; the lines that say where they are."""
    from cloud_bridge.broker import new_password
    from cloud_bridge.config import load
    from cloud_bridge.export import export_session
    from cloud_bridge.report import write_reports
    from cloud_bridge.staff import Staff
    from cloud_bridge.store import Store
    from edge_app.protocol.keys import load_or_create_key

    config = load(stack.bridge_config)
    store = Store(config.database_url)
    try:
        password = new_password()
        Staff(store).create("demo-reviewer", password, "cli")
        write_bytes_atomic(stack.root / "secrets" / "reviewer.password", (password + "\n").encode(), mode=0o600)
        reports = write_reports(store, session_id, stack.root / "reports", config.review)
        export = stack.root / "reports" / f"session-{session_id}.jsonl"
        write_bytes_atomic(export, export_session(store, session_id, load_or_create_key(config.key_file)))
    finally:
        store.close()
    return [f"  review page: {stack.url}/review/sessions/{session_id} (log in as demo-reviewer, password in "
            f"{stack.root / 'secrets' / 'reviewer.password'})",
            *(f"  report: {path}" for path in reports),
            f"  signed export: {export} (python -m cloud_bridge verify {export})"]


def summary(truth: dict[str, Any], received: list[dict[str, Any]], paired: bool, edge_code: int | None,
            stack: Stack, page: str, keep: bool, review: list[str] | None = None) -> int:
    expected = sorted({a["kind"] for a in truth["alerts"]})
    raised = sorted({a["kind"] for a in received if a["phase"] == "start"})
    missing = [kind for kind in expected if kind not in raised]
    print("\nsummary")
    print(f"  paired by QR code: {'yes' if paired else 'NO'}; camera unit exit code {edge_code}")
    print(f"  alerts at the proctor topic: {sum(a['phase'] == 'start' for a in received)} started, "
          f"{sum(a['phase'] == 'end' for a in received)} ended; kinds {', '.join(raised) or 'none'}")
    print(f"  the scenario's truth: {', '.join(expected) or 'no alert'}; missing: {', '.join(missing) or 'none'}")
    print(f"  with a snapshot: {sum(1 for a in received if a.get('evidence'))}")
    for line in review or []:  # the review page and the report, last
        print(line)
    if keep:
        print(f"\nstill running for the page: {page}\n(Ctrl-C to stop)", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_a: stop.set())
        signal.signal(signal.SIGTERM, lambda *_a: stop.set())
        stop.wait()
    ok = paired and edge_code == 0 and not missing
    if not ok:
        print(f"\ndemo failed; logs in {stack.logs}", file=sys.stderr)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except (RuntimeError, OSError) as exc:  # no Mosquitto, a port taken, a child that would not start
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="second_person", help="a rendered scenario (default: %(default)s)")
    parser.add_argument("--scenarios", type=Path, default=ROOT / "build" / "scenarios")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "demo")
    parser.add_argument("--keep", action="store_true", help="keep everything running after the scenario")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
