"""Instructors' decisions: an append-only, hash-chained record beside the verdict index.

Two kinds of decision, both about one package key:

- on a **finding** (``kind="finding"``): ``confirm`` or ``dismiss`` (reason ``false_positive``,
  ``accepted`` with justification, ``out_of_scope``), comment mandatory; its subject is the finding's
  fingerprint (rule + file content digest + location + masked evidence, ``flows/web/verdicts.py``), so
  it carries over to a later verdict of the package where the same finding is found again;
- on a **proof** (``kind="proof"``): ``accepted``, ``rejected`` (reasons from ``flows/web/reasons.py``,
  free text allowed) or ``info_requested``; its subject is the proof id, and ``digest`` the proof's
  content (file digests and finding fingerprints) when it was decided.

Every decision names the verdict it was made on (``json_key``), its author and time. Nothing is ever
updated or deleted: a new decision on the same subject *supersedes* the previous one and must say which
(``expected``), so two instructors deciding at once cannot overwrite each other: the second gets a
``DecisionConflict`` naming the first. Like the verdict ledger (``flows/ledger.py``), each row carries
``running = sha256(previous running | decision:<seq> | sha256 of the record)``; a head row serialises
appends (SQLite and Postgres alike); ``proofcheck verify --history`` checks the chain. The index
rebuild never touches these tables: decisions are a record, not a cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from flows.ledger import create_chain_tables
from validators.attest.chain import GENESIS, running_digest
from validators.attest.verify import Problem
from validators.pii.mask import mask_identifiers

FINDING = "finding"
PROOF = "proof"
FINDING_DECISIONS = ("confirm", "dismiss")
DISMISS_REASONS = ("false_positive", "accepted", "out_of_scope")
PROOF_DECISIONS = ("accepted", "rejected", "info_requested")
MAX_COMMENT = 4000

_meta = sa.MetaData()
decisions = sa.Table(
    "decisions",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("package_key", sa.String(1024), nullable=False),
    sa.Column("subject", sa.String(256), nullable=False),  # fingerprint (finding) or proof id (proof)
    sa.Column("json_key", sa.String(1024), nullable=False),  # the verdict it was made on
    sa.Column("proof_id", sa.String(256)),
    sa.Column("rule", sa.String(128)),
    sa.Column("path", sa.String(1024)),
    sa.Column("digest", sa.String(64)),  # the proof's content digest (proof decisions)
    sa.Column("decision", sa.String(32), nullable=False),
    sa.Column("reasons", sa.String(512), nullable=False),  # comma-separated codes
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("supersedes", sa.Integer),  # seq of the decision on the same subject it replaces
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("running", sa.String(64), nullable=False),
)
sa.Index("ix_decisions_subject", decisions.c.package_key, decisions.c.kind, decisions.c.subject)
head = sa.Table(
    "decisions_head",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("running", sa.String(64), nullable=False),
)
_HASHED = ("seq", "kind", "package_key", "subject", "json_key", "proof_id", "rule", "path", "digest", "decision",
           "reasons", "comment", "author", "created_at", "supersedes")


@dataclass(frozen=True)
class NewDecision:
    kind: str
    package_key: str
    subject: str
    json_key: str
    decision: str
    comment: str
    author: str
    reasons: tuple[str, ...] = ()
    proof_id: str | None = None
    rule: str | None = None
    path: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Decision:
    seq: int
    kind: str
    package_key: str
    subject: str
    json_key: str
    proof_id: str | None
    rule: str | None
    path: str | None
    digest: str | None
    decision: str
    reasons: tuple[str, ...]
    comment: str
    author: str
    created_at: str
    supersedes: int | None
    sha256: str
    running: str

    @classmethod
    def of(cls, row: Any) -> Decision:
        values = dict(row._mapping)
        values["reasons"] = tuple(r for r in str(values.get("reasons") or "").split(",") if r)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


class DecisionError(ValueError):
    """A decision that cannot be recorded as given (bad value, missing comment)."""


class DecisionConflict(Exception):
    """Another decision on the same subject was recorded since the one the author saw."""

    def __init__(self, current: Decision | None) -> None:
        super().__init__("a decision on this subject was recorded meanwhile")
        self.current = current


def record_sha256(values: Mapping[str, Any]) -> str:
    """Digest of a decision's recorded fields (canonical JSON); the chain links these."""
    fields = {name: values.get(name) for name in _HASHED}
    reasons = fields.get("reasons")
    if isinstance(reasons, (tuple, list)):
        fields["reasons"] = ",".join(str(r) for r in reasons)
    text = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def validate(new: NewDecision) -> None:
    """Refuse what the audit trail must never hold: unknown values, empty comments where one is due."""
    comment = new.comment.strip()
    if len(new.comment) > MAX_COMMENT:
        raise DecisionError("comment too long")
    if not new.author.strip():
        raise DecisionError("no author")
    if new.kind == FINDING:
        if new.decision not in FINDING_DECISIONS:
            raise DecisionError("unknown decision")
        if new.decision == "dismiss" and (len(new.reasons) != 1 or new.reasons[0] not in DISMISS_REASONS):
            raise DecisionError("a dismissal needs one reason")
        if new.decision == "confirm" and new.reasons:
            raise DecisionError("a confirmation has no reason")
        if not comment:
            raise DecisionError("a comment is mandatory")
    elif new.kind == PROOF:
        if new.decision not in PROOF_DECISIONS:
            raise DecisionError("unknown decision")
        if new.decision == "rejected" and not new.reasons and not comment:
            raise DecisionError("a rejection needs a reason or a comment")
        if new.decision == "info_requested" and not comment:
            raise DecisionError("say which information is requested")
        if new.decision != "rejected" and new.reasons:
            raise DecisionError("only a rejection has reasons")
    else:
        raise DecisionError("unknown kind")


class DecisionStore:
    """The decisions' tables in the index database (``engine`` is the verdict index's)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._created = False

    def _ready(self) -> None:
        if self._created:
            return
        create_chain_tables(self.engine, _meta, head)
        self._created = True

    def append(self, new: NewDecision, expected: int | None) -> Decision:
        """Record ``new`` if the subject's latest decision is still ``expected`` (None: no decision yet).

        Raises ``DecisionConflict`` (nothing recorded) when another decision came first, and
        ``DecisionError`` for a decision that is not valid.
        """
        validate(new)
        self._ready()
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    # Taking the head row first serialises appends: the conflict check below cannot race.
                    conn.execute(head.update().where(head.c.id == 1).values(seq=head.c.seq + 1))
                    state = conn.execute(sa.select(head.c.seq, head.c.running).where(head.c.id == 1)).one()
                    latest = self._latest_row(conn, new.package_key, new.kind, new.subject)
                    if (latest.seq if latest is not None else None) != expected:
                        raise DecisionConflict(Decision.of(latest) if latest is not None else None)
                    values: dict[str, Any] = {
                        **asdict(new),
                        "reasons": ",".join(new.reasons),
                        # An instructor may paste a NIR into a comment: the record never holds one.
                        "comment": mask_identifiers(new.comment.strip()),
                        "seq": int(state.seq),
                        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        "supersedes": expected,
                    }
                    values["sha256"] = record_sha256(values)
                    values["running"] = running_digest(state.running, f"decision:{values['seq']}", values["sha256"])
                    conn.execute(decisions.insert().values(**values))
                    conn.execute(head.update().where(head.c.id == 1).values(running=values["running"]))
                    return Decision.of(conn.execute(
                        sa.select(decisions).where(decisions.c.seq == values["seq"])).one())
            except sa.exc.OperationalError:  # SQLite busy beyond its timeout: try again
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    @staticmethod
    def _latest_row(conn: sa.Connection, package_key: str, kind: str, subject: str) -> Any:
        return conn.execute(
            sa.select(decisions)
            .where(decisions.c.package_key == package_key, decisions.c.kind == kind, decisions.c.subject == subject)
            .order_by(decisions.c.seq.desc())
            .limit(1)
        ).first()

    def latest(self, package_key: str, kind: str, subject: str) -> Decision | None:
        self._ready()
        with self.engine.connect() as conn:
            row = self._latest_row(conn, package_key, kind, subject)
            return Decision.of(row) if row is not None else None

    def of_package(self, package_key: str) -> list[Decision]:
        """Every decision on a package, oldest first (the audit trail)."""
        self._ready()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(decisions).where(decisions.c.package_key == package_key).order_by(decisions.c.seq)
            )
            return [Decision.of(r) for r in rows]

    def of_packages(self, package_keys: Iterable[str]) -> dict[str, list[Decision]]:
        """Decisions of many packages at once (oldest first per package)."""
        self._ready()
        keys = sorted(set(package_keys))
        out: dict[str, list[Decision]] = {k: [] for k in keys}
        with self.engine.connect() as conn:
            for start in range(0, len(keys), 500):
                rows = conn.execute(
                    sa.select(decisions)
                    .where(decisions.c.package_key.in_(keys[start : start + 500]))
                    .order_by(decisions.c.seq)
                )
                for r in rows:
                    out[r.package_key].append(Decision.of(r))
        return out

    def all(self) -> list[Decision]:
        self._ready()
        with self.engine.connect() as conn:
            return [Decision.of(r) for r in conn.execute(sa.select(decisions).order_by(decisions.c.seq))]

    def head(self) -> tuple[int, str]:
        self._ready()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(head.c.seq, head.c.running).where(head.c.id == 1)).one()
            return int(row.seq), str(row.running)


def latest_by_subject(history: Sequence[Decision]) -> dict[tuple[str, str], Decision]:
    """(kind, subject) -> its latest decision, from one package's trail (oldest first)."""
    out: dict[tuple[str, str], Decision] = {}
    for decision in history:
        out[(decision.kind, decision.subject)] = decision
    return out


def check_decisions(rows: Sequence[Decision], head_state: tuple[int, str]) -> list[Problem]:
    """The decisions' chain against itself and its head: an edited, removed or inserted record shows."""
    problems: list[Problem] = []
    running = GENESIS
    for expected_seq, row in enumerate(sorted(rows, key=lambda d: d.seq), start=1):
        if row.seq != expected_seq:
            problems.append(Problem("decision-removed", f"décision {expected_seq} absente du registre / "
                                    "a decision record is missing"))
            return problems
        digest = record_sha256(row.to_dict())
        running = running_digest(running, f"decision:{row.seq}", digest)
        if digest != row.sha256 or running != row.running:
            problems.append(Problem("decision-altered", f"la décision {row.seq} a été modifiée / "
                                    "a decision record was edited"))
            return problems
    seq, head_running = head_state
    if seq != len(rows) or (rows and head_running != running) or (not rows and head_running != GENESIS):
        problems.append(Problem("decision-head", "la tête du registre des décisions ne correspond pas / "
                                "the decisions' head does not match its records"))
    return problems


__all__ = [
    "DISMISS_REASONS",
    "FINDING",
    "FINDING_DECISIONS",
    "PROOF",
    "PROOF_DECISIONS",
    "Decision",
    "DecisionConflict",
    "DecisionError",
    "DecisionStore",
    "NewDecision",
    "check_decisions",
    "latest_by_subject",
    "record_sha256",
]
