"""Tables: devices (registry and chain state), events (unique by event id), dead letters (with a reason)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Device(Base):
    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(14), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)  # Ed25519, PEM
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hash: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16), default="unknown")  # online / offline / unknown
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)  # epoch seconds


class EventRow(Base):
    __tablename__ = "events"

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
    flag: Mapped[str | None] = mapped_column(String(16), nullable=True)  # gap / replayed / broken_chain
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[float] = mapped_column(Float)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(24), index=True)
    detail: Mapped[str] = mapped_column(Text)
    received_at: Mapped[float] = mapped_column(Float)
