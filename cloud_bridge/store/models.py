"""Tables: devices (registry, chain state, health), events (unique by event id), dead letters (with a reason),
exam sessions and their pairing, proctor alerts (what proctors see), evidence snapshots, API tokens, the
outbox of messages the bridge publishes; the fleet: units' versions and revocation, enrolment codes,
staff accounts and their logins, the audit log of staff actions and fleet settings; review: PC events, exam
assignments and policies, decisions (append-only), evidence releases and purges (append-only)."""

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
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"))  # ix_events_device_seq serves it
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
    pc_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # SHA-256 of the PC's secret


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
    caused it and marked sent on the broker's PUBACK, or for QoS 2 its PUBCOMP (cloud_bridge/outbox.py). A QoS 2
    row's packet id is committed before its PUBLISH leaves and held until the PUBCOMP is recorded
    (cloud_bridge/exactly_once.py): unique per publisher client among the rows holding one."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_publisher_packet_id", "publisher", "packet_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)  # also a command's number c
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    qos: Mapped[int] = mapped_column(Integer)
    retain: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)  # None: not yet acknowledged
    packet_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # QoS 2: chosen by the bridge, 1..65535
    publisher: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the client id whose session holds it
    state: Mapped[str] = mapped_column(String(10), default="new", server_default="new")  # new/published/released


class Unit(Base):
    """A unit's fleet record beside its registry row: versions it enrolled with, and its revocation."""

    __tablename__ = "units"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)
    software_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enrolled_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: added with `device add`
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: not revoked
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class EnrolCode(Base):
    """A one-time enrolment code issued by staff; only its SHA-256 is kept."""

    __tablename__ = "enrol_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(14), nullable=True)  # the id the unit must take, if any
    label: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    used_by: Mapped[str | None] = mapped_column(String(14), nullable=True)  # the device that enrolled with it


class StaffUser(Base):
    """A test-centre staff account (not an API token): its password as an scrypt hash."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # staff (fleet, enrolment, retention, assignments) or reviewer (review only, of assigned exams)
    role: Mapped[str] = mapped_column(String(12), default="staff", server_default="staff")
    # failed logins in a row (a success or an unlock clears them); at fleet.staff_lockout_after the account is
    # locked until locked_until (cloud_bridge/staff.py)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class StaffSession(Base):
    """A staff login: a bearer token (only its SHA-256 kept) valid until ``expires_at``."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class AuditEntry(Base):
    """One staff action (append-only: the database refuses UPDATE and DELETE): who, when, what, on what."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(80))
    detail: Mapped[str] = mapped_column(Text, default="")


class FleetSetting(Base):
    """A fleet-wide setting staff change at run time (``min_software_version``)."""

    __tablename__ = "fleet_settings"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    set_at: Mapped[float] = mapped_column(Float)
    set_by: Mapped[str] = mapped_column(String(64))


class PcEvent(Base):
    """Something the candidate's PC exam client saw (focus lost, screen share stopped...), on the PC's clock."""

    __tablename__ = "pc_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    time_ms: Mapped[int] = mapped_column(BigInteger)  # the PC's clock, ms since 1970
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON, small
    received_at: Mapped[float] = mapped_column(Float)


class ExamAssignment(Base):
    """A reviewer assigned to an exam: they may review its sessions (and no other exam's)."""

    __tablename__ = "exam_assignments"
    __table_args__ = (UniqueConstraint("username", "exam_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    exam_id: Mapped[str] = mapped_column(String(64))


class ExamPolicy(Base):
    """An exam's review and retention policy, set by staff."""

    __tablename__ = "exam_policies"

    exam_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    retention_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    dismissed_grace_hours: Mapped[float] = mapped_column(Float, default=24.0, server_default="24")
    two_reviewers: Mapped[bool] = mapped_column(Boolean, default=False)
    set_at: Mapped[float] = mapped_column(Float)
    set_by: Mapped[str] = mapped_column(String(64))


class Decision(Base):
    """A reviewer's verdict on an alert (or, ``alert_id`` None, the whole session); append-only (the database
    refuses UPDATE and DELETE): a later decision supersedes an earlier one, which stays."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_session_alert", "session_id", "alert_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id"))
    alert_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    verdict: Mapped[str] = mapped_column(String(16))  # confirmed / dismissed / second_look
    note: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[float] = mapped_column(Float)
    supersedes: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the decision id it replaces


class SessionRelease(Base):
    """Staff released a confirmed session's evidence: retention may purge it again."""

    __tablename__ = "session_releases"

    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.session_id"), primary_key=True)
    released_by: Mapped[str] = mapped_column(String(64))
    released_at: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


class Purge(Base):
    """A snapshot deleted (append-only): which, why, how big, when and by whom."""

    __tablename__ = "purges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(32), index=True)
    session_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    device_id: Mapped[str] = mapped_column(String(14))
    reason: Mapped[str] = mapped_column(String(24))  # dismissed / retention
    bytes: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[float] = mapped_column(Float)
    by: Mapped[str] = mapped_column(String(64))  # "sweep" or a user
