"""The outbox: numbering and chaining in one transaction, delete on ack only, killed writers and power cuts
(atomicity and durability), full disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_app.link.outbox import Outbox, OutboxError, Refused
from edge_app.protocol import chain_hash
from tests.need import need

ROOT = Path(__file__).resolve().parents[3]


def make(name: str):  # type: ignore[no-untyped-def]
    def build(seq: int, prev: str) -> tuple[str, str, bytes]:
        return f"{name}-{seq}", "invigil/v1/dev/unit-1/event", json.dumps({"n": seq, "h": prev}).encode()

    return build


def test_events_are_numbered_chained_and_kept_until_acked(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    accepted = [outbox.accept(make("e")) for _ in range(3)]
    assert [seq for _, seq, _ in accepted] == [1, 2, 3]
    payloads = [p for _, _, p in accepted]
    assert [json.loads(p)["h"] for p in payloads] == ["", chain_hash(payloads[0]), chain_hash(payloads[1])]
    assert [row[0] for row in outbox.pending()] == ["e-1", "e-2", "e-3"]
    outbox.ack("e-2")
    assert [row[0] for row in outbox.pending()] == ["e-1", "e-3"] and outbox.count() == 2
    assert outbox.chain_state() == (3, chain_hash(payloads[2]))


def test_reopening_keeps_the_events_and_continues_the_chain(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    _, _, last = outbox.accept(make("a"))
    outbox.close()
    outbox = Outbox(tmp_path / "outbox.db")
    assert outbox.count() == 1
    _, seq, payload = outbox.accept(make("b"))
    assert seq == 2 and json.loads(payload)["h"] == chain_hash(last)


def test_a_failed_build_stores_nothing_and_keeps_the_number(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")

    def broken(seq: int, prev: str) -> tuple[str, str, bytes]:
        raise ValueError("signing failed")

    with pytest.raises(ValueError, match="signing failed"):
        outbox.accept(broken)
    assert outbox.count() == 0 and outbox.accept(make("c"))[1] == 1


def test_a_killed_process_loses_no_accepted_event_and_no_link_of_the_chain(tmp_path: Path) -> None:
    """Atomicity: a process killed while it writes leaves whole transactions only. The page cache survives a
    killed process, so this says nothing of durability (see the power cut below)."""
    path = tmp_path / "outbox.db"
    script = textwrap.dedent(f"""
        import json, sys
        from edge_app.link.outbox import Outbox
        outbox = Outbox(__import__("pathlib").Path({str(path)!r}))
        for i in range(100000):
            event_id, seq, _ = outbox.accept(lambda seq, prev: (f"e-{{seq}}", "t", json.dumps({{"h": prev}}).encode()))
            print(seq, flush=True)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    confirmed = 0
    for line in process.stdout:
        confirmed = int(line)
        if confirmed >= 200:
            break
    process.send_signal(signal.SIGKILL)  # no clean shutdown, as when the power goes
    process.wait(timeout=10)
    process.stdout.close()
    outbox = Outbox(path)
    rows = outbox.pending(limit=1_000_000)
    assert len(rows) >= confirmed  # everything reported accepted is there
    previous = ""
    for _, _, payload in rows:
        assert json.loads(payload)["h"] == previous
        previous = chain_hash(payload)
    assert outbox.chain_state() == (len(rows), previous)


def test_the_outbox_syncs_every_commit(tmp_path: Path) -> None:
    """WAL with synchronous FULL (or EXTRA): each commit syncs the log, so accept() returns after the disk has
    it; NORMAL would sync only at checkpoints and lose the last events to a power cut."""
    outbox = Outbox(tmp_path / "outbox.db")
    assert outbox._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] in (2, 3)  # FULL, EXTRA


@pytest.fixture(scope="module")
def powercut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/edge/link/powercut.c built: an LD_PRELOAD library that keeps what each fsync made durable."""
    need(shutil.which("cc") is not None, "a C compiler (cc) is not installed: apt-get install gcc libc6-dev")
    library = tmp_path_factory.mktemp("powercut") / "libpowercut.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(Path(__file__).with_name("powercut.c")),
                    "-ldl"], check=True, capture_output=True, timeout=120)
    return library


def after_power_cut(folder: Path, names: list[str], into: Path) -> None:
    """The files of ``names`` in ``folder`` as a power cut leaves them: their last synced content, or none."""
    into.mkdir()
    for name in names:
        synced = folder / f"{name}.synced"
        if synced.exists():
            shutil.copyfile(synced, into / name)


def test_a_power_cut_loses_no_accepted_event(tmp_path: Path, powercut: Path) -> None:
    """Durability: the writer runs with every unsynced write thrown away at its end (tests/edge/link/powercut.c),
    as a power cut throws away the page cache; every event accept() returned is still there, chained."""
    folder = tmp_path / "unit"
    script = textwrap.dedent(f"""
        import json, os, pathlib
        from edge_app.link.outbox import Outbox
        outbox = Outbox(pathlib.Path({str(folder / "outbox.db")!r}))
        for _ in range(150):
            _, seq, _ = outbox.accept(lambda seq, prev: (f"e-{{seq}}", "t", json.dumps({{"h": prev}}).encode()))
            print(seq, flush=True)
        os._exit(0)  # the power goes: no close, no checkpoint
    """)
    environ = {**os.environ, "LD_PRELOAD": str(powercut), "POWERCUT_DIR": str(folder)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    confirmed = [int(line) for line in done.stdout.split()]
    assert confirmed == list(range(1, 151))
    assert (folder / "outbox.db-wal.synced").exists(), "the shim saw no sync of the log"
    after_power_cut(folder, ["outbox.db", "outbox.db-wal"], tmp_path / "after")
    outbox = Outbox(tmp_path / "after" / "outbox.db")
    rows = outbox.pending(limit=1_000_000)
    assert [row[0] for row in rows] == [f"e-{seq}" for seq in confirmed]  # every accepted event survived
    previous = ""
    for _, _, payload in rows:
        assert json.loads(payload)["h"] == previous
        previous = chain_hash(payload)
    assert outbox.chain_state() == (150, previous)


def test_a_full_disk_refuses_the_new_event_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    outbox.accept(make("kept"))
    outbox.close()
    script = textwrap.dedent(f"""
        import resource, json
        from pathlib import Path
        from edge_app.link.outbox import Outbox, OutboxError
        outbox = Outbox(Path({str(path)!r}))
        resource.setrlimit(resource.RLIMIT_FSIZE, (Path({str(path)!r}).stat().st_size, resource.RLIM_INFINITY))
        try:
            for _ in range(1000):
                outbox.accept(lambda seq, prev: (f"big-{{seq}}", "t", b"x" * 200000))
        except OutboxError as exc:
            print("refused:", exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGXFSZ, signal.SIG_IGN))
    # the file may not grow (EFBIG, a "disk I/O error" to SQLite); a full disk (ENOSPC) reads "disk full" below
    assert "refused: outbox" in done.stdout and "error: event not stored" in done.stdout, done.stderr
    assert "cannot rollback" not in done.stdout
    outbox = Outbox(path)
    assert outbox.pending()[0][0] == "kept-1"


def test_a_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutboxError, match=r"outbox\.db: cannot open"):
        Outbox(path)


def fill_up(outbox: Outbox) -> None:
    """Cap the file at the pages it has: SQLite's real 'database or disk is full' (SQLITE_FULL) from now on."""
    pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]  # the test's disk
    assert outbox._db.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0] == pages


def test_a_full_disk_is_a_clear_error_that_keeps_what_is_stored_and_counts_the_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    stored = [outbox.accept(make("kept")) for _ in range(3)]
    fill_up(outbox)
    errors = []
    for second in range(40):  # big events: each needs pages the file may not grow
        try:
            outbox.accept(lambda seq, prev: (f"big-{seq}", "t", bytes(5000)), now=1000.0 + second)
        except OutboxError as exc:
            errors.append(str(exc))
    assert len(errors) == 40
    assert all("disk full: event not stored" in e and "cannot rollback" not in e for e in errors), errors[0]
    assert "(40 refused since" in errors[-1]
    assert outbox.refused() == Refused(40, 1000.0, 1039.0, "disk_full")
    assert [row[2] for row in outbox.pending()] == [p for _, _, p in stored]  # nothing stored was touched
    assert outbox.chain_state() == (3, chain_hash(stored[-1][2]))
    with pytest.raises(OutboxError, match="still cannot store"):
        outbox.report_refused(lambda seq, prev, refused: ("report", "t", bytes(5000)))
    assert outbox.refused() == Refused(40, 1000.0, 1039.0, "disk_full")  # a failed report is not a refusal

    outbox._db.execute("PRAGMA max_page_count = 1000000")  # space is back
    reported: list[Refused] = []

    def report(seq: int, prev: str, refused: Refused) -> tuple[str, str, bytes]:
        reported.append(refused)
        return "report", "t", json.dumps({"n": seq, "h": prev, "refused": refused.count}).encode()

    accepted = outbox.report_refused(report)
    assert accepted is not None and accepted[1] == 4
    assert reported == [Refused(40, 1000.0, 1039.0, "disk_full")] and outbox.refused() is None
    assert outbox.report_refused(report) is None  # reported once
    assert outbox.accept(make("after"))[1] == 5


REFUSE_THEN_DIE = """
import json, os, pathlib, sys
from edge_app.link.outbox import Outbox, OutboxError
outbox = Outbox(pathlib.Path(sys.argv[1]))
outbox.accept(lambda seq, prev: (f"kept-{seq}", "t", json.dumps({"n": seq, "h": prev}).encode()))
pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
outbox._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from here on
for second in range(25):
    try:
        outbox.accept(lambda seq, prev: (f"big-{seq}", "t", bytes(5000)), now=1000.0 + second)
    except OutboxError:
        print(second, flush=True)
os._exit(0)  # a restart (or the power going) before space returns: no close
"""


def report(reported: list[Refused]):  # type: ignore[no-untyped-def]
    def build(seq: int, prev: str, refused: Refused) -> tuple[str, str, bytes]:
        reported.append(refused)
        return f"report-{seq}", "t", json.dumps({"n": seq, "h": prev, "refused": refused.count}).encode()

    return build


def test_refusals_survive_a_restart_and_are_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    done = subprocess.run([sys.executable, "-c", REFUSE_THEN_DIE, str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and len(done.stdout.split()) == 25, done.stderr
    outbox = Outbox(path)  # space is back (no page cap after a restart)
    assert outbox.refused() == Refused(25, 1000.0, 1024.0, "disk_full")
    reported: list[Refused] = []
    assert outbox.report_refused(report(reported))[1] == 2  # type: ignore[index]
    assert reported == [Refused(25, 1000.0, 1024.0, "disk_full")]
    outbox.close()
    outbox = Outbox(path)  # restarted after the report: nothing to report again
    assert outbox.refused() is None and outbox.report_refused(report(reported)) is None
    fill_up(outbox)
    with pytest.raises(OutboxError):
        outbox.accept(lambda seq, prev: ("big", "t", bytes(5000)), now=3000.0)
    outbox.close()
    assert Outbox(path).refused() == Refused(1, 3000.0, 3000.0, "disk_full")  # counted afresh


def test_refusals_survive_a_power_cut(tmp_path: Path, powercut: Path) -> None:
    """Each refusal is synced before accept() raises: after a power cut the count is all there."""
    folder = tmp_path / "unit"
    environ = {**os.environ, "LD_PRELOAD": str(powercut), "POWERCUT_DIR": str(folder)}
    done = subprocess.run([sys.executable, "-c", REFUSE_THEN_DIE, str(folder / "outbox.db")], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and len(done.stdout.split()) == 25, done.stderr
    after_power_cut(folder, ["outbox.db", "outbox.db-wal", "outbox.db.refused"], tmp_path / "after")
    outbox = Outbox(tmp_path / "after" / "outbox.db")
    assert outbox.refused() == Refused(25, 1000.0, 1024.0, "disk_full")
    assert [row[0] for row in outbox.pending()] == ["kept-1"]
