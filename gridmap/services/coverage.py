"""Coverage and staffing per grid (issue 5), one service for the CLI, the map, the wall and the tablet.

:func:`grid_metrics` answers, per grid: how many households, residents and key people; which staff
by role; households per grid leader against the 300–500 norm; delivery volunteers in sealed and
controlled areas; whether vulnerable people were contacted twice in the last week; whether every
checkpoint shift of the next 24 hours is staffed; the share of households within walking distance
of each kind of service point; and who is in home observation, with days left.
:func:`staffing_gaps` lists grids below the norms and proposes volunteers from neighbouring grids.
:func:`service_load` gives the households that each point of a kind is nearest to, against its
capacity; :func:`recompute_service_coverage` the change in coverage when one point moved.

A grid owns what its buildings own: households, key people and staff assignments reach the grid
through ``building.grid_id``. A compound (and so its gates' checkpoints) belongs to the grid that
contains a point on its surface, or, failing that, to the grid of most of its buildings.

Distances are straight lines on the ellipsoid (geography), never walking routes, and the output
says so. Households of one building usually share one point, so the distance tests run once per
distinct household point (a few thousand in a district), weighted by the households there.

At city scale (issue 8: 10,000 grids, 4 M households, 0.7 M key persons) the metrics of all grids
must answer in 2 s; measured per part, EXPLAIN (ANALYZE, BUFFERS) said why they did not:

- one statement for "some grids or all" (``:ids IS NULL OR col = ANY(:ids)``) gave one plan for
  both; now the statement is built for each case (:func:`_q`), the filter absent for all grids;
- key persons joined person → household (4 M rows) → building with GROUPING SETS and
  count(DISTINCT): the per-category figures now come from ``grid_key_count`` (kept since 0010),
  the distinct persons through the building each category link carries (kept since 0008);
- contacts ran two correlated subqueries per vulnerable person: now one grouped pass over the log
  for all grids, the (key_person_id, contacted_at) index per person for a few grids, and the
  person's grid through the link's building, not the household table;
- the metrics' queries run with ``metrics_work_mem`` (their sorts went to disk at 4 MB) and without
  JIT (its compile time, ~150 ms a query, was more than it saved);
- service coverage (households within walking distance, 8 s for the city) is kept per grid and
  kind (migration 0012) and repaired from a change log written by triggers; see
  :func:`kept_service_coverage` for the rule on staleness. :func:`service_coverage` stays the live
  computation, and the check of the kept figures.

That left ~5.5 s, most of it in three parts (measured again on the city, medians of three):

- staff by role (~2.2 s): a staff member's grids came from ~960 k household-level assignments
  joined through 4 M households on every read. The counts per grid and role are now kept
  (migration 0013, :func:`kept_staff_by_grid`) with the pattern of 0012: triggers on
  staff_assignment, staff, household and building only log the grids touched, and the reader
  recomputes those grids with the query of the full computation (:func:`staff_by_grid`), so the
  figures cannot drift; a few grids repair in tens of milliseconds. Storing the grid on each
  assignment instead would still have left a grouped pass over 1.3 M rows on every read;
- checkpoint duty (~1 s, mostly Python): the slots were cut once per checkpoint and every slot
  scanned the checkpoint's shifts (32 k calls of ``covering_staff``), over 55 k fetched rows of
  datetimes. Slots are now cut once per shifts-per-day value, the shifts arrive as four arrays in
  one row, and ``covering_staff_counts`` holds them against the slots with numpy (same rule;
  a unit test compares the two); the checkpoints' grids are found once, not twice (MATERIALIZED);
- contacts (~0.9 s): the grouped pass read all of the log (657 k rows) for the last contact of
  140 k vulnerable people, and sent all of them to Python though ~85 % were on time. Now only the
  window's part of the log is grouped, the last contact before the window is looked up by index
  for the late people without a contact in it, and the SQL returns one row per grid: counts, and
  the late people as a JSON array. The log had also never been VACUUMed after the bulk load (no
  visibility map, so index-only scans read every heap row): the loaders now VACUUM (ANALYZE)
  after their commit (:func:`gridmap.services.demo.vacuum_after_commit`).

That left ~2.1-2.8 s (the parts ~1.5 s; assembling 10,000 GridMetrics the rest). Third round
(medians of five on gridmap_city; all grids ~2.1 s -> ~1.35 s, identical output):

- distinct key persons (~0.8-1 s: DISTINCT ON over 0.8 M category links, and a look through
  key_person for persons without a category that found none) are kept per grid (migration 0014,
  :func:`kept_key_persons_by_grid`) with the pattern of 0013, the full computation counting persons
  through their household's building (:func:`key_person_counts_by_grid`: ~0.9 s for the city, a few
  milliseconds for the grids a change names). The categories come from ``grid_key_count`` as two
  arrays per grid; ~0.11 s left, most of it the per-category dicts;
- home observation (~0.3-0.6 s): a partial index on ``key_person(observation_start)`` (0014) finds
  the ~46 k starts; the people then arrive as one JSON array per grid instead of 45 k rows, whose
  one-by-one fetch through the driver cost more than the query (~0.3 s left);
- every result is fetched with ``.all()``: iterating a result fetches row by row, ~2x slower for
  tens of thousands of rows; kept staff come as arrays per grid (10 k rows, not 77 k);
- Python's cycle collector ran full passes over the ~200 k objects being built and freed nothing:
  paused while the metrics are built (:func:`_without_cyclic_gc`), ~0.5 s;
- the loaders compute every kept figure (0012-0014) in their transaction
  (:func:`refresh_kept_figures` in full: ~11 s of the city load, 7.5 s of it service coverage), so the
  first read after a load repairs nothing.

Still the largest: contacts (~0.6 s: grouping 140 k vulnerable people with their categories and
the window's 300 k log rows, and the late ones as JSON) and checkpoint duty (~0.25 s). On a
machine ~1.5x slower (session 3) that made ~2.1-2.3 s again, contacts ~1 s of it; the contacts of
all grids are now read on a second connection while the rest are read on the caller's
(:func:`_alongside`, only when the caller's transaction has written nothing, so both read the same
rows): ~1.25 s there.
"""


from __future__ import annotations

import functools
import gc
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

import gridmap.db.models_coverage  # noqa: F401  (contact_log, duty_shift in the metadata)
from gridmap.config import Settings
from gridmap.db.models import SRID
from gridmap.domain import coverage as rules
from gridmap.domain.errors import GridmapError, NotFound
from gridmap.domain.reference import SERVICE_POINT_KINDS
from gridmap.services import kept
from gridmap.services.impact import refresh_community_summary
from gridmap.services.kept import KeptRefresh, kept_table


class CoverageError(GridmapError):
    code = "bad_coverage_request"


# -- results -------------------------------------------------------------------------------------


@dataclass
class LeaderLoad:
    leaders: int
    households_per_leader: float | None
    status: str  # ok / over / under / no_leader
    minimum: int
    maximum: int


@dataclass
class DeliveryCover:
    """Sealed and controlled parts of the grid, and the volunteers who deliver to their doors."""

    area_class: str | None  # the strictest class over the grid's controlled households
    households_inside: int
    volunteers: int
    volunteers_needed: int
    volunteers_per_100_households: float | None
    households_per_volunteer: int
    status: str  # ok / short / not_controlled


@dataclass
class OverdueContact:
    key_person_id: int
    category: str  # the first vulnerable category, for the list; all of them in ``categories``
    categories: list[str]
    last_contact: datetime | None
    contacts_in_window: int
    contacts_missing: int


@dataclass
class ContactCover:
    vulnerable: int
    on_time: int
    share_on_time: float | None
    required: int
    window_days: int
    window_start: datetime
    window_end: datetime
    overdue: list[OverdueContact]


@dataclass
class SlotGap:
    checkpoint_id: int
    checkpoint_name: str
    slot_start: datetime
    slot_end: datetime
    staff_rostered: int  # distinct staff rostered for the whole slot
    staff_needed: int


@dataclass
class CheckpointDuty:
    checkpoints: int
    slots: int
    slots_covered: int
    horizon_start: datetime
    horizon_end: datetime
    status: str  # ok / gaps / no_checkpoints
    gaps: list[SlotGap]


@dataclass
class KindCover:
    households_within: int
    share: float | None


@dataclass
class ServiceCover:
    distance_m: float
    measure: str  # 'straight-line': not a walking route
    kinds: dict[str, KindCover]


@dataclass
class ObservedPerson:
    key_person_id: int
    categories: list[str]
    observation_start: date
    days_left: int


@dataclass
class HomeObservation:
    count: int
    days: int
    people: list[ObservedPerson]


@dataclass
class GridMetrics:
    id: int
    code: str
    name: str
    community_id: int
    households: int
    residents: int
    key_persons: int
    key_persons_by_category: dict[str, int]
    staff_by_role: dict[str, int]
    leaders: LeaderLoad
    delivery: DeliveryCover
    contacts: ContactCover
    checkpoints: CheckpointDuty
    services: ServiceCover
    home_observation: HomeObservation

    def as_dict(self) -> dict:
        """Plain JSON-ready data: times as ISO 8601 in the command room's local time."""
        return _jsonable(asdict(self))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# -- SQL -----------------------------------------------------------------------------------------

# A query for some grids keeps what stands between [[ and ]], a query for all grids has ``true``
# there: "(:ids IS NULL OR col = ANY(:ids))" in one plan kept the planner from the plan each case needs.
_IN_GRIDS = "[[{col} = ANY(CAST(:ids AS integer[]))]]"
_FOR_SOME_GRIDS = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)


@functools.cache
def _q(template: str, some_grids: bool) -> TextClause:
    """The statement of ``template`` for some grids, or for all."""
    return text(_FOR_SOME_GRIDS.sub(lambda m: m.group(1) if some_grids else "true", template))

_GRIDS_SQL = (
    f"""
    SELECT g.id, g.code, g.name, g.community_id, g.households, g.residents
    FROM grid g WHERE {_IN_GRIDS.format(col="g.id")} ORDER BY g.code
    """
)

# Persons per category: the kept per-grid counts of migration 0010 (a link is one person in one
# category, so its count is the count of distinct persons); one row per grid, the categories as
# two arrays (120 k rows of a city cost more to fetch than 10 k).
_KEY_CATEGORIES_SQL = (
    f"""
    SELECT k.grid_id, array_agg(c.code), array_agg(k.n)
    FROM grid_key_count k JOIN key_person_category c ON c.id = k.category_id
    WHERE k.n > 0 AND {_IN_GRIDS.format(col="k.grid_id")}
    GROUP BY k.grid_id
    """
)

# Distinct persons per grid, through their household's building: the definition, for the full
# computation and the repair of the kept counts (migration 0014) alike. For all grids a hashed pass
# over the households (~1 s at city scale, so not on every read); for a few grids the indexes
# building(grid_id) -> household(building_id) -> key_person(household_id), milliseconds.
_KEY_PERSONS_SQL = (
    f"""
    SELECT b.grid_id, count(*)::int AS n
    FROM key_person kp JOIN household h ON h.id = kp.household_id JOIN building b ON b.id = h.building_id
    WHERE {_IN_GRIDS.format(col="b.grid_id")}
    GROUP BY b.grid_id
    """
)

# 包片联户: a staff member belongs to every grid they take directly, or through a building or
# household of it; counted once per grid.
_STAFF_SQL = (
    f"""
    WITH links AS (
      SELECT sa.staff_id, sa.grid_id FROM staff_assignment sa WHERE sa.grid_id IS NOT NULL
      UNION
      SELECT sa.staff_id, b.grid_id FROM staff_assignment sa JOIN building b ON b.id = sa.building_id
      UNION
      SELECT sa.staff_id, b.grid_id FROM staff_assignment sa
      JOIN household h ON h.id = sa.household_id JOIN building b ON b.id = h.building_id)
    SELECT l.grid_id, s.role, count(*) AS n
    FROM links l JOIN staff s ON s.id = l.staff_id AND s.active
    WHERE {_IN_GRIDS.format(col="l.grid_id")}
    GROUP BY l.grid_id, s.role
    """
)

# Households in sealed/controlled areas: buildings inside a live drawn area (the latest version of
# its key, not ended; inside by the same footprint-share rule as the impact preview), and every
# building of a grid whose own or whose community's area-scheme class is sealed/controlled now.
_CONTROLLED_SQL = (
    f"""
    WITH areas AS MATERIALIZED (
      SELECT ca.geom, rc.code, rc.severity
      FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id
      WHERE rc.scheme = 'area' AND rc.code = ANY(:classes)
        AND (ca.ended_at IS NULL OR ca.ended_at > :now)
        AND ca.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = ca.area_key)),
    drawn AS (
      SELECT b.id, max(a.severity) AS severity,
             (array_agg(a.code ORDER BY a.severity DESC))[1] AS code
      FROM building b JOIN areas a ON ST_Intersects(b.geom, a.geom)
      WHERE {_IN_GRIDS.format(col="b.grid_id")}
        AND CASE WHEN ST_CoveredBy(b.geom, a.geom) THEN true
                 ELSE ST_Area(ST_Intersection(b.geom, a.geom)) >= :share * ST_Area(b.geom) END
      GROUP BY b.id),
    assigned AS (
      SELECT g.id AS grid_id, max(rc.severity) AS severity,
             (array_agg(rc.code ORDER BY rc.severity DESC))[1] AS code
      FROM grid g
      JOIN risk_assignment ra ON ra.grid_id = g.id OR ra.community_id = g.community_id
      JOIN risk_class rc ON rc.id = ra.risk_class_id
      WHERE rc.scheme = 'area' AND rc.code = ANY(:classes)
        AND ra.valid_from <= :now AND (ra.valid_to IS NULL OR ra.valid_to > :now)
        AND {_IN_GRIDS.format(col="g.id")}
      GROUP BY g.id)
    SELECT grid_id, sum(households) AS households, (array_agg(code ORDER BY severity DESC))[1] AS code
    FROM (
      SELECT b.grid_id, b.households, greatest(d.severity, s.severity) AS severity,
             CASE WHEN coalesce(d.severity, 0) >= coalesce(s.severity, 0) THEN d.code ELSE s.code END AS code
      FROM building b
      LEFT JOIN drawn d ON d.id = b.id
      LEFT JOIN assigned s ON s.grid_id = b.grid_id
      WHERE (d.id IS NOT NULL OR s.grid_id IS NOT NULL) AND {_IN_GRIDS.format(col="b.grid_id")}) x
    GROUP BY grid_id
    """
)

# Vulnerable key people (their grid through the building their links carry) with their contacts
# in the window, per grid: how many, how many on time (``contact_on_time``: at least :required
# contacts in the window), and the late ones with their last contact ever (up to now) as one JSON
# array: the 120,000 people on time of a city need no row of their own in Python. For all grids
# one grouped pass over the window's part of the log, the last contact before the window looked
# up by index only for the late people without a contact in it; for a few grids the index on
# (key_person_id, contacted_at) per person.
_VULNERABLE = """
    WITH vulnerable AS (
      SELECT l.key_person_id, min(l.building_id) AS building_id,
             array_agg(kc.code ORDER BY kc.sort_order, kc.code) AS codes
      FROM key_person_category_link l JOIN key_person_category kc ON kc.id = l.category_id AND kc.vulnerable
      WHERE [[l.building_id IN (SELECT id FROM building WHERE grid_id = ANY(CAST(:ids AS integer[])))]]
      GROUP BY l.key_person_id),
"""
_CONTACTS_PER_GRID = """
    SELECT grid_id, count(*) AS vulnerable, count(*) FILTER (WHERE n >= :required) AS on_time,
           jsonb_agg(jsonb_build_array(key_person_id, codes, n, last)) FILTER (WHERE n < :required) AS late
    FROM (SELECT p.grid_id, p.key_person_id, p.codes, p.n,
                 CASE WHEN p.n < :required THEN coalesce(p.last, (
                   SELECT max(cl.contacted_at) FROM contact_log cl
                   WHERE cl.key_person_id = p.key_person_id AND cl.contacted_at <= :since)) END AS last
          FROM p) x
    GROUP BY grid_id
"""
_CONTACTS_ALL_SQL = (
    _VULNERABLE
    + """
    win AS (
      SELECT cl.key_person_id, count(*) AS n, max(cl.contacted_at) AS last
      FROM contact_log cl WHERE cl.contacted_at > :since AND cl.contacted_at <= :now
      GROUP BY cl.key_person_id),
    p AS (
      SELECT b.grid_id, v.key_person_id, v.codes, coalesce(w.n, 0) AS n, w.last
      FROM vulnerable v JOIN building b ON b.id = v.building_id
      LEFT JOIN win w ON w.key_person_id = v.key_person_id)
    """
    + _CONTACTS_PER_GRID
)
_CONTACTS_SOME_SQL = (
    _VULNERABLE
    + """
    p AS (
      SELECT b.grid_id, v.key_person_id, v.codes, c.n, c.last
      FROM vulnerable v JOIN building b ON b.id = v.building_id
      CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE cl.contacted_at > :since) AS n, max(cl.contacted_at) AS last
        FROM contact_log cl WHERE cl.key_person_id = v.key_person_id AND cl.contacted_at <= :now) c)
    """
    + _CONTACTS_PER_GRID
)

_CHECKPOINTS_SQL = (
    f"""
    WITH ck AS MATERIALIZED (  -- inlined, the grid of every compound was found twice
      SELECT ck.id, ck.name, ck.shifts_per_day, ck.staff_per_shift,
             coalesce(
               (SELECT g.id FROM grid g WHERE ST_Intersects(g.geom, ST_PointOnSurface(c.geom))
                ORDER BY g.id LIMIT 1),
               (SELECT b.grid_id FROM building b WHERE b.compound_id = c.id
                GROUP BY b.grid_id ORDER BY count(*) DESC, b.grid_id LIMIT 1)) AS grid_id
      FROM checkpoint ck JOIN gate ga ON ga.id = ck.gate_id JOIN compound c ON c.id = ga.compound_id
      WHERE ck.active)
    SELECT * FROM ck WHERE ck.grid_id IS NOT NULL AND {_IN_GRIDS.format(col="ck.grid_id")} ORDER BY ck.id
    """
)

# The shifts as four arrays in one row (times in microseconds since the epoch, exact): 50,000
# rows of datetimes cost ~0.3 s to fetch, the arrays a fraction of that.
_SHIFTS_SQL = text(
    """
    SELECT array_agg(ds.checkpoint_id), array_agg(ds.staff_id),
           array_agg((extract(epoch FROM ds.starts_at) * 1000000)::bigint),
           array_agg((extract(epoch FROM ds.ends_at) * 1000000)::bigint)
    FROM duty_shift ds JOIN staff s ON s.id = ds.staff_id AND s.active
    WHERE ds.checkpoint_id = ANY(:checkpoints) AND ds.starts_at < :until AND ds.ends_at > :since
    """
)

# A box grown by the distance narrows by index (degrees: a lat degree is >= 110,540 m, a lon degree
# >= 111,320 m x cos(lat); 1 % more for the latitude span); geography measures the rest.
_NEAR_BOX = "ST_Expand({g}, 1.01 * :dist / (111320.0 * cos(radians(ST_Y({g})))), 1.01 * :dist / 110540.0)"

# Households within the distance of a point of each kind, per grid, tested once per distinct point.
_COVERAGE_SQL = (
    f"""
    WITH loc AS MATERIALIZED (  -- grouped on numbers, not geometries: faster
      SELECT p.grid_id, p.n, p.geom, p.geom::geography AS geog, {_NEAR_BOX.format(g="p.geom")} AS box
      FROM (SELECT b.grid_id, ST_SetSRID(ST_MakePoint(p.x, p.y), {SRID}) AS geom, p.n
            FROM (SELECT h.building_id, ST_X(h.geom) AS x, ST_Y(h.geom) AS y, count(*) AS n
                  FROM household h
                  WHERE [[h.building_id IN (SELECT id FROM building WHERE grid_id = ANY(CAST(:ids AS integer[])))]]
                  GROUP BY 1, 2, 3) p
            JOIN building b ON b.id = p.building_id
            WHERE {_IN_GRIDS.format(col="b.grid_id")}) p)
    SELECT loc.grid_id, k.kind,
           coalesce(sum(loc.n) FILTER (WHERE EXISTS (
             SELECT 1 FROM service_point sp
             WHERE sp.kind = k.kind AND sp.geom && loc.box AND ST_DWithin(sp.geom::geography, loc.geog, :dist))),
             0) AS within
    FROM loc CROSS JOIN unnest(CAST(:kinds AS text[])) AS k(kind)
    GROUP BY loc.grid_id, k.kind
    """
)

# Persons in home observation per grid, one row per grid with the people as JSON, in the order
# shown (start, id): 45,000 rows of a city cost ~0.4 s to fetch one by one, 10,000 JSON arrays a
# fraction of that. The partial index of 0014 finds the starts of the last days.
_OBSERVATION_SQL = (
    f"""
    SELECT grid_id, json_agg(json_build_array(id, codes, observation_start) ORDER BY observation_start, id)::text
    FROM (SELECT b.grid_id, kp.id, array_agg(c.code ORDER BY c.sort_order, c.code) AS codes, kp.observation_start
          FROM key_person kp
          JOIN key_person_category_link l ON l.key_person_id = kp.id
          JOIN key_person_category c ON c.id = l.category_id AND c.code = ANY(:codes)
          JOIN building b ON b.id = l.building_id
          WHERE kp.observation_start > :since AND kp.observation_start <= :today
            AND {_IN_GRIDS.format(col="b.grid_id")}
          GROUP BY b.grid_id, kp.id, kp.observation_start) x
    GROUP BY grid_id
    """
)


# -- pieces --------------------------------------------------------------------------------------


@contextmanager
def _tuned(session: Session, settings: Settings) -> Iterator[None]:
    """work_mem and jit of the settings for the metrics' queries, then back to what they were."""
    keep = session.execute(text("SELECT current_setting('work_mem'), current_setting('jit')")).one()
    tune = text("SELECT set_config('work_mem', :w, true), set_config('jit', :j, true)")
    session.execute(tune, {"w": settings.metrics_work_mem, "j": "on" if settings.metrics_jit else "off"})
    yield  # an error leaves them to the end of the (aborted) transaction
    session.execute(tune, {"w": keep[0], "j": keep[1]})


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def local_tz(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.timezone)


def _grid_rows(session: Session, ids: list[int] | None):
    return session.execute(_q(_GRIDS_SQL, ids is not None), {"ids": ids}).all()


def key_persons_by_grid(session: Session, ids: list[int] | None) -> dict[int, tuple[int, dict[str, int]]]:
    """Per grid: (distinct key persons, persons per category), the persons counted from the rows
    (the check of the kept counts; :func:`kept_key_persons_by_grid` is what the metrics read)."""
    return _with_categories(session, ids, key_person_counts_by_grid(session, ids))


def key_person_counts_by_grid(session: Session, ids: list[int] | None) -> dict[int, int]:
    """Per grid: distinct key persons, computed from the rows (the full computation)."""
    return dict(session.execute(_q(_KEY_PERSONS_SQL, ids is not None), {"ids": ids}).all())


def _with_categories(
    session: Session, ids: list[int] | None, persons: dict[int, int]
) -> dict[int, tuple[int, dict[str, int]]]:
    by_code = {grid_id: dict(sorted(zip(codes, ns, strict=True)))
               for grid_id, codes, ns in session.execute(_q(_KEY_CATEGORIES_SQL, ids is not None), {"ids": ids}).all()}
    return {g: (persons.get(g, 0), by_code.get(g, {})) for g in persons.keys() | by_code.keys()}


def staff_by_grid(session: Session, ids: list[int] | None) -> dict[int, dict[str, int]]:
    """Per grid: active staff by role, computed from the assignments (the check of the kept counts)."""
    return _by_role(session.execute(_q(_STAFF_SQL, ids is not None), {"ids": ids}).all())


def _by_role(rows) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for grid_id, role, n in rows:
        out.setdefault(grid_id, {})[role] = n
    return {g: dict(sorted(r.items())) for g, r in out.items()}


# -- figures kept per grid, repaired from a log of the grids that changed (0013, 0014) -----------
# (the mechanism: gridmap.services.kept)

StaffCountRefresh = KeptRefresh  # the name of 0013


# -- staff per grid and role kept (migration 0013) -----------------------------------------------

_STAFF_KEPT = kept_table(
    "grid_staff_count", (("grid_id", "integer"), ("role", "text"), ("n", "integer")),
    state="staff_count_state", dirty="staff_count_dirty",
    compute=lambda session, ids: [(g, role, n) for g, roles in staff_by_grid(session, ids).items()
                                  for role, n in roles.items()],
)


def refresh_staff_counts(session: Session, *, full: bool = False) -> KeptRefresh:
    """Bring the kept staff counts up to date with the rows, in the caller's transaction.

    Recomputes, with the query of the full computation (:func:`staff_by_grid`), the grids the
    change log names, or everything when ``full``, when nothing was computed yet or after a
    TRUNCATE (:func:`gridmap.services.kept.refresh`).
    """
    return kept.refresh(session, _STAFF_KEPT, full)


# One row per grid, the roles as two arrays (77 k rows of a city cost more to fetch than 10 k).
_KEPT_STAFF_SQL = f"""
    SELECT grid_id, array_agg(role), array_agg(n) FROM grid_staff_count WHERE {_IN_GRIDS.format(col="grid_id")}
    GROUP BY grid_id
"""


def kept_staff_by_grid(session: Session, ids: list[int] | None) -> dict[int, dict[str, int]]:
    """Per grid: active staff by role, the same figures as :func:`staff_by_grid`, from the kept
    counts, repaired first when anything changed (so never stale, as :func:`kept_service_coverage`)."""
    kept.ensure_fresh(session, _STAFF_KEPT)
    rows = session.execute(_q(_KEPT_STAFF_SQL, ids is not None), {"ids": ids}).all()
    return {g: dict(sorted(zip(roles, ns, strict=True))) for g, roles, ns in rows}


# -- distinct key persons per grid kept (migration 0014) -----------------------------------------

_KEY_PERSONS_KEPT = kept_table(
    "grid_key_person_count", (("grid_id", "integer"), ("n", "integer")),
    state="key_person_count_state", dirty="key_person_count_dirty",
    compute=lambda session, ids: list(key_person_counts_by_grid(session, ids).items()),
)


def refresh_key_person_counts(session: Session, *, full: bool = False) -> KeptRefresh:
    """Bring the kept distinct key persons per grid up to date with the rows, in the caller's
    transaction: the grids the change log names, recomputed with :func:`key_person_counts_by_grid`,
    or everything (:func:`gridmap.services.kept.refresh`)."""
    return kept.refresh(session, _KEY_PERSONS_KEPT, full)


_KEPT_KEY_PERSONS_SQL = f"""
    SELECT grid_id, n FROM grid_key_person_count WHERE {_IN_GRIDS.format(col="grid_id")}
"""


def kept_key_persons_by_grid(session: Session, ids: list[int] | None) -> dict[int, tuple[int, dict[str, int]]]:
    """Per grid: (distinct key persons, persons per category), the same figures as
    :func:`key_persons_by_grid`: the persons from the kept counts, repaired first when anything
    changed; the categories from ``grid_key_count`` (kept by the triggers of 0008/0010)."""
    kept.ensure_fresh(session, _KEY_PERSONS_KEPT)
    persons = dict(session.execute(_q(_KEPT_KEY_PERSONS_SQL, ids is not None), {"ids": ids}).all())
    return _with_categories(session, ids, persons)


def refresh_kept_figures(
    session: Session, settings: Settings, *, full: bool = False
) -> dict[str, KeptRefresh | CoverageRefresh]:
    """Bring every kept figure (per grid: service coverage, staff, key persons; per community: the
    impact summary) up to date in the caller's transaction: repaired from their logs, or computed
    in full when ``full`` (the loaders, before their commit, so the first metrics read or impact
    preview after a load does not pay for it; city: see the module docstring for the time).

    In the order a metrics read repairs them (key persons, staff, service coverage), then the
    impact summary: each refresh locks its kept table's state row until the commit, and two
    transactions taking the same locks in another order could deadlock.
    """
    with _tuned(session, settings):
        return {
            "key_person_counts": refresh_key_person_counts(session, full=full),
            "staff_counts": refresh_staff_counts(session, full=full),
            "service_coverage": refresh_service_coverage(session, settings, full=full),
            "community_summary": refresh_community_summary(session, full=full),
        }


def controlled_by_grid(
    session: Session, settings: Settings, now: datetime, ids: list[int] | None
) -> dict[int, tuple[int, str]]:
    """Per grid: (households in sealed/controlled areas, the strictest class among them)."""
    rows = session.execute(
        _q(_CONTROLLED_SQL, ids is not None),
        {"ids": ids, "now": now, "classes": list(rules.DELIVERY_AREA_CLASSES),
         "share": settings.building_inside_share},
    ).all()
    return {grid_id: (int(n), code) for grid_id, n, code in rows}


def _delivery(households_inside: int, area_class: str | None, volunteers: int, settings: Settings) -> DeliveryCover:
    per = settings.households_per_delivery_volunteer
    return DeliveryCover(
        area_class=area_class,
        households_inside=households_inside,
        volunteers=volunteers,
        volunteers_needed=rules.delivery_volunteers_needed(households_inside, per),
        volunteers_per_100_households=rules.volunteers_per_100(volunteers, households_inside),
        households_per_volunteer=per,
        status=rules.delivery_status(households_inside, volunteers, per),
    )


def _leaders(households: int, leaders: int, settings: Settings) -> LeaderLoad:
    lo, hi = settings.households_per_grid_min, settings.households_per_grid_max
    return LeaderLoad(
        leaders=leaders,
        households_per_leader=rules.households_per_leader(households, leaders),
        status=rules.leader_status(households, leaders, lo, hi),
        minimum=lo,
        maximum=hi,
    )


def contacts_by_grid(
    session: Session, settings: Settings, now: datetime, ids: list[int] | None
) -> dict[int, tuple[int, int, list[OverdueContact]]]:
    """Per grid: (vulnerable people, contacted on time, the overdue ones)."""
    since, _ = rules.contact_window(now, settings.vulnerable_contact_window_days)
    required = settings.vulnerable_contacts_per_week
    tz = local_tz(settings)
    out: dict[int, tuple[int, int, list[OverdueContact]]] = {}
    for grid_id, vulnerable, on_time, late in session.execute(
        _q(_CONTACTS_ALL_SQL if ids is None else _CONTACTS_SOME_SQL, ids is not None),
        {"ids": ids, "since": since, "now": now, "required": required},
    ).all():
        overdue = []
        for kp_id, codes, n, last in late or ():
            overdue.append(OverdueContact(
                key_person_id=kp_id, category=codes[0], categories=list(codes),
                last_contact=datetime.fromisoformat(last).astimezone(tz) if last else None,
                contacts_in_window=int(n), contacts_missing=rules.contacts_missing(n, required),
            ))
        # Longest without contact first: never contacted, then the oldest last contact.
        overdue.sort(key=lambda o: (o.last_contact is not None, o.last_contact or now, o.key_person_id))
        out[grid_id] = (int(vulnerable), int(on_time), overdue)
    return out


def checkpoint_duty_by_grid(
    session: Session, settings: Settings, now: datetime, ids: list[int] | None
) -> tuple[dict[int, tuple[int, int, int, list[SlotGap]]], datetime, datetime]:
    """Per grid: (checkpoints, slots checked, slots covered, gaps), and the horizon checked.

    A checkpoint's slots depend only on its shifts per day, so they are cut once per value; the
    rosters arrive as arrays of microseconds and are held against the slots by
    :func:`gridmap.domain.coverage.covering_staff_counts` (the rule of ``covering_staff``).
    """
    tz = local_tz(settings)
    horizon = settings.checkpoint_roster_horizon_hours
    checkpoints = session.execute(_q(_CHECKPOINTS_SQL, ids is not None), {"ids": ids}).all()
    slots_by_shifts = {
        n: rules.duty_slots(now, tz, shifts_per_day=n, duty_hours_per_day=settings.duty_hours_per_day,
                            horizon_hours=horizon)
        for n in {ck.shifts_per_day for ck in checkpoints}
    }
    us_by_shifts = {n: ([_us(x.start) for x in slots], [_us(x.end) for x in slots])
                    for n, slots in slots_by_shifts.items()}
    slot_group: list[int] = []
    slot_start: list[int] = []
    slot_end: list[int] = []
    for ck in checkpoints:
        starts, ends = us_by_shifts[ck.shifts_per_day]
        slot_group += [ck.id] * len(starts)
        slot_start += starts
        slot_end += ends
    counts: list[int] = []
    if slot_group:
        since = min(x.start for slots in slots_by_shifts.values() for x in slots)
        until = max(x.end for slots in slots_by_shifts.values() for x in slots)
        ck_ids, staff_ids, starts_us, ends_us = session.execute(
            _SHIFTS_SQL, {"checkpoints": sorted(set(slot_group)), "since": since, "until": until}).one()
        counts = rules.covering_staff_counts(
            np.array(slot_group), np.array(slot_start), np.array(slot_end),
            np.array(ck_ids or [], dtype=np.int64), np.array(staff_ids or [], dtype=np.int64),
            np.array(starts_us or [], dtype=np.int64), np.array(ends_us or [], dtype=np.int64),
        ).tolist()
    out: dict[int, tuple[int, int, int, list[SlotGap]]] = {}
    i = 0
    for ck in checkpoints:
        n_ck, n_slots, n_covered, gaps = out.get(ck.grid_id, (0, 0, 0, []))
        slots = slots_by_shifts[ck.shifts_per_day]
        for slot, staff in zip(slots, counts[i:i + len(slots)], strict=True):
            if staff >= ck.staff_per_shift:
                n_covered += 1
            else:
                gaps.append(SlotGap(ck.id, ck.name, slot.start.astimezone(tz), slot.end.astimezone(tz),
                                    staff, ck.staff_per_shift))
        i += len(slots)
        out[ck.grid_id] = (n_ck + 1, n_slots + len(slots), n_covered, gaps)
    for *_counts, gaps in out.values():
        gaps.sort(key=lambda g: (g.slot_start, g.checkpoint_id))
    return out, now.astimezone(tz), (now + timedelta(hours=horizon)).astimezone(tz)


_EPOCH = datetime(1970, 1, 1, tzinfo=ZoneInfo("UTC"))


def _us(t: datetime) -> int:
    """Microseconds since the epoch: the clock of the shifts' arrays (``_SHIFTS_SQL``)."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def service_coverage(
    session: Session, settings: Settings, grid_ids: list[int] | None = None, kinds: tuple[str, ...] | None = None
) -> dict[int, dict[str, int]]:
    """Per grid and kind: households within ``service_walk_distance_m`` (straight line) of a point."""
    kinds = tuple(kinds or settings.coverage_service_kinds)
    _check_kinds(kinds)
    out: dict[int, dict[str, int]] = {}
    rows = session.execute(
        _q(_COVERAGE_SQL, grid_ids is not None),
        {"ids": grid_ids, "kinds": list(kinds), "dist": settings.service_walk_distance_m},
    ).all()
    for grid_id, kind, within in rows:
        out.setdefault(grid_id, {})[kind] = int(within)
    return out


# -- service coverage kept per grid and kind (migration 0012) -------------------------------------

# Grids with a household within reach of a logged point (an old or new position) of the kind.
_DIRTY_GRIDS_SQL = text(
    """
    SELECT DISTINCT b.grid_id
    FROM service_coverage_dirty d
    JOIN household h ON h.geom && ST_Expand(
           d.geom,
           1.01 * :dist / (111320.0 * cos(radians(least(89.0, greatest(abs(ST_YMin(d.geom)), abs(ST_YMax(d.geom))))))),
           1.01 * :dist / 110540.0)
         AND ST_DWithin(d.geom::geography, h.geom::geography, :dist)
    JOIN building b ON b.id = h.building_id
    WHERE d.id = ANY(:logged) AND d.kind = :kind
    """
)


@dataclass
class CoverageRefresh:
    mode: str  # 'fresh' (nothing to do), 'repaired' (the logged grids), 'full'
    log_rows: int
    grids: int  # grid x kind figures recomputed (full: all)
    ms: float


def _coverage_state(session: Session):
    return session.execute(text(
        "SELECT s.distance_m, s.kinds, EXISTS (SELECT 1 FROM service_coverage_dirty) AS dirty "
        "FROM (SELECT 1) one LEFT JOIN service_coverage_state s ON s.id = 1"
    )).one()


def _state_fits(state, settings: Settings) -> bool:
    return state.distance_m == settings.service_walk_distance_m and sorted(state.kinds or ()) == sorted(
        settings.coverage_service_kinds)


def refresh_service_coverage(session: Session, settings: Settings, *, full: bool = False) -> CoverageRefresh:
    """Bring the kept coverage up to date with the rows, in the caller's transaction.

    Recomputes, with the query of the full computation, the grids the change log names (a moved
    point: the grids with a household within reach of its old or new position, for its kind), or
    everything when ``full``, when nothing was kept yet, when the distance or the kinds of the
    settings differ from those kept, or after a TRUNCATE. Log rows committed meanwhile by others stay
    for the next refresh; their grids may be recomputed twice, never counted twice.
    """
    t0 = time.perf_counter()
    kinds = tuple(settings.coverage_service_kinds)
    _check_kinds(kinds)
    # One refresher at a time; readers that find the kept figures fresh never take this lock.
    session.execute(text(
        "INSERT INTO service_coverage_state (id, distance_m, kinds) VALUES (1, -1, '{}') ON CONFLICT (id) DO NOTHING"
    ))
    state = session.execute(text(
        "SELECT distance_m, kinds FROM service_coverage_state WHERE id = 1 FOR UPDATE"
    )).one()
    # Read now, deleted once handled (the state lock keeps other refreshers out meanwhile).
    logged = session.execute(text("SELECT id, kind, grid_id, everything FROM service_coverage_dirty")).all()
    full = full or not _state_fits(state, settings) or any(r.everything for r in logged)
    if full:
        session.execute(text("DELETE FROM grid_service_coverage"))
        figures = service_coverage(session, settings, None, kinds)
        _write_coverage(session, figures, None)
        recomputed = len(figures) * len(kinds)
    else:
        grids_of = {k: {r.grid_id for r in logged if r.grid_id is not None} for k in kinds}
        dist = settings.service_walk_distance_m
        for kind in kinds:
            points = [r.id for r in logged if r.kind == kind]
            if points:
                grids_of[kind].update(session.execute(
                    _DIRTY_GRIDS_SQL, {"logged": points, "kind": kind, "dist": dist}).scalars())
        recomputed = 0
        for kind, grids in grids_of.items():
            if grids:
                ids = sorted(grids)
                figures = service_coverage(session, settings, ids, (kind,))
                _write_coverage(session, figures, (kind, ids))
                recomputed += len(ids)
    if logged:
        session.execute(text("DELETE FROM service_coverage_dirty WHERE id = ANY(:ids)"), {"ids": [r.id for r in logged]})
    session.execute(text(
        "UPDATE service_coverage_state SET distance_m = :dist, kinds = :kinds, computed_at = now() WHERE id = 1"
    ), {"dist": settings.service_walk_distance_m, "kinds": list(kinds)})
    mode = "full" if full else ("repaired" if logged else "fresh")
    return CoverageRefresh(mode, len(logged), recomputed, round((time.perf_counter() - t0) * 1000, 2))


def _write_coverage(session: Session, figures: dict[int, dict[str, int]], only: tuple[str, list[int]] | None):
    if only is not None:
        kind, ids = only
        session.execute(text("DELETE FROM grid_service_coverage WHERE kind = :kind AND grid_id = ANY(:ids)"),
                        {"kind": kind, "ids": ids})
    rows = [{"g": g, "k": k, "n": n} for g, by_kind in figures.items() for k, n in by_kind.items() if n]
    if rows:
        # Grids deleted since (their figures went with them) are left out.
        session.execute(text(
            "INSERT INTO grid_service_coverage (grid_id, kind, households_within) "
            "SELECT g, k, n FROM unnest(CAST(:g AS integer[]), CAST(:k AS text[]), CAST(:n AS integer[])) AS x(g, k, n) "
            "WHERE EXISTS (SELECT 1 FROM grid WHERE grid.id = x.g)"
        ), {"g": [r["g"] for r in rows], "k": [r["k"] for r in rows], "n": [r["n"] for r in rows]})


def kept_service_coverage(
    session: Session, settings: Settings, grid_ids: list[int] | None = None
) -> dict[int, dict[str, int]]:
    """Per grid and kind: the kept coverage, the same figures as :func:`service_coverage`.

    When anything changed since the last refresh, the refresh runs first (see
    :func:`refresh_service_coverage`), so the answer is always that of the rows as this
    transaction sees them: a command room must not act on stale figures, and after one point
    moved the repair takes a few dozen milliseconds. Only the first read after the migration, or
    after the distance or kinds changed, pays a full recomputation (seconds at city scale).
    """
    state = _coverage_state(session)
    if state.dirty or not _state_fits(state, settings):
        refresh_service_coverage(session, settings)
    out: dict[int, dict[str, int]] = {}
    rows = session.execute(_q(_KEPT_SQL, grid_ids is not None), {"ids": grid_ids}).all()
    for grid_id, kind, n in rows:
        out.setdefault(grid_id, {})[kind] = n
    return out


_KEPT_SQL = f"""
    SELECT grid_id, kind, households_within FROM grid_service_coverage
    WHERE {_IN_GRIDS.format(col="grid_id")}
"""


def observation_by_grid(
    session: Session, settings: Settings, now: datetime, ids: list[int] | None
) -> dict[int, list[ObservedPerson]]:
    today = now.astimezone(local_tz(settings)).date()
    days = settings.home_observation_days
    out: dict[int, list[ObservedPerson]] = {}
    rows = session.execute(_q(_OBSERVATION_SQL, ids is not None), {
        "ids": ids, "codes": list(settings.home_observation_categories),
        "today": today, "since": today - timedelta(days=days),
    }).all()
    for grid_id, people in rows:
        for kp_id, codes, start in json.loads(people):
            start = date.fromisoformat(start)
            left = rules.observation_days_left(start, today, days)
            if left is not None:
                out.setdefault(grid_id, []).append(ObservedPerson(kp_id, codes, start, left))
    return out


def _check_kinds(kinds: tuple[str, ...]) -> None:
    unknown = [k for k in kinds if k not in SERVICE_POINT_KINDS]
    if unknown:
        raise CoverageError(
            f"未知服务点类别 / unknown service point kind {', '.join(unknown)}; one of {', '.join(SERVICE_POINT_KINDS)}",
            code="bad_kind",
        )


# -- the metrics ---------------------------------------------------------------------------------


def grid_metrics(
    session: Session, settings: Settings, now: datetime, grid_ids: list[int] | None = None
) -> list[GridMetrics]:
    """Every metric of issue 5 for ``grid_ids`` (all grids when None), ordered by grid code."""
    _require_aware(now)
    ids = sorted(set(grid_ids)) if grid_ids is not None else None
    with _tuned(session, settings), _without_cyclic_gc():
        return _grid_metrics(session, settings, now, ids)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector paused while the metrics are built, then as it was.

    The metrics of a city are ~200,000 small objects (rows, people, gaps, one GridMetrics per
    grid), all without cycles: the collector found nothing to free, yet its full passes over
    the growing heap cost ~0.5 s of ~1.8 s (measured on gridmap_city). Reference counting still
    frees everything; another thread's cycles wait until the end of this call at most.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def _alongside(session: Session, settings: Settings, work: Callable[[Session], object]) -> Iterator[Callable[[], object]]:
    """Run ``work`` on a connection of its own while the caller goes on; yields a function that
    waits for its result (and raises its error).

    Only when the other connection sees what ``session`` sees: in READ COMMITTED every statement
    reads the rows committed when it starts, on any connection, so the two differ only by what
    ``session``'s own transaction wrote and has not committed. A transaction that wrote nothing
    has no transaction id yet (``pg_current_xact_id_if_assigned``); otherwise, and under a
    stricter isolation level, ``work`` runs on ``session`` when the result is asked for.
    """
    alone = session.execute(text(
        "SELECT pg_current_xact_id_if_assigned() IS NULL AND current_setting('transaction_isolation') = 'read committed'"
    )).scalar_one()
    if not alone:
        yield lambda: work(session)
        return

    def on_its_own() -> object:
        with Session(session.get_bind().engine) as other, other.begin(), _tuned(other, settings):
            return work(other)

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(on_its_own)
        try:
            yield future.result
        finally:
            future.cancel()


def _grid_metrics(session: Session, settings: Settings, now: datetime, ids: list[int] | None) -> list[GridMetrics]:
    grids = _grid_rows(session, ids)
    if not grids:
        return []
    # The contacts are the largest part for all grids (~1 s of ~2 s in a city) and read no kept
    # figure: on a second connection (the database has cores to spare) while the rest go on here.
    side = _alongside(session, settings, lambda other: contacts_by_grid(other, settings, now, ids)) \
        if ids is None else nullcontext(lambda: contacts_by_grid(session, settings, now, ids))
    with side as contacts_result:
        key_persons = kept_key_persons_by_grid(session, ids)
        staff = kept_staff_by_grid(session, ids)
        controlled = controlled_by_grid(session, settings, now, ids)
        duty, horizon_start, horizon_end = checkpoint_duty_by_grid(session, settings, now, ids)
        covered = kept_service_coverage(session, settings, ids)
        observed = observation_by_grid(session, settings, now, ids)
        contacts = contacts_result()
    kinds = tuple(settings.coverage_service_kinds)
    tz = local_tz(settings)
    # Once, not once per grid (10,000 conversions to the local zone cost ~50 ms).
    window_start, window_end = (t.astimezone(tz) for t in rules.contact_window(
        now, settings.vulnerable_contact_window_days))

    out: list[GridMetrics] = []
    for g in grids:
        kept_kinds = covered.get(g.id, {})
        roles = staff.get(g.id, {})
        persons, by_category = key_persons.get(g.id, (0, {}))
        inside, area_class = controlled.get(g.id, (0, None))
        vulnerable, on_time, overdue = contacts.get(g.id, (0, 0, []))
        n_ck, n_slots, n_covered, gaps = duty.get(g.id, (0, 0, 0, []))
        people = observed.get(g.id, [])
        out.append(GridMetrics(
            id=g.id, code=g.code, name=g.name, community_id=g.community_id,
            households=g.households, residents=g.residents,
            key_persons=persons, key_persons_by_category=by_category,
            staff_by_role=roles,
            leaders=_leaders(g.households, roles.get("grid_leader", 0), settings),
            delivery=_delivery(inside, area_class, roles.get("volunteer", 0), settings),
            contacts=ContactCover(
                vulnerable=vulnerable, on_time=on_time, share_on_time=rules.share(on_time, vulnerable),
                required=settings.vulnerable_contacts_per_week,
                window_days=settings.vulnerable_contact_window_days,
                window_start=window_start, window_end=window_end,
                overdue=overdue,
            ),
            checkpoints=CheckpointDuty(
                checkpoints=n_ck, slots=n_slots, slots_covered=n_covered,
                horizon_start=horizon_start, horizon_end=horizon_end,
                status=rules.NO_CHECKPOINTS if not n_ck else (rules.DUTY_GAPS if gaps else rules.DUTY_OK),
                gaps=gaps,
            ),
            services=ServiceCover(
                distance_m=settings.service_walk_distance_m, measure=rules.DISTANCE_MEASURE,
                kinds={
                    k: KindCover(n, rules.share(n, g.households))
                    for k in kinds
                    for n in [kept_kinds.get(k, 0)]
                },
            ),
            home_observation=HomeObservation(len(people), settings.home_observation_days, people),
        ))
    return out


# -- staffing gaps and proposed moves ------------------------------------------------------------


@dataclass
class StaffingGaps:
    gaps: list[dict]
    moves: list[dict]
    neighbour_min_border_m: float
    volunteers_kept_per_grid: int

    def as_dict(self) -> dict:
        return _jsonable(asdict(self))


_NEIGHBOURS_SQL = text(
    """
    SELECT a.id AS grid_id, b.id AS neighbour_id
    FROM grid a JOIN grid b ON b.id <> a.id AND ST_DWithin(a.geom, b.geom, :tol)
    WHERE a.id = ANY(:ids)
      AND ST_Length(ST_Intersection(ST_Boundary(b.geom), ST_Buffer(a.geom, :tol))::geography) >= :min_border
    """
)


def neighbours_of(session: Session, settings: Settings, grid_ids: list[int]) -> dict[int, set[int]]:
    """Grids sharing at least ``neighbour_min_border_m`` of border with each of ``grid_ids``.

    Borders within ``neighbour_border_tolerance_m`` count as shared: neighbouring grids of two
    communities are drawn separately and their common edge does not match vertex for vertex. The
    tolerance goes into degrees at a metre per 1/111,320°, a bound that only matters to the metre.
    """
    if not grid_ids:
        return {}
    rows = session.execute(_NEIGHBOURS_SQL, {
        "ids": list(grid_ids), "tol": settings.neighbour_border_tolerance_m / 111_320.0,
        "min_border": settings.neighbour_min_border_m,
    })
    out: dict[int, set[int]] = {g: set() for g in grid_ids}
    for grid_id, neighbour in rows:
        out[grid_id].add(neighbour)
    return out


def staffing_gaps(session: Session, settings: Settings, now: datetime) -> StaffingGaps:
    """Grids without a leader, with too many households per leader, or short of delivery
    volunteers in sealed/controlled areas; and volunteers to move there from neighbouring grids
    that have more than they need."""
    _require_aware(now)
    grids = _grid_rows(session, None)
    staff = kept_staff_by_grid(session, None)
    controlled = controlled_by_grid(session, settings, now, None)
    per, hi = settings.households_per_delivery_volunteer, settings.households_per_grid_max
    gaps: list[dict] = []
    short: dict[int, int] = {}
    spare: dict[int, int] = {}
    code_of = {g.id: g.code for g in grids}
    for g in grids:
        roles = staff.get(g.id, {})
        leaders = roles.get("grid_leader", 0)
        status = rules.leader_status(g.households, leaders, settings.households_per_grid_min, hi)
        base = {"grid_id": g.id, "code": g.code, "name": g.name}
        if status == rules.NO_LEADER:
            gaps.append({**base, "reason": "no_leader",
                         "message_zh": f"{g.name}（{g.households} 户）没有网格员。",
                         "message_en": f"{g.code} ({g.households} households) has no grid leader.",
                         "numbers": {"households": g.households, "leaders": 0}})
        elif status == rules.LEADER_OVER:
            per_leader = rules.households_per_leader(g.households, leaders)
            gaps.append({**base, "reason": "leader_over",
                         "message_zh": f"{g.name}每名网格员 {per_leader:g} 户，超过 {hi} 户。",
                         "message_en": f"{g.code}: {per_leader:g} households per grid leader, above {hi}.",
                         "numbers": {"households": g.households, "leaders": leaders,
                                     "households_per_leader": per_leader, "maximum": hi}})
        inside, area_class = controlled.get(g.id, (0, None))
        volunteers = roles.get("volunteer", 0)
        needed = rules.delivery_volunteers_needed(inside, per)
        if rules.delivery_status(inside, volunteers, per) == rules.DELIVERY_SHORT:
            short[g.id] = needed - volunteers
            gaps.append({**base, "reason": "volunteers_short",
                         "message_zh": f"{g.name}封控/管控区 {inside} 户需配送志愿者 {needed} 名，现有 {volunteers} 名。",
                         "message_en": f"{g.code}: {inside} households in {area_class} areas need {needed} "
                                       f"delivery volunteers, {volunteers} assigned.",
                         "numbers": {"households_inside": inside, "area_class": area_class, "volunteers": volunteers,
                                     "volunteers_needed": needed, "short": needed - volunteers}})
        else:
            spare[g.id] = rules.spare_volunteers(volunteers, needed, settings.volunteers_kept_per_grid)

    moves = rules.propose_moves(short, spare, neighbours_of(session, settings, sorted(short)))
    received = Counter()
    for m in moves:
        received[m.to_grid] += m.volunteers
    for gap in gaps:
        if gap["reason"] == "volunteers_short":
            gap["numbers"]["still_short_after_moves"] = gap["numbers"]["short"] - received[gap["grid_id"]]
    return StaffingGaps(
        gaps=gaps,
        moves=[
            {"from_grid": m.from_grid, "from_code": code_of[m.from_grid], "to_grid": m.to_grid,
             "to_code": code_of[m.to_grid], "volunteers": m.volunteers, "reason": "volunteers_short",
             "message_zh": f"从相邻网格 {code_of[m.from_grid]} 调 {m.volunteers} 名志愿者到 {code_of[m.to_grid]}。",
             "message_en": f"Move {m.volunteers} volunteer(s) from neighbouring grid {code_of[m.from_grid]} "
                           f"to {code_of[m.to_grid]}."}
            for m in moves
        ],
        neighbour_min_border_m=settings.neighbour_min_border_m,
        volunteers_kept_per_grid=settings.volunteers_kept_per_grid,
    )


# -- service points: load and the change when one moves -----------------------------------------

# Every household goes to its nearest point of the kind (straight line on the ellipsoid), however
# far; ties go to the lower id.
_LOAD_SQL = text(
    """
    WITH pts AS MATERIALIZED (SELECT id, geom::geography AS g FROM service_point WHERE kind = :kind),
    loc AS (SELECT h.geom, count(*) AS n, sum(h.residents) AS r FROM household h GROUP BY h.geom),
    nearest AS (
      SELECT loc.n, loc.r, p.id, p.d
      FROM loc CROSS JOIN LATERAL (
        SELECT pts.id, ST_Distance(pts.g, loc.geom::geography) AS d FROM pts ORDER BY 2, 1 LIMIT 1) p)
    SELECT sp.id, sp.name, sp.community_id, sp.capacity,
           coalesce(sum(nr.n), 0) AS households, coalesce(sum(nr.r), 0) AS residents,
           coalesce(sum(nr.n) FILTER (WHERE nr.d <= :dist), 0) AS households_within
    FROM service_point sp LEFT JOIN nearest nr ON nr.id = sp.id
    WHERE sp.kind = :kind
    GROUP BY sp.id ORDER BY sp.id
    """
)


def service_load(session: Session, settings: Settings, kind: str) -> list[dict]:
    """Per point of ``kind``: the households it is nearest to (and of those, how many within
    walking distance), against its capacity. ``load`` is households / capacity."""
    _check_kinds((kind,))
    out = []
    for r in session.execute(_LOAD_SQL, {"kind": kind, "dist": settings.service_walk_distance_m}):
        households = int(r.households)
        out.append({
            "id": r.id, "name": r.name, "community_id": r.community_id, "kind": kind, "capacity": r.capacity,
            "households": households, "residents": int(r.residents),
            "households_within": int(r.households_within),
            "distance_m": settings.service_walk_distance_m, "measure": rules.DISTANCE_MEASURE,
            "load": round(households / r.capacity, 3) if r.capacity else None,
            "status": "no_capacity" if r.capacity is None else ("over" if households > r.capacity else "ok"),
        })
    return out


@dataclass
class GridCoverageDelta:
    grid_id: int
    gained: int  # households now within reach of a point of the kind, and not before
    lost: int


@dataclass
class CoverageChange:
    service_point_id: int
    kind: str
    distance_m: float
    measure: str
    households_checked: int
    grids: list[GridCoverageDelta] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


# Only households within reach of the old or the new position can change: for each, is another
# point of the kind within reach, and is the moved point within reach before and after?
_RECOMPUTE_SQL = text(
    f"""
    WITH moved AS MATERIALIZED (
      SELECT sp.geom AS new_g, ST_GeomFromEWKB(:old) AS old_g FROM service_point sp WHERE sp.id = :id),
    loc AS (
      SELECT b.grid_id, h.geom, count(*) AS n
      FROM household h JOIN building b ON b.id = h.building_id, moved m
      WHERE h.geom && {_NEAR_BOX.format(g="m.old_g")} OR h.geom && {_NEAR_BOX.format(g="m.new_g")}
      GROUP BY b.grid_id, h.geom),
    near AS MATERIALIZED (
      SELECT loc.grid_id, loc.geom, loc.n,
             ST_DWithin(m.old_g::geography, loc.geom::geography, :dist) AS before,
             ST_DWithin(m.new_g::geography, loc.geom::geography, :dist) AS after
      FROM loc, moved m),
    judged AS MATERIALIZED (  -- another point of the kind matters only where the moved one came or went
      SELECT near.*, before <> after AND EXISTS (
               SELECT 1 FROM service_point sp
               WHERE sp.kind = :kind AND sp.id <> :id AND sp.geom && {_NEAR_BOX.format(g="near.geom")}
                 AND ST_DWithin(sp.geom::geography, near.geom::geography, :dist)) AS others
      FROM near WHERE before OR after)
    SELECT grid_id, sum(n) AS checked,
           coalesce(sum(n) FILTER (WHERE after AND NOT before AND NOT others), 0) AS gained,
           coalesce(sum(n) FILTER (WHERE before AND NOT after AND NOT others), 0) AS lost
    FROM judged
    GROUP BY grid_id ORDER BY grid_id
    """
)


def recompute_service_coverage(
    session: Session, settings: Settings, service_point_id: int, old_geom: BaseGeometry
) -> CoverageChange:
    """The coverage change per grid after service point ``service_point_id`` moved from
    ``old_geom`` (EPSG:4326) to where it is now in the database.

    Incremental: only the households within walking distance of the old or the new position are
    looked at; apply the result to metrics already computed with :func:`apply_coverage_change`.
    """
    kind = session.execute(
        text("SELECT kind FROM service_point WHERE id = :id"), {"id": service_point_id}
    ).scalar_one_or_none()
    if kind is None:
        raise NotFound(f"服务点不存在 / no service point {service_point_id}")
    old = shapely.to_wkb(shapely.set_srid(old_geom, SRID), include_srid=True)
    rows = session.execute(_RECOMPUTE_SQL, {
        "id": service_point_id, "old": old, "kind": kind, "dist": settings.service_walk_distance_m,
    }).all()
    return CoverageChange(
        service_point_id=service_point_id, kind=kind, distance_m=settings.service_walk_distance_m,
        measure=rules.DISTANCE_MEASURE, households_checked=int(sum(r.checked for r in rows)),
        grids=[GridCoverageDelta(r.grid_id, int(r.gained), int(r.lost)) for r in rows if r.gained or r.lost],
    )


def apply_coverage_change(metrics: list[GridMetrics], change: CoverageChange) -> None:
    """Bring ``metrics`` (from :func:`grid_metrics`) up to date with one point's move, in place."""
    by_id = {m.id: m for m in metrics}
    for delta in change.grids:
        m = by_id.get(delta.grid_id)
        if m is None or change.kind not in m.services.kinds:
            continue
        n = m.services.kinds[change.kind].households_within + delta.gained - delta.lost
        m.services.kinds[change.kind] = KindCover(n, rules.share(n, m.households))
