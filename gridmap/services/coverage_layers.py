"""Coverage views (issue 5): one per-grid metric as a choropleth, ranked worst first, and the
figures of the wall display.

Every value comes from :func:`gridmap.services.coverage.grid_metrics`, so the map, the ranking,
the wall and the CLI never disagree. A metric here only says which number of a grid's metrics it
shows, how to class it and which class is worse; the class thresholds are the settings where the
policy gives a number (300–500 households per grid leader, 30 households per delivery volunteer,
a day's checkpoint shifts) and, for shares, the display breaks below.

Counts only: nothing here names a person.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.domain import coverage as rules
from gridmap.domain.errors import InvalidInput
from gridmap.services.coverage import GridMetrics, grid_metrics, local_tz, staffing_gaps
from gridmap.services.reports import report_status

# Display breaks of the share metrics: the rule asks for everyone (1.0); below WARN a grid is red.
SHARE_FULL = 1.0
SHARE_WARN = 0.8
# Home observation is a load, not a failure: classes by how many people a grid follows.
OBSERVATION_BREAKS = (1, 4, 10)
# The wall's trend charts look back this many days.
TREND_DAYS = 14

GOOD, WARN, BAD, WORST, LOW, NONE = "#2e9d5b", "#f0a020", "#d62728", "#7f0000", "#4c8bd6", "#9aa5ad"


class MetricClass(NamedTuple):
    code: str
    color: str
    rank: int  # 0 is the worst; the ranking sorts by it
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class Metric:
    key: str
    name_zh: str
    name_en: str
    unit: str  # share (0..1) / count / ratio: how the web formats the value
    higher_is_better: bool
    value: Callable[[GridMetrics], float | int | None]
    classes: Callable[[Settings], list[MetricClass]]
    classify: Callable[[GridMetrics, Settings], str]


# --- the metrics --------------------------------------------------------------------------------


def _leader_classes(s: Settings) -> list[MetricClass]:
    lo, hi = s.households_per_grid_min, s.households_per_grid_max
    return [
        MetricClass(rules.NO_LEADER, WORST, 0, "无网格员", "no grid leader"),
        MetricClass(rules.LEADER_OVER, BAD, 1, f"超过 {hi} 户/人", f"over {hi} per leader"),
        MetricClass(rules.LEADER_UNDER, LOW, 2, f"少于 {lo} 户/人", f"under {lo} per leader"),
        MetricClass(rules.LEADER_OK, GOOD, 3, f"{lo}–{hi} 户/人（达标）", f"{lo}–{hi} per leader (norm)"),
    ]


def _leader_class(m: GridMetrics, _s: Settings) -> str:
    return m.leaders.status


def _share_classes(_s: Settings) -> list[MetricClass]:
    return [
        MetricClass("low", BAD, 0, f"低于 {SHARE_WARN:.0%}", f"below {SHARE_WARN:.0%}"),
        MetricClass("most", WARN, 1, f"{SHARE_WARN:.0%}–{SHARE_FULL:.0%}", f"{SHARE_WARN:.0%}–{SHARE_FULL:.0%}"),
        MetricClass("all", GOOD, 2, "全部（100%）", "all (100%)"),
        MetricClass("none", NONE, 3, "不适用", "not applicable"),
    ]


def _share_class(value: float | None) -> str:
    if value is None:
        return "none"
    if value >= SHARE_FULL:
        return "all"
    return "most" if value >= SHARE_WARN else "low"


def _slot_classes(s: Settings) -> list[MetricClass]:
    day = s.checkpoint_shifts_per_day
    return [
        MetricClass("day", BAD, 0, f"≥ {day} 个班次缺人", f"{day}+ shifts short"),
        MetricClass("some", WARN, 1, f"1–{day - 1} 个班次缺人", f"1–{day - 1} shifts short"),
        MetricClass("ok", GOOD, 2, "全部排满", "all staffed"),
        MetricClass("none", NONE, 3, "无卡点", "no checkpoint"),
    ]


def _uncovered(m: GridMetrics) -> int | None:
    return None if not m.checkpoints.checkpoints else m.checkpoints.slots - m.checkpoints.slots_covered


def _slot_class(m: GridMetrics, s: Settings) -> str:
    n = _uncovered(m)
    if n is None:
        return "none"
    if n == 0:
        return "ok"
    return "day" if n >= s.checkpoint_shifts_per_day else "some"


def _delivery_classes(s: Settings) -> list[MetricClass]:
    per = s.households_per_delivery_volunteer
    return [
        MetricClass(rules.DELIVERY_SHORT, BAD, 0, f"不足（每 {per} 户 1 人）", f"short (1 per {per} households)"),
        MetricClass(rules.DELIVERY_OK, GOOD, 1, "足够", "enough"),
        MetricClass(rules.NOT_CONTROLLED, NONE, 2, "无封控/管控区", "no sealed/controlled area"),
    ]


def _delivery_class(m: GridMetrics, _s: Settings) -> str:
    return m.delivery.status


def _observation_classes(_s: Settings) -> list[MetricClass]:
    a, b, c = OBSERVATION_BREAKS
    return [
        MetricClass("many", "#4a148c", 0, f"≥ {c} 人", f"{c}+ people"),
        MetricClass("several", "#8e24aa", 1, f"{b}–{c - 1} 人", f"{b}–{c - 1} people"),
        MetricClass("few", "#ce93d8", 2, f"{a}–{b - 1} 人", f"{a}–{b - 1} people"),
        MetricClass("zero", "#eceff1", 3, "无", "none"),
    ]


def _observation_class(m: GridMetrics, _s: Settings) -> str:
    n = m.home_observation.count
    a, b, c = OBSERVATION_BREAKS
    return "many" if n >= c else "several" if n >= b else "few" if n >= a else "zero"


def _kind_share(kind: str) -> Callable[[GridMetrics], float | None]:
    def value(m: GridMetrics) -> float | None:
        cover = m.services.kinds.get(kind)
        return cover.share if cover else None

    return value


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric("households_per_leader", "每名网格员户数", "Households per grid leader", "ratio", False,
               lambda m: m.leaders.households_per_leader, _leader_classes, _leader_class),
        Metric("contact_on_time", "重点人群按时联系率", "Vulnerable people contacted on time", "share", True,
               lambda m: m.contacts.share_on_time, _share_classes,
               lambda m, _s: _share_class(m.contacts.share_on_time)),
        Metric("uncovered_slots", "未来24小时卡点缺人班次", "Checkpoint shifts short, next 24 h", "count", False,
               _uncovered, _slot_classes, _slot_class),
        Metric("testing_coverage", "核酸检测点覆盖率", "Households within reach of a testing point", "share", True,
               _kind_share("testing_point"), _share_classes,
               lambda m, _s: _share_class(_kind_share("testing_point")(m))),
        Metric("volunteers_per_100", "封控/管控区每百户志愿者", "Volunteers per 100 households (sealed/controlled)",
               "ratio", True, lambda m: m.delivery.volunteers_per_100_households, _delivery_classes, _delivery_class),
        Metric("home_observation", "居家观察人数", "People in home observation", "count", False,
               lambda m: m.home_observation.count, _observation_classes, _observation_class),
    )
}
DEFAULT_METRIC = "households_per_leader"


def get_metric(key: str) -> Metric:
    metric = METRICS.get(key)
    if metric is None:
        raise InvalidInput(
            f"未知指标 / unknown metric {key!r}; one of {', '.join(METRICS)}", code="unknown_metric"
        )
    return metric


def metric_catalogue(settings: Settings) -> list[dict]:
    """Every metric with its classes (worst first), for a selector and a legend."""
    return [
        {"key": m.key, "name_zh": m.name_zh, "name_en": m.name_en, "unit": m.unit,
         "higher_is_better": m.higher_is_better, "classes": [c._asdict() for c in m.classes(settings)]}
        for m in METRICS.values()
    ]


# --- values, ranking, GeoJSON -------------------------------------------------------------------


def value_text(value: float | int | None, unit: str) -> str:
    """A value as the map and the ranking print it (language-neutral)."""
    if value is None:
        return "—"
    if unit == "share":
        return f"{value:.0%}"
    if unit == "ratio":
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return f"{value:,}"


def metric_rows(metrics: list[GridMetrics], key: str, settings: Settings) -> list[dict]:
    """One row per grid: its value of ``key`` and class, worst first.

    Worst first: by class rank, then within a class by the value, the worse end first; grid code
    last, so the order is stable.
    """
    metric = get_metric(key)
    classes = {c.code: c for c in metric.classes(settings)}
    rows = []
    for m in metrics:
        value = metric.value(m)
        cls = classes[metric.classify(m, settings)]
        rows.append({
            "grid_id": m.id, "code": m.code, "name": m.name, "community_id": m.community_id,
            "households": m.households, "value": value, "text": value_text(value, metric.unit),
            "class": cls.code, "color": cls.color, "rank": cls.rank,
            "label_zh": cls.label_zh, "label_en": cls.label_en,
        })

    def worse_first(row: dict):
        v = row["value"]
        if v is None:
            return (row["rank"], 1, 0.0, row["code"])
        return (row["rank"], 0, v if metric.higher_is_better else -v, row["code"])

    rows.sort(key=worse_first)
    return rows


def ranking(session: Session, settings: Settings, now: datetime, key: str) -> list[dict]:
    """Every grid's value of ``key``, worst first."""
    get_metric(key)
    return metric_rows(grid_metrics(session, settings, now), key, settings)


_GRID_SHAPES_SQL = text(
    "SELECT g.id, c.name AS community, ST_AsGeoJSON(g.geom, 6) AS geometry"
    " FROM grid g JOIN community c ON c.id = g.community_id"
)


def choropleth_geojson(session: Session, settings: Settings, now: datetime, key: str) -> dict:
    """Grids as a FeatureCollection, each with its value of ``key``, class and colour.

    The collection carries the metric's name and classes (worst first) for the legend.
    """
    metric = get_metric(key)
    rows = metric_rows(grid_metrics(session, settings, now), key, settings)
    shapes = {r.id: r for r in session.execute(_GRID_SHAPES_SQL)}
    features = []
    for n, row in enumerate(rows):
        shape = shapes.get(row["grid_id"])
        if shape is None:
            continue
        features.append({
            "type": "Feature", "id": row["grid_id"], "geometry": json.loads(shape.geometry),
            "properties": {**row, "id": row["grid_id"], "community": shape.community, "position": n + 1},
        })
    return {
        "type": "FeatureCollection", "features": features, "metric": key,
        "name_zh": metric.name_zh, "name_en": metric.name_en, "unit": metric.unit,
        "classes": [c._asdict() for c in metric.classes(settings)],
    }


# --- the wall ---------------------------------------------------------------------------------

# Each building under the strictest class that holds it now: its grid's own class, its community's,
# a drawn area that holds it (by the share-inside rule of the impact preview). On a tie of
# severity the area scheme (sealed/controlled/precaution) wins over the tier: it is the finer one.
_HOUSEHOLDS_BY_CLASS_SQL = text(
    """
    WITH live AS MATERIALIZED (
      SELECT ca.geom, ca.risk_class_id FROM controlled_area ca
      WHERE (ca.ended_at IS NULL OR ca.ended_at > :now)
        AND ca.version = (SELECT max(v.version) FROM controlled_area v WHERE v.area_key = ca.area_key)),
    cls AS (
      SELECT b.id AS building_id, b.households, ra.risk_class_id
      FROM building b JOIN grid g ON g.id = b.grid_id
      JOIN risk_assignment ra ON ra.grid_id = g.id OR ra.community_id = g.community_id
      WHERE ra.valid_from <= :now AND (ra.valid_to IS NULL OR ra.valid_to > :now)
      UNION ALL
      SELECT b.id, b.households, a.risk_class_id
      FROM live a JOIN building b ON ST_Intersects(b.geom, a.geom)
      WHERE ST_CoveredBy(b.geom, a.geom) OR ST_Area(ST_Intersection(b.geom, a.geom)) >= :share * ST_Area(b.geom)),
    strictest AS (
      SELECT DISTINCT ON (c.building_id) c.building_id, c.households, c.risk_class_id
      FROM cls c JOIN risk_class rc ON rc.id = c.risk_class_id
      ORDER BY c.building_id, rc.severity DESC, (rc.scheme = 'area') DESC, rc.id)
    SELECT rc.code, rc.scheme, rc.name_zh, rc.name_en, rc.color, rc.severity,
           coalesce(sum(s.households), 0) AS households, count(s.building_id) AS buildings
    FROM risk_class rc LEFT JOIN strictest s ON s.risk_class_id = rc.id
    GROUP BY rc.id ORDER BY rc.severity DESC, (rc.scheme = 'area') DESC, rc.id
    """
)


def households_by_class(session: Session, settings: Settings, now: datetime) -> list[dict]:
    """Households under each risk class now, each household once, under its strictest class."""
    rows = session.execute(_HOUSEHOLDS_BY_CLASS_SQL, {"now": now, "share": settings.building_inside_share})
    return [{**r._mapping, "households": int(r.households), "buildings": int(r.buildings)} for r in rows]


_CONTACTS_PER_DAY_SQL = text(
    """
    SELECT (cl.contacted_at AT TIME ZONE :tz)::date AS day, count(*) AS n
    FROM contact_log cl WHERE cl.contacted_at >= :since AND cl.contacted_at <= :now
    GROUP BY 1
    """
)

_REPORTS_PER_DAY_SQL = text(
    """
    SELECT r.report_date AS day, count(DISTINCT r.community_id) AS n
    FROM daily_report r WHERE r.kind <> 'emergency' AND r.report_date BETWEEN :first AND :last
    GROUP BY 1
    """
)


def _days(last: date, days: int) -> list[date]:
    return [last - timedelta(days=days - 1 - i) for i in range(days)]


def contacts_per_day(session: Session, settings: Settings, now: datetime, days: int = TREND_DAYS) -> list[dict]:
    """Contacts logged per local day over the last ``days`` days, today last (zeros included)."""
    tz = local_tz(settings)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    counts = {r.day: int(r.n) for r in session.execute(
        _CONTACTS_PER_DAY_SQL, {"tz": settings.timezone, "since": since, "now": now})}
    return [{"day": d.isoformat(), "count": counts.get(d, 0)} for d in _days(today, days)]


def reports_per_day(session: Session, settings: Settings, now: datetime, days: int = TREND_DAYS) -> list[dict]:
    """Communities that filed their day's (or zero) report, per report date, today last."""
    today = now.astimezone(local_tz(settings)).date()
    counts = {r.day: int(r.n) for r in session.execute(
        _REPORTS_PER_DAY_SQL, {"first": today - timedelta(days=days - 1), "last": today})}
    return [{"day": d.isoformat(), "count": counts.get(d, 0)} for d in _days(today, days)]


@dataclass
class WallFigures:
    now: datetime
    households_by_class: list[dict]
    vulnerable: int
    overdue_contacts: int
    checkpoint_slots: int
    uncovered_slots: int
    horizon_hours: int
    grids: int
    grids_with_gaps: int
    staffing_gaps: int
    proposed_moves: int
    report_date: date
    report_deadline: datetime
    communities: int
    reports_missing: int
    reports_missing_ids: list[int]  # the communities to outline in red on the wall's map
    reports_pending: int
    reports_in: int
    contacts_per_day: list[dict]
    reports_per_day: list[dict]
    required_contacts: int
    gaps: dict  # staffing_gaps(): grids below the norms and the moves proposed (no person named)

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("now", "report_date", "report_deadline"):
            d[k] = d[k].isoformat()
        return d


def wall_figures(session: Session, settings: Settings, now: datetime) -> WallFigures:
    """Everything the wall shows, counts only, from the same services as the map and the CLI."""
    metrics = grid_metrics(session, settings, now)
    gaps = staffing_gaps(session, settings, now)
    today = now.astimezone(local_tz(settings)).date()
    status = report_status(session, settings, today, now)
    totals = status.totals
    return WallFigures(
        now=now.astimezone(local_tz(settings)),
        households_by_class=households_by_class(session, settings, now),
        vulnerable=sum(m.contacts.vulnerable for m in metrics),
        overdue_contacts=sum(len(m.contacts.overdue) for m in metrics),
        checkpoint_slots=sum(m.checkpoints.slots for m in metrics),
        uncovered_slots=sum(len(m.checkpoints.gaps) for m in metrics),
        horizon_hours=settings.checkpoint_roster_horizon_hours,
        grids=len(metrics),
        grids_with_gaps=len({g["grid_id"] for g in gaps.gaps}),
        staffing_gaps=len(gaps.gaps),
        proposed_moves=len(gaps.moves),
        report_date=today,
        report_deadline=status.deadline_at,
        communities=totals.communities,
        reports_missing=totals.missing,
        reports_missing_ids=status.missing_ids(),
        reports_pending=totals.pending,
        reports_in=totals.filed + totals.zero,
        contacts_per_day=contacts_per_day(session, settings, now),
        reports_per_day=reports_per_day(session, settings, now),
        required_contacts=settings.vulnerable_contacts_per_week,
        gaps=gaps.as_dict(),
    )


# --- one grid, small: its outline and buildings (the tablet page's map) ---------------------------

_GRID_SHEET_SQL = text(
    """
    SELECT json_build_object(
      'type', 'FeatureCollection',
      'bbox', (SELECT json_build_array(ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e))
               FROM (SELECT ST_Extent(g.geom) AS e FROM grid g WHERE g.id = :g) x),
      'features', coalesce((SELECT json_agg(f ORDER BY f->'properties'->>'kind' DESC, (f->'properties'->>'name'))
        FROM (
          SELECT json_build_object('type', 'Feature', 'id', 'grid-' || g.id,
                   'geometry', ST_AsGeoJSON(g.geom, 6)::json,
                   'properties', json_build_object('kind', 'grid', 'id', g.id, 'name', g.name)) AS f
          FROM grid g WHERE g.id = :g
          UNION ALL
          SELECT json_build_object('type', 'Feature', 'id', b.id, 'geometry', ST_AsGeoJSON(b.geom, 6)::json,
                   'properties', json_build_object(
                     'kind', 'building', 'id', b.id, 'code', b.code, 'name', b.name, 'floors', b.floors,
                     'households', b.households, 'residents', b.residents,
                     'key_persons', (SELECT count(*) FROM key_person kp JOIN household h ON h.id = kp.household_id
                                     WHERE h.building_id = b.id)))
          FROM building b WHERE b.grid_id = :g) s), '[]'::json))
    """
)


def grid_sheet_geojson(session: Session, grid_id: int) -> dict:
    """The grid's outline and its buildings (counts only) as one FeatureCollection with a bbox."""
    return session.execute(_GRID_SHEET_SQL, {"g": grid_id}).scalar_one()
