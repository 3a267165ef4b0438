"""Tables: devices (registry, chain state, health), events (unique by event id), dead letters (with a reason),
exam sessions and their pairing, proctor alerts (what proctors see), evidence snapshots, API tokens and the
outbox of messages the bridge publishes."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Device(Base):
    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(14), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)  # Ed25519, PEM
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # every event up to this one is stored
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # online / offline / unknown
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)  # epoch seconds, any message
    mqtt_password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)  # Mosquitto $7$ hash
    status_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # when status last changed
    stats: Mapped[str | None] = mapped_column(Text, nullable=True)  # the last heartbeat, JSON
    stats_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_device_seq", "device_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(32), unique=True)  # idempotency: one row per event
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    time_ms: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    phase: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float] = mapped_column(Float)
    alert_id: Mapped[str] = mapped_column(String(32), index=True)  # the start event's id (its own for a start)
    evidence: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # gap / replayed / broken_chain, or disk_full / store_error (an events_refused report: see Gap)
    flag: Mapped[str | None] = mapped_column(String(16), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(32), default="")  # the event's h: checked against its neighbour
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[float] = mapped_column(Float)


class DeadLetter(Base):
    """A rejected message with its reason; payloads above a cap keep only their first bytes (``size`` and
    ``sha256`` describe the whole). Under a flood only a sample is kept: DeadLetterTally counts every one."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(24), index=True)
    detail: Mapped[str] = mapped_column(Text)
    received_at: Mapped[float] = mapped_column(Float)
    size: Mapped[int | None] = mapped_column(Integer, nullable=True)  # bytes received (None: kept whole, pre-0006)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # of the whole payload, hex


class DeadLetterTally(Base):
    """Every dead letter counted, per source (the device its topic names, ``-`` for none) and reason."""

    __tablename__ = "dead_letter_tallies"
    __table_args__ = (UniqueConstraint("source", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(14))
    reason: Mapped[str] = mapped_column(String(24))
    count: Mapped[int] = mapped_column(BigInteger)  # messages rejected
    kept: Mapped[int] = mapped_column(BigInteger)  # of them kept as dead letters (the rest: counted only)
    bytes: Mapped[int] = mapped_column(BigInteger)  # their payload bytes
    first_at: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)


class Gap(Base):
    """Events a device sent that the bridge may never have: a hole in its sequence numbers that lasted
    (``missing``; filled when its events arrive after all), or alerts the unit itself could not store and
    reported (``disk_full``, ``store_error``)."""

    __tablename__ = "gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), index=True)
    reason: Mapped[str] = mapped_column(String(24))
    count: Mapped[int] = mapped_column(BigInteger)  # events lost
    first_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # a hole's numbers (refused: none)
    last_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    first_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # the unit's refusals, s since 1970
    last_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    event_id: Mapped[str] = mapped_column(String(32))  # the event after the hole, or the unit's report
    found_at: Mapped[float] = mapped_column(Float)
    # a hole's events that arrived after it was flagged (the unit sent them again after a reconnect), and when
    # the last of them did: then nothing was lost (the event after the hole keeps no ``gap`` flag)
    filled: Mapped[int] = mapped_column(BigInteger, default=0)
    filled_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ExamSession(Base):
    """One candidate's exam session: created by the PC client, paired with a device by its code."""

    __tablename__ = "sessions"

    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    exam_id: Mapped[str] = mapped_column(String(64), index=True)
    candidate_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12), index=True)  # waiting / paired / ended
    pairing_code: Mapped[str | None] = mapped_column(String(8), unique=True, nullable=True)  # None once used
    code_expires_at: Mapped[float] = mapped_column(Float)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.device_id"), index=True, nullable=True)
    photo: Mapped[bytes] = mapped_column(LargeBinary)  # the enrolled photo, JPEG
    rules: Mapped[str | None] = mapped_column(Text, nullable=True)  # rule overrides sent to the device, JSON
    offline_alert: Mapped[str | None] = mapped_column(String(32), nullable=True)  # open device_offline alert
    created_at: Mapped[float] = mapped_column(Float)
    paired_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ProctorAlert(Base):
    """An alert as proctors see it: a paired device event, or device_offline raised by the bridge."""

    __tablename__ = "proctor_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id"), index=True)
    exam_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(14))
    event_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)  # None: the bridge's
    alert_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    phase: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str] = mapped_column(String(8))
    confidence: Mapped[float] = mapped_column(Float)
    time_ms: Mapped[int] = mapped_column(BigInteger)
    evidence: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # who may see a snapshot
    flag: Mapped[str | None] = mapped_column(String(16), nullable=True)
    keyword: Mapped[str | None] = mapped_column(String(18), nullable=True)  # speech_keyword: the word heard
    created_at: Mapped[float] = mapped_column(Float)


class Evidence(Base):
    """A snapshot uploaded by a device, accepted only when a stored event carries its digest."""

    __tablename__ = "evidence"

    digest: Mapped[str] = mapped_column(String(32), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(14))
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[float] = mapped_column(Float)


class ApiToken(Base):
    """A bearer token for the HTTP API; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(12))  # client (PC exam software) / proctor
    label: Mapped[str] = mapped_column(String(64))
    exams: Mapped[str | None] = mapped_column(Text, nullable=True)  # proctor: the exams it may see, JSON list
    created_at: Mapped[float] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxMessage(Base):
    """A message the bridge must publish (a proctor alert, a device command), written in the transaction that
    caused it and marked sent on the broker's PUBACK (cloud_bridge/outbox.py)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # also a command's number c
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    qos: Mapped[int] = mapped_column(Integer)
    retain: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)  # None: not yet acknowledged
