"""The refusal count's reserved file: records numbered and checksummed in two slots, a torn slot ignored,
what was reported not counted again."""

from __future__ import annotations

from pathlib import Path

from edge_app.link.refusals import SLOT, RefusalLog, Refused, pack, unpack


def test_a_record_reads_back_and_a_torn_or_empty_slot_reads_as_none() -> None:
    record = pack(7, Refused(268, 1795438300.0, 1795438390.5, "disk_full"))
    assert len(record) == SLOT
    assert unpack(record) == (7, Refused(268, 1795438300.0, 1795438390.5, "disk_full"))
    assert unpack(bytes(SLOT)) is None
    torn = record[:20] + bytes(SLOT - 20)  # a write cut short
    assert unpack(torn) is None
    flipped = bytearray(record)
    flipped[12] ^= 1  # one bit of the count
    assert unpack(bytes(flipped)) is None


def test_the_count_survives_reopening_and_the_file_is_reserved_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db.refused"
    log = RefusalLog(path, reported=0)
    assert path.stat().st_size == 2 * SLOT and log.current is None
    inode = path.stat().st_ino
    for second in range(5):
        log.add(1000.0 + second, "disk_full")
    log.close()
    assert path.stat().st_ino == inode  # written in place: no new file needed while the disk is full
    again = RefusalLog(path, reported=0)
    assert again.current == Refused(5, 1000.0, 1004.0, "disk_full") and again.number == 5
    assert again.add(1005.0, "store_error") == Refused(6, 1000.0, 1005.0, "store_error")
    again.close()


def test_a_torn_last_write_leaves_the_record_before_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db.refused"
    log = RefusalLog(path, reported=0)
    for second in range(3):
        log.add(1000.0 + second, "disk_full")
    log.close()
    data = bytearray(path.read_bytes())
    latest = (3 % 2) * SLOT
    data[latest + 30] ^= 0xFF  # the power went while record 3 was written
    path.write_bytes(bytes(data))
    assert RefusalLog(path, reported=0).current == Refused(2, 1000.0, 1001.0, "disk_full")


def test_a_reported_record_is_not_pending_and_counting_starts_again_after_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db.refused"
    log = RefusalLog(path, reported=0)
    for second in range(4):
        log.add(1000.0 + second, "disk_full")
    log.close()
    reopened = RefusalLog(path, reported=4)  # the outbox stored the report of record 4
    assert reopened.current is None
    assert reopened.add(2000.0, "disk_full") == Refused(1, 2000.0, 2000.0, "disk_full")
    reopened.close()
    assert RefusalLog(path, reported=4).current == Refused(1, 2000.0, 2000.0, "disk_full")


def test_without_its_file_the_count_is_kept_in_memory(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    log = RefusalLog(blocked / "outbox.db.refused", reported=0)  # cannot be made: counting goes on
    assert log.add(1.0, "disk_full") == Refused(1, 1.0, 1.0, "disk_full")
