"""``gridmap demo load --scale city``: a city of about 10,000 grids, streamed into PostGIS chunk by chunk.

gridmap.domain.city cuts the city into chunks (one sub-district each); worker processes generate
them with the demo generator while this process COPYs the chunk before, so both cores work and
only a few chunks are ever in memory. Chunks are written strictly in their order, their ids moved
past the chunks before (gridmap.domain.city.shift_ids): the database ends up the same whatever
the timing. Then, exactly like ``load_demo``: sequences, the activity seed, the demo users, the
audit entry.

One transaction, like the demo: a failed load leaves nothing behind, and PostgreSQL is at ease
with millions of rows in one transaction (no row locks are kept; only the WAL grows). The
statement-level triggers keep the totals per building and grid and the key-person counts, one
grouped update per COPY.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.bulk import reset_sequence
from gridmap.db.models import SRID
from gridmap.domain.city import (
    CHUNK_TABLES,
    ChunkLayout,
    ChunkRows,
    CityPlan,
    CitySpec,
    chunk_offsets,
    district_rows,
    generate_chunk,
    plan_city,
    shift_ids,
)
from gridmap.io.boundary import BOUNDARIES_DIR, read_boundary
from gridmap.services import audit
from gridmap.services.auth import create_demo_users
from gridmap.services.coverage import refresh_kept_figures
from gridmap.services.demo import (
    LOAD_ORDER,
    DemoAlreadyLoaded,
    _columns,
    clear_district_data,
    is_empty,
    vacuum_after_commit,
)
from gridmap.services.demo_activity import seed_demo_activity

CITY_BOUNDARIES = BOUNDARIES_DIR / "chongqing_core.geojson"


def read_city_boundaries(path: Path = CITY_BOUNDARIES) -> list[tuple]:
    """(polygon, properties) of every district in a boundary file, in file order."""
    features = json.loads(Path(path).read_text(encoding="utf-8"))["features"]
    return [read_boundary(path, f["properties"]["name"]) for f in features]


def default_workers() -> int:
    """Generator processes: one per core (the COPY mostly waits on PostgreSQL), at least one."""
    return max(1, min(4, os.cpu_count() or 1))


def _worker_context() -> multiprocessing.context.BaseContext:
    """spawn: a fresh interpreter per worker. Not fork: this process holds a database connection
    and may run threads (a test runner's, a web server's), which a forked child inherits in
    whatever state they were. Like every spawn, the worker imports the caller's main module: a
    script calling :func:`load_city` needs the ``if __name__ == "__main__":`` guard, or the worker
    runs the load again and waits forever for the lock of the first."""
    return multiprocessing.get_context("spawn")


def _generated_in_order(plan: CityPlan, layout: ChunkLayout, workers: int) -> Iterator[ChunkRows]:
    """The chunks' rows in chunk order; with workers, generated ahead in other processes.

    At most ``workers + 1`` chunks are asked for ahead of the one being written, so memory stays
    bounded however slow the COPY is."""
    if workers < 1:
        for chunk in plan.chunks:
            yield generate_chunk(chunk, layout)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context())
    try:
        waiting = iter(plan.chunks)
        pending: deque[Future] = deque()
        for chunk in waiting:
            pending.append(pool.submit(generate_chunk, chunk, layout))
            if len(pending) > workers:
                break
        while pending:
            result = pending.popleft().result()
            chunk = next(waiting, None)
            if chunk is not None:
                pending.append(pool.submit(generate_chunk, chunk, layout))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- writing ----------------------------------------------------------------------------------------


def _copy_lists(session: Session, table: str, columns: Sequence[str], rows: list[list]) -> int:
    """COPY rows that are already lists of COPY-ready values (gridmap.db.bulk.copy_rows takes
    dicts and converts geometries one by one, which the workers have done in bulk here)."""
    raw = session.connection().connection.driver_connection
    cols = ", ".join(f'"{c}"' for c in columns)
    with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
    return len(rows)


@dataclass
class _Meter:
    """Rows and seconds per table, for progress and the summary."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, table: str, rows: int, seconds: float) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows
        self.seconds[table] = self.seconds.get(table, 0.0) + seconds

    def rate(self, table: str) -> float:
        return self.rows[table] / max(self.seconds[table], 1e-9)


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"


def _write_chunks(
    session: Session,
    plan: CityPlan,
    layout: ChunkLayout,
    workers: int,
    meter: _Meter,
    progress: Callable[[str], None],
) -> None:
    """COPY every chunk, in order, as the generators deliver them; progress per district and chunk."""
    started = time.perf_counter()
    written_before: dict[str, int] = {}
    grids_done = 0
    districts = {d.id: d for d in plan.districts}
    last_district = None
    waited = 0.0
    t_wait = time.perf_counter()
    for chunk_rows in _generated_in_order(plan, layout, workers):
        waited += time.perf_counter() - t_wait
        chunk = plan.chunks[chunk_rows.index]
        if chunk.district_id != last_district:
            d = districts[chunk.district_id]
            n = sum(c.district_id == d.id for c in plan.chunks)
            progress(f"{d.name} ({d.code}): {n} sub-district(s) on {d.area_m2 / 1e6:.1f} km²")
            last_district = chunk.district_id
        offsets = chunk_offsets(written_before, chunk)
        t_chunk = time.perf_counter()
        for table in CHUNK_TABLES:
            columns, rows = chunk_rows.tables[table]
            t = time.perf_counter()
            shift_ids(table, columns, rows, offsets)
            n = _copy_lists(session, table, columns, rows)
            meter.add(table, n, time.perf_counter() - t)
            if table != "key_person_category_link":
                written_before[table] = written_before.get(table, 0) + n
        copy_s = time.perf_counter() - t_chunk
        grids_done += chunk_rows.grids
        elapsed = time.perf_counter() - started
        total = sum(meter.rows.values())
        progress(
            f"[{chunk.index + 1:>3}/{len(plan.chunks)}] {chunk.district_name} {chunk.subdistrict_name}: "
            f"{chunk_rows.grids} grids, {len(chunk_rows.tables['household'][1]):,} households, "
            f"{chunk_rows.rows:,} rows; generated in {chunk_rows.seconds:.1f} s, copied in {copy_s:.1f} s "
            f"({chunk_rows.rows / max(copy_s, 1e-9):,.0f} rows/s) | {grids_done:,}/{plan.grids:,} grids, "
            f"{total:,} rows, {total / max(elapsed, 1e-9):,.0f} rows/s, "
            f"ETA {_clock(elapsed / grids_done * (plan.grids - grids_done))}"
        )
        chunk_rows.tables.clear()  # let the chunk go before waiting for the next
        t_wait = time.perf_counter()
    elapsed = time.perf_counter() - started
    total = sum(meter.rows.values())
    progress(
        f"chunks: {total:,} rows in {_clock(elapsed)} ({total / max(elapsed, 1e-9):,.0f} rows/s; "
        f"{waited:.0f} s of it waiting for the generators)"
    )
    for table in ("district", *CHUNK_TABLES):
        progress(f"  {table:26s} {meter.rows[table]:>10,} rows  {meter.rate(table):>10,.0f} rows/s")


def load_city(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    seed: int = 1,
    spec: CitySpec | None = None,
    boundary_path: Path = CITY_BOUNDARIES,
    replace: bool = False,
    workers: int | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> dict[str, int]:
    """Generate and write the city; returns the rows written per table (like ``load_demo``).

    ``spec`` defaults to ``CitySpec()`` with the households per grid of the settings; ``workers``
    generator processes (0: generate in this process, one chunk at a time)."""
    started = time.perf_counter()
    spec = spec or CitySpec(
        households_min=settings.households_per_grid_min, households_max=settings.households_per_grid_max
    )
    workers = default_workers() if workers is None else workers
    audit.suspend_for_bulk_load(session)  # one BULK_LOAD entry at the end, as for the demo
    if not is_empty(session):
        if not replace:
            raise DemoAlreadyLoaded("数据库已有辖区数据 / the database already holds a district (use --replace)")
        progress("clearing the existing district")
        clear_district_data(session)

    t = time.perf_counter()
    plan = plan_city(read_city_boundaries(boundary_path), spec, seed)
    progress(
        f"plan: {len(plan.districts)} districts, {len(plan.chunks)} sub-districts, {plan.grids:,} grids on "
        f"{plan.area_m2 / 1e6:.1f} km² ({plan.area_m2 / plan.grids:,.0f} m² a grid), "
        f"{workers} generator process(es), in {time.perf_counter() - t:.1f} s"
    )

    category_ids = dict(session.execute(text("SELECT code, id FROM key_person_category")).all())
    class_ids = {
        (scheme, code): id_
        for scheme, code, id_ in session.execute(text("SELECT scheme, code, id FROM risk_class")).all()
    }
    layout = ChunkLayout(
        now=now,
        columns={table: tuple(_columns(table)) for table in CHUNK_TABLES if table != "key_person_category_link"},
        category_ids=category_ids,
        class_ids=class_ids,
        srid=SRID,
        shifts_per_day=settings.checkpoint_shifts_per_day,
        staff_per_shift=settings.checkpoint_staff_per_shift,
    )

    meter = _Meter()
    t = time.perf_counter()
    columns = _columns("district")
    meter.add("district", _copy_lists(session, "district", columns, district_rows(plan, columns, SRID)),
              time.perf_counter() - t)
    _write_chunks(session, plan, layout, workers, meter, progress)

    t = time.perf_counter()
    for table in LOAD_ORDER:
        reset_sequence(session, table)
    # The activity seed's queries need statistics of the tables just filled, or PostgreSQL plans
    # them for empty tables (nested loops over millions of rows).
    session.execute(text("ANALYZE"))
    progress(f"sequences and ANALYZE in {time.perf_counter() - t:.1f} s")

    written = {"district": meter.rows["district"], **{t_: meter.rows[t_] for t_ in CHUNK_TABLES}}
    t = time.perf_counter()
    written.update(seed_demo_activity(session, settings, now, seed))
    progress(
        f"activity: {written['contact_log']:,} contacts, {written['duty_shift']:,} duty shifts "
        f"in {time.perf_counter() - t:.1f} s"
    )
    t = time.perf_counter()
    # The kept figures (0012-0015) in the load's transaction, so the first metrics read or impact
    # preview after the load does not compute them (city: ~14 s of the load, measured on gridmap_city).
    kept = refresh_kept_figures(session, settings, full=True)
    progress(f"kept figures in {time.perf_counter() - t:.1f} s "
             f"({', '.join(f'{k} {v.ms / 1000:.1f} s' for k, v in kept.items())})")
    t = time.perf_counter()
    create_demo_users(session, settings)
    audit.record(
        session, "demo", "BULK_LOAD", "district",
        detail={"scale": "city", "seed": seed, "grids": plan.grids, "chunks": len(plan.chunks), **written},
    )
    progress(f"demo users and audit in {time.perf_counter() - t:.1f} s; city loaded in {_clock(time.perf_counter() - started)}")
    vacuum_after_commit(session, progress)
    return written


__all__ = ["CITY_BOUNDARIES", "default_workers", "load_city", "read_city_boundaries"]
