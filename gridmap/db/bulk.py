"""Bulk loading with PostgreSQL COPY: tens of thousands of rows a second, inside the caller's
transaction, so a failed load leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.db.models import SRID


def _cell(value):
    if isinstance(value, BaseGeometry):
        return shapely.to_wkb(shapely.set_srid(value, SRID), hex=True, include_srid=True)
    return value


def copy_rows(session: Session, table: str, columns: Sequence[str], rows: Iterable[dict]) -> int:
    """COPY ``rows`` (dicts keyed by column) into ``table``; geometries become EWKB. Returns the count."""
    raw = session.connection().connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([_cell(row.get(c)) for c in columns])
            n += 1
    return n


def reset_sequence(session: Session, table: str) -> None:
    """After loading explicit ids, move the id sequence past them."""
    session.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"coalesce((SELECT max(id) FROM \"{table}\"), 0) + 1, false)"
        )
    )
