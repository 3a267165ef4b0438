"""Retention of evidence snapshots: what to delete and why (:func:`plan`, pure, the time passed in), and the
executor that deletes it (:class:`Retention`), run by the bridge's periodic sweep (``[retention] every``).

The rules (docs/review.md, "Retention"), per snapshot, with the exam's policy (``exam_policies``, else the
``[retention]`` defaults):

- **dismissed**: the latest decision on its alert is ``dismissed`` (or the alert has none and the latest
  decision on its whole session is): it is deleted ``dismissed_grace_hours`` after that decision;
- **retention**: its session ended more than ``retention_days`` ago: it is deleted, unless it is held;
- **held**: the latest decision on its alert, or on its whole session, is ``confirmed``, and the session is
  not released (``session_releases``): retention keeps it. A release lets retention take it at the next sweep.
- A snapshot of no session (an event outside any session) goes ``retention_days`` (the default) after upload.

"Latest" is the decision recorded last (the highest id, as cloud_bridge/decisions.py reads it): a decision is
superseded by a later one, never edited; with two reviewers, a confirmation awaiting its second holds too. A
session not yet ended is never purged by retention.

Each deletion leaves a ``purges`` row (digest, session, unit, reason, bytes, when, by whom), and each batch an
audit entry, in the transaction that deletes; the unit that took the snapshots gets a signed
``evidence_purge`` naming them in that same transaction (the outbox), and deletes its own copies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cloud_bridge import audit
from cloud_bridge.store import Store
from cloud_bridge.store.models import (
    Decision,
    Evidence,
    ExamPolicy,
    ExamSession,
    ProctorAlert,
    Purge,
    SessionRelease,
)
from edge_app.protocol.commands import MAX_PURGE_DIGESTS

if TYPE_CHECKING:  # dispatch imports the config, which imports this module's RetentionConfig
    from cloud_bridge.dispatch import DeviceCommands

log = logging.getLogger(__name__)
DAY, HOUR = 86_400.0, 3_600.0


class RetentionConfig(BaseModel):
    """``[retention]``: how often the sweep purges, and the policy of an exam that has none of its own."""

    model_config = ConfigDict(extra="forbid")

    every: float = Field(default=3600.0, ge=10, le=7 * 86_400, description="seconds between retention sweeps "
                         "(the first runs this long after the bridge starts)")
    retention_days: float = Field(default=30.0, gt=0, le=3650, description="days a session's evidence is kept "
                                  "after it ended, for an exam without a policy of its own (confirmed evidence: "
                                  "until released)")
    dismissed_grace_hours: float = Field(default=24.0, ge=0, le=24 * 365, description="hours a dismissed alert's "
                                         "evidence is kept after the decision, for an exam without a policy of its "
                                         "own")
    batch: int = Field(default=200, ge=1, le=5000, description="snapshots deleted per transaction")


@dataclass(frozen=True)
class Policy:
    retention_days: float
    dismissed_grace_hours: float


@dataclass(frozen=True)
class Snapshot:
    """A stored snapshot and what it belongs to (session fields None: it belongs to no session)."""

    digest: str
    device_id: str
    bytes: int
    uploaded_at: float
    session_id: str | None = None
    alert_id: str | None = None
    exam_id: str | None = None
    ended_at: float | None = None  # the session's end; None: not ended


@dataclass(frozen=True)
class Verdict:
    """A decision as retention reads it (``alert_id`` None: on the whole session)."""

    id: int
    session_id: str
    alert_id: str | None
    verdict: str
    decided_at: float


@dataclass(frozen=True)
class Doomed:
    """A snapshot to delete, and why."""

    digest: str
    device_id: str
    session_id: str | None
    reason: str  # dismissed / retention
    bytes: int
    why: str


def _latest(decisions: Iterable[Verdict]) -> dict[tuple[str, str | None], Verdict]:
    latest: dict[tuple[str, str | None], Verdict] = {}
    for decision in decisions:
        key = (decision.session_id, decision.alert_id)
        now = latest.get(key)
        if now is None or decision.id > now.id:
            latest[key] = decision
    return latest


def _judge(snapshot: Snapshot, latest: dict[tuple[str, str | None], Verdict], policy: Policy,
           released: bool, now: float) -> tuple[str, str] | None:
    """(reason, why) if ``snapshot`` goes now, else None."""
    if snapshot.session_id is None:
        age = now - snapshot.uploaded_at
        if age > policy.retention_days * DAY:
            return "retention", f"of no session, uploaded {age / DAY:.1f} days ago (kept {policy.retention_days:g})"
        return None
    own = latest.get((snapshot.session_id, snapshot.alert_id)) if snapshot.alert_id is not None else None
    whole = latest.get((snapshot.session_id, None))
    deciding = own or whole
    if deciding is not None and deciding.verdict == "dismissed":
        waited = now - deciding.decided_at
        if waited >= policy.dismissed_grace_hours * HOUR:
            what = "its alert" if own is not None else "its session"
            return "dismissed", (f"{what} dismissed {waited / HOUR:.1f} h ago (grace "
                                 f"{policy.dismissed_grace_hours:g} h, decision {deciding.id})")
    held = not released and any(d is not None and d.verdict == "confirmed" for d in (own, whole))
    if held or snapshot.ended_at is None:
        return None
    age = now - snapshot.ended_at
    if age > policy.retention_days * DAY:
        release = ", released" if released else ""
        return "retention", f"session ended {age / DAY:.1f} days ago (kept {policy.retention_days:g}){release}"
    return None


def plan(snapshots: Iterable[Snapshot], decisions: Iterable[Verdict], policies: dict[str, Policy],
         releases: Iterable[str], now: float, default: Policy) -> list[Doomed]:
    """The snapshots to delete at ``now`` (seconds since 1970), each with its reason; see the module's rules."""
    latest, released = _latest(decisions), set(releases)
    doomed = []
    for snapshot in snapshots:
        policy = policies.get(snapshot.exam_id or "", default)
        verdict = _judge(snapshot, latest, policy, snapshot.session_id in released, now)
        if verdict is not None:
            doomed.append(Doomed(snapshot.digest, snapshot.device_id, snapshot.session_id, verdict[0],
                                 snapshot.bytes, verdict[1]))
    return doomed


def _load(session: Session, digests: Sequence[str] | None = None) -> tuple[
        list[Snapshot], list[Verdict], dict[str, Policy], list[str]]:
    """The planner's inputs from the store: every snapshot (or those of ``digests``) and what decides it."""
    query = select(Evidence.digest, Evidence.device_id, func.length(Evidence.data), Evidence.uploaded_at)
    if digests is not None:
        query = query.where(Evidence.digest.in_(digests))
    rows = session.execute(query).all()
    owners: dict[str | None, tuple[str, str, str, float | None]] = {}
    found = [digest for digest, *_rest in rows]
    for start in range(0, len(found), 500):
        for digest, session_id, alert_id, exam_id, ended_at in session.execute(
                select(ProctorAlert.evidence, ProctorAlert.session_id, ProctorAlert.alert_id, ProctorAlert.exam_id,
                       ExamSession.ended_at).join(ExamSession, ExamSession.session_id == ProctorAlert.session_id)
                .where(ProctorAlert.evidence.in_(found[start:start + 500])).order_by(ProctorAlert.id)):
            owners.setdefault(digest, (session_id, alert_id, exam_id, ended_at))
    snapshots = [Snapshot(digest, device, int(size or 0), uploaded, *owners.get(digest, (None, None, None, None)))
                 for digest, device, size, uploaded in rows]
    sessions = sorted({s.session_id for s in snapshots if s.session_id is not None})
    exams = sorted({s.exam_id for s in snapshots if s.exam_id is not None})
    decisions: list[Verdict] = []
    releases: list[str] = []
    policies: dict[str, Policy] = {}
    for start in range(0, len(sessions), 500):
        part = sessions[start:start + 500]
        decisions += [Verdict(*row) for row in session.execute(
            select(Decision.id, Decision.session_id, Decision.alert_id, Decision.verdict, Decision.decided_at)
            .where(Decision.session_id.in_(part)))]
        releases += list(session.scalars(select(SessionRelease.session_id).where(SessionRelease.session_id.in_(part))))
    for start in range(0, len(exams), 500):
        for row in session.scalars(select(ExamPolicy).where(ExamPolicy.exam_id.in_(exams[start:start + 500]))):
            policies[row.exam_id] = Policy(float(row.retention_days), float(row.dismissed_grace_hours))
    return snapshots, decisions, policies, releases


@dataclass
class PurgeResult:
    purged: list[Doomed]

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.purged)

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for doomed in self.purged:
            reasons[doomed.reason] = reasons.get(doomed.reason, 0) + 1
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        return f"{len(self.purged)} snapshot(s) purged ({parts or 'none due'}), {self.bytes} bytes"


class Retention:
    """Plans and purges over ``store``; ``commands`` (None: no broker) tells units to delete their copies."""

    def __init__(self, store: Store, commands: DeviceCommands | None, config: RetentionConfig | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store, self.commands, self.config = store, commands, config or RetentionConfig()
        self.clock, self.monotonic = clock, monotonic
        self.default = Policy(self.config.retention_days, self.config.dismissed_grace_hours)
        self._next = monotonic() + self.config.every

    def plan(self, now: float | None = None) -> list[Doomed]:
        """What a purge at ``now`` (default: the clock) would delete, and why."""
        with self.store.session() as session:
            snapshots, decisions, policies, releases = _load(session)
        return plan(snapshots, decisions, policies, releases, self.clock() if now is None else now, self.default)

    def purge(self, by: str = "sweep", now: float | None = None) -> PurgeResult:
        """Delete what is due, ``config.batch`` snapshots per transaction, each batch planned again inside its
        transaction (a decision or release that came meanwhile counts). ``by``: ``sweep``, ``cli`` or a staff user."""
        at = self.clock() if now is None else now
        due = [d.digest for d in self.plan(at)]
        purged: list[Doomed] = []
        for start in range(0, len(due), self.config.batch):
            with self.store.session() as session, session.begin():
                snapshots, decisions, policies, releases = _load(session, due[start:start + self.config.batch])
                batch = plan(snapshots, decisions, policies, releases, at, self.default)
                self._delete(session, batch, by, at)
            purged += batch
        if purged:
            log.info("retention: %s", PurgeResult(purged).summary())
        return PurgeResult(purged)

    def _delete(self, session: Session, batch: list[Doomed], by: str, at: float) -> None:
        if not batch:
            return
        digests = [d.digest for d in batch]
        session.execute(delete(Evidence).where(Evidence.digest.in_(digests)))
        session.add_all(Purge(digest=d.digest, session_id=d.session_id, device_id=d.device_id, reason=d.reason,
                              bytes=d.bytes, deleted_at=at, by=by[:64]) for d in batch)
        reasons: dict[str, int] = {}
        for doomed in batch:
            reasons[doomed.reason] = reasons.get(doomed.reason, 0) + 1
        audit.record(session, by if by in ("sweep", "cli") else f"staff:{by}", "purge", f"{len(batch)} snapshots",
                     {"reasons": reasons, "bytes": sum(d.bytes for d in batch), "digests": digests[:50]}, at=at)
        if self.commands is None:
            return
        per_device: dict[str, list[str]] = {}
        for doomed in batch:
            per_device.setdefault(doomed.device_id, []).append(doomed.digest)
        for device_id, names in sorted(per_device.items()):
            for first in range(0, len(names), MAX_PURGE_DIGESTS):
                self.commands.send(device_id, "evidence_purge", {"digests": names[first:first + MAX_PURGE_DIGESTS]},
                                   session=session)

    def maybe_run(self) -> PurgeResult | None:
        """A purge when ``config.every`` seconds have passed since the last (the bridge's sweep calls this)."""
        if self.monotonic() < self._next:
            return None
        self._next = self.monotonic() + self.config.every
        return self.purge()
