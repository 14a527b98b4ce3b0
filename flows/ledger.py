"""The ledger of stored verdicts: one row per verdict in storage order, each with a running digest.

It lives in the index's database but is not part of the index cache: ``VerdictIndex.rebuild`` never
touches it (rebuilding it from the bucket would make a tampered bucket look consistent). Appends are
serialised by updating a one-row head first, which takes the write lock on SQLite and Postgres alike.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import sqlalchemy as sa

from validators.attest.chain import GENESIS, LedgerRow, running_digest

_meta = sa.MetaData()
ledger = sa.Table(
    "verdict_ledger",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("json_key", sa.String(1024), nullable=False, unique=True),
    sa.Column("package_key", sa.String(1024), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("running", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),
)
head = sa.Table(
    "verdict_ledger_head",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("running", sa.String(64), nullable=False),
)


def create_chain_tables(engine: sa.Engine, meta: sa.MetaData, chain_head: sa.Table) -> None:
    """Create a hash chain's tables and its head row (seq 0, the genesis digest), once, whoever comes first."""
    for attempt in range(3):
        try:
            meta.create_all(engine)
            with engine.begin() as conn:
                if conn.execute(sa.select(chain_head.c.id)).first() is None:
                    conn.execute(chain_head.insert().values(id=1, seq=0, running=GENESIS))
            return
        except sa.exc.DBAPIError:  # a concurrent first writer created them
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))


class Ledger:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._created = False

    def _ready(self) -> None:
        if self._created:
            return
        create_chain_tables(self.engine, _meta, head)
        self._created = True

    def append(self, json_key: str, package_key: str, sha256: str) -> str:
        """Record a stored verdict (idempotent per key); the running digest after it."""
        self._ready()
        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    conn.execute(head.update().where(head.c.id == 1).values(seq=head.c.seq + 1))  # the lock
                    known = conn.execute(sa.select(ledger.c.running).where(ledger.c.json_key == json_key)).first()
                    if known is not None:
                        conn.execute(head.update().where(head.c.id == 1).values(seq=head.c.seq - 1))
                        return str(known.running)
                    current = conn.execute(sa.select(head.c.seq, head.c.running).where(head.c.id == 1)).one()
                    running = running_digest(current.running, json_key, sha256)
                    conn.execute(ledger.insert().values(
                        seq=current.seq, json_key=json_key[:1024], package_key=package_key[:1024], sha256=sha256,
                        running=running, recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    ))
                    conn.execute(head.update().where(head.c.id == 1).values(running=running))
                    return running
            except sa.exc.OperationalError:  # SQLite busy beyond its timeout: try again
                if attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def rows(self) -> list[LedgerRow]:
        self._ready()
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(ledger).order_by(ledger.c.seq))
            return [LedgerRow(r.seq, r.json_key, r.sha256, r.running) for r in result]

    def head(self) -> tuple[int, str]:
        self._ready()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(head.c.seq, head.c.running).where(head.c.id == 1)).one()
            return int(row.seq), str(row.running)


__all__ = ["Ledger"]
