"""Figures kept per grid or per community, repaired from a log of what changed (0013-0015).

Nothing adds to or subtracts from a kept figure. Statement-level triggers only log the keys (grid
or community ids) each statement touched, or ``everything`` (a TRUNCATE, a change of reference
data); a reader that finds the log non-empty recomputes those keys with the very query of the
full computation, so the figures cannot drift. Each kept table has a one-row state
(``computed_at``, NULL: never computed) whose row lock serialises the refreshers.

Kept with this pattern: staff per grid and role (0013), distinct key persons per grid (0014)
(both :mod:`gridmap.services.coverage`), and the impact summary per community (0015,
:mod:`gridmap.services.impact`). Service coverage (0012) predates it and keeps its own state
(its figures also depend on settings).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session


@dataclass
class KeptRefresh:
    mode: str  # 'fresh' (nothing to do), 'repaired' (the logged keys), 'full'
    log_rows: int
    grids: int  # keys (grids, or communities) recomputed (full: those with a figure)
    ms: float


# Filled in by :func:`kept_table` from names fixed in code, never input; values go in as bound
# parameters.
_STATEMENTS = {
    "stale": "SELECT s.computed_at IS NULL OR EXISTS (SELECT 1 FROM {dirty}) "
             "FROM (SELECT 1) one LEFT JOIN {state} s ON s.id = 1",
    "lock_row": "INSERT INTO {state} (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
    "lock": "SELECT computed_at FROM {state} WHERE id = 1 FOR UPDATE",
    "logged": "SELECT id, {key} AS key, everything FROM {dirty}",
    "clear": "DELETE FROM {table}",
    "clear_keys": "DELETE FROM {table} WHERE {key} = ANY(:ids)",
    # Keys deleted since (their figures went with them) are left out.
    "insert": "INSERT INTO {table} ({columns}) SELECT {columns} FROM unnest({arrays}) AS x({columns}) "
              "WHERE EXISTS (SELECT 1 FROM {parent} WHERE {parent}.id = x.{key})",
    "forget": "DELETE FROM {dirty} WHERE id = ANY(:ids)",
    "computed": "UPDATE {state} SET computed_at = now() WHERE id = 1",
    "keys": "SELECT count(DISTINCT {key}) FROM {table}",
}

# Rows of the full computation, for some keys (a list) or all (None).
Compute = Callable[[Session, list[int] | None], list[tuple]]


@dataclass(frozen=True)
class KeptTable:
    """A kept table (its key column first), its one-row state and the log its triggers write.

    The figures come either from ``compute`` (rows computed in Python, inserted as arrays) or from
    ``insert_sql``, one INSERT ... SELECT taking ``:ids`` (an integer array, NULL: all keys),
    which must leave out keys that no longer exist.
    """

    columns: int
    sql: dict[str, TextClause]
    compute: Compute | None = None
    insert_sql: TextClause | None = None


def kept_table(table: str, columns: tuple[tuple[str, str], ...], *, state: str, dirty: str,
               compute: Compute | None = None, insert_sql: str | None = None,
               key: str = "grid_id", parent: str = "grid") -> KeptTable:
    """``columns``: (name, SQL type) as inserted by ``compute``; ``key`` names the logged key
    column (of the table and the log) and ``parent`` the table it refers to."""
    if (compute is None) == (insert_sql is None):
        raise ValueError("a kept table is computed either in Python or by one INSERT ... SELECT")
    names = {
        "table": table, "state": state, "dirty": dirty, "key": key, "parent": parent,
        "columns": ", ".join(c for c, _t in columns),
        "arrays": ", ".join("CAST(:c{} AS {}[])".format(i, t) for i, (_c, t) in enumerate(columns)),  # noqa: UP032
    }
    statements = {k: text(v.format(**names)) for k, v in _STATEMENTS.items()
                  if k != "insert" or compute is not None}  # (the rows of ``compute`` only)
    return KeptTable(len(columns), statements, compute, text(insert_sql) if insert_sql is not None else None)


def _recompute(session: Session, kept: KeptTable, ids: list[int] | None) -> None:
    """Write the figures of ``ids`` (None: all)."""
    if kept.insert_sql is not None:
        session.execute(kept.insert_sql, {"ids": ids})
        return
    rows = kept.compute(session, ids)
    if rows:
        session.execute(kept.sql["insert"], {f"c{i}": [r[i] for r in rows] for i in range(kept.columns)})


def refresh(session: Session, kept: KeptTable, full: bool) -> KeptRefresh:
    """Recompute, with the full computation's query, the keys the log names, or everything when
    ``full``, when nothing was computed yet or after a TRUNCATE; in the caller's transaction.

    The state row is locked first, so concurrent refreshers take turns; log rows committed while
    this one runs are left for the next reader (only the rows read here are forgotten).
    """
    t0 = time.perf_counter()
    sql = kept.sql
    session.execute(sql["lock_row"])
    computed = session.execute(sql["lock"]).scalar_one()
    logged = session.execute(sql["logged"]).all()
    full = full or computed is None or any(r.everything for r in logged)
    if full:
        session.execute(sql["clear"])
        _recompute(session, kept, None)
        recomputed = session.execute(sql["keys"]).scalar_one()
    else:
        ids = sorted({r.key for r in logged if r.key is not None})
        if ids:
            session.execute(sql["clear_keys"], {"ids": ids})
            _recompute(session, kept, ids)
        recomputed = len(ids)
    if logged:
        session.execute(sql["forget"], {"ids": [r.id for r in logged]})
    if full:
        session.execute(sql["computed"])
    mode = "full" if full else ("repaired" if logged else "fresh")
    return KeptRefresh(mode, len(logged), recomputed, round((time.perf_counter() - t0) * 1000, 2))


def is_stale(session: Session, kept: KeptTable) -> bool:
    return bool(session.execute(kept.sql["stale"]).scalar_one())


def ensure_fresh(session: Session, kept: KeptTable) -> None:
    """Repair ``kept`` first when anything changed (readers that find it fresh take no lock)."""
    if is_stale(session, kept):
        refresh(session, kept, False)
