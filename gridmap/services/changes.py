"""Has the data changed? A counter every worker and every screen can poll.

Writes append to ``change_log`` through statement-level triggers (migration 0009); the latest
committed id is the data version. A screen polls ``/api/changes`` every few seconds and reloads
its data only when the version moved, so a change committed through any worker reaches every
wall display and open map within one polling interval, and no worker keeps state of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class DataVersion:
    version: int
    changed_at: datetime | None
    table: str | None

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
            "table": self.table,
        }


def data_version(session: Session) -> DataVersion:
    row = session.execute(
        text("SELECT id, changed_at, table_name FROM change_log ORDER BY id DESC LIMIT 1")
    ).one_or_none()
    if row is None:
        return DataVersion(0, None, None)
    return DataVersion(int(row.id), row.changed_at, row.table_name)


def changes_since(session: Session, version: int) -> list[str]:
    """The tables written since ``version`` (to refetch only what changed)."""
    return list(
        session.execute(
            text("SELECT DISTINCT table_name FROM change_log WHERE id > :v ORDER BY 1"), {"v": version}
        ).scalars()
    )


def prune(session: Session, keep: int = 10_000) -> int:
    """Drop all but the newest ``keep`` rows; the version (max id) is unaffected."""
    return session.execute(
        text("DELETE FROM change_log WHERE id < (SELECT max(id) FROM change_log) - :keep"), {"keep": keep}
    ).rowcount
