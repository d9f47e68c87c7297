"""``gridmap import LAYER FILE``: all or nothing.

Every row is checked before anything is written: the geometry (type, vertices, validity), the
values (numbers, categories, roles), the parent (by its code, or by location when the file has
no code column), the position (inside the district, inside the parent) and uniqueness (codes,
addresses, ID numbers, within the file and against the database). A file with any bad row is
rejected as a whole with every problem listed by row number; repairs with a single right answer
are applied and listed. On success the rows are in the caller's session, which commits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import psycopg
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.bulk import copy_rows
from gridmap.db.models import LAYER_MODELS, SRID
from gridmap.domain.errors import GridmapError
from gridmap.domain.reference import SERVICE_POINT_KINDS, STAFF_ROLES
from gridmap.io import geometry as geo
from gridmap.io.columns import describe, header_for, resolve_columns
from gridmap.io.readers import Record, SourceData, as_text, read_source

# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowIssue:
    """One problem or repair. ``row`` is the row number the user sees (a spreadsheet's header is 1)."""

    row: int
    field: str | None
    code: str
    message: str


@dataclass
class ImportReport:
    layer: str
    rows_read: int
    rows_written: int = 0
    repairs: list[RowIssue] = field(default_factory=list)
    errors: list[RowIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ImportRejected(GridmapError):
    """Nothing was written. ``code`` is ``rows_rejected`` for bad rows (listed in
    ``report.errors``) or the file-level reason (``missing_column``, ``file_too_large``, ...)."""

    code = "import_rejected"

    def __init__(self, message: str, report: ImportReport, *, code: str | None = None):
        super().__init__(message, code=code)
        self.report = report


# --- what each layer holds -----------------------------------------------------------------------

TEXT, INT, BOOL, DATE, CHOICE = "text", "int", "bool", "date", "choice"


@dataclass(frozen=True)
class Field:
    """A table column read from the file column of the same canonical name."""

    column: str
    kind: str = TEXT
    required: bool = False
    default: object = None
    # the default is this setting (a number from the domain), when given
    default_setting: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: Mapping[str, str] | None = None
    unknown_code: str = "unknown_value"


@dataclass(frozen=True)
class Parent:
    """How a row finds its parent: the file's ``column`` holds the parent's ``key`` (its code, or
    its id for gates, which have no code). Without the column, a feature's parent is found by
    location: the parent polygon under the feature's point on surface, or with ``near`` the
    nearest parent within ``gate_boundary_distance_m`` (a gate on a compound's edge, a
    checkpoint at a gate)."""

    column: str
    table: str
    fk: str
    key: str = "code"
    required: bool = True
    # the child must lie inside the parent (nesting, with the tolerance)
    nested: bool = False
    near: bool = False


@dataclass(frozen=True)
class LayerSpec:
    table: str
    geometry: str | None
    fields: tuple[Field, ...]
    parents: tuple[Parent, ...] = ()

    @property
    def has_code(self) -> bool:
        return any(f.column == "code" for f in self.fields)


def _choices(*pairs: tuple[str, Iterable[str]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for value, spellings in pairs:
        for s in (value, *spellings):
            table[_norm(s)] = value
    return table


def _norm(value: str) -> str:
    return re.sub(r"\s+", "", str(value)).casefold()


COMMUNITY_KINDS = _choices(("community", ("社区", "居委会")), ("village", ("村", "村委会", "行政村")))
GATE_KINDS = _choices(
    ("pedestrian", ("人行", "行人", "步行")), ("vehicle", ("车行", "机动车")), ("both", ("人车", "人车混行", "人车共用"))
)
GENDERS = _choices(("M", ("男", "male")), ("F", ("女", "female")))
ROLES = _choices(*((code, (zh, en)) for code, (zh, en) in STAFF_ROLES.items()))
SERVICE_KINDS = _choices(*((code, (zh, en)) for code, (zh, en) in SERVICE_POINT_KINDS.items()))
_TRUE = frozenset(_norm(s) for s in ("1", "true", "t", "yes", "y", "是", "开", "开放", "在岗", "有效", "启用"))
_FALSE = frozenset(_norm(s) for s in ("0", "false", "f", "no", "n", "否", "关", "关闭", "离岗", "无效", "停用"))

_CODE = Field("code", required=True)
_NAME = Field("name", required=True)
_PHONE = Field("phone")

LAYERS: dict[str, LayerSpec] = {
    "subdistrict": LayerSpec(
        "subdistrict", geo.MULTIPOLYGON, (_CODE, _NAME),
        (Parent("district_code", "district", "district_id", nested=True),),
    ),
    "community": LayerSpec(
        "community", geo.MULTIPOLYGON,
        (_CODE, _NAME, Field("kind", CHOICE, default="community", choices=COMMUNITY_KINDS), _PHONE),
        (Parent("subdistrict_code", "subdistrict", "subdistrict_id", nested=True),),
    ),
    "grid": LayerSpec(
        "grid", geo.MULTIPOLYGON, (_CODE, _NAME),
        (Parent("community_code", "community", "community_id", nested=True),),
    ),
    "compound": LayerSpec(
        "compound", geo.POLYGON, (_CODE, _NAME),
        (Parent("community_code", "community", "community_id", nested=True),),
    ),
    "gate": LayerSpec(
        "gate", geo.POINT,
        (_NAME, Field("kind", CHOICE, default="both", choices=GATE_KINDS), Field("is_open", BOOL, default=True)),
        (Parent("compound_code", "compound", "compound_id", near=True),),
    ),
    "building": LayerSpec(
        "building", geo.POLYGON,
        (_CODE, _NAME, Field("floors", INT, default=1, minimum=1, maximum=300)),
        (
            Parent("grid_code", "grid", "grid_id", nested=True),
            Parent("compound_code", "compound", "compound_id", required=False),
        ),
    ),
    "checkpoint": LayerSpec(
        "checkpoint", geo.POINT,
        (
            _NAME,
            Field("shifts_per_day", INT, default_setting="checkpoint_shifts_per_day", minimum=1, maximum=24),
            Field("staff_per_shift", INT, default_setting="checkpoint_staff_per_shift", minimum=1, maximum=1000),
            Field("active", BOOL, default=True),
        ),
        (Parent("gate_id", "gate", "gate_id", key="id", near=True),),
    ),
    "service_point": LayerSpec(
        "service_point", geo.POINT_OR_AREA,
        (
            Field("kind", CHOICE, required=True, choices=SERVICE_KINDS, unknown_code="unknown_kind"),
            _NAME,
            Field("capacity", INT, minimum=0),
            Field("hours"),
        ),
        (Parent("community_code", "community", "community_id", required=False),),
    ),
    "household": LayerSpec(
        "household", None,
        (
            Field("unit"),
            Field("room", required=True),
            Field("residents", INT, default=1, minimum=0, maximum=1000),
            Field("head_name"),
            _PHONE,
        ),
        (Parent("building_code", "building", "building_id"),),
    ),
    "key_person": LayerSpec(
        "key_person", None,
        (
            _NAME,
            Field("gender", CHOICE, choices=GENDERS),
            Field("birth_year", INT, minimum=1900, maximum=date.today().year),
            _PHONE,
            Field("id_number"),
            Field("note"),
            Field("observation_start", DATE),
        ),
    ),
    "staff": LayerSpec(
        "staff", geo.POINT,
        (
            _NAME,
            Field("role", CHOICE, required=True, choices=ROLES, unknown_code="unknown_role"),
            _PHONE,
            Field("skills"),
            Field("active", BOOL, default=True),
        ),
        (Parent("community_code", "community", "community_id"),),
    ),
}
# Layers whose rows are placed from the database, not from the file: they need no geometry.
_GEOMETRY_OPTIONAL = frozenset({"staff"})
# A key person's household: building code + unit + room, like a household's address.
_ADDRESS = ("building_code", "unit", "room")
_CATEGORY_SEPARATORS = re.compile(r"[、,，;；/／|\s]+")


def importable_layers() -> tuple[str, ...]:
    return tuple(LAYERS)


# --- rows ----------------------------------------------------------------------------------------


@dataclass
class _Row:
    record: Record
    values: dict[str, object] = field(default_factory=dict)  # table columns
    geom: BaseGeometry | None = None
    refs: dict[str, str] = field(default_factory=dict)  # parent column → the file's value
    bad: bool = False


class _Collector:
    """Errors and repairs of one import, and the user's header names for messages."""

    def __init__(self, report: ImportReport, headers: Mapping[str, str]):
        self.report = report
        self.headers = headers

    def error(self, row: _Row, column: str | None, code: str, message: str) -> None:
        row.bad = True
        name = header_for(self.headers, column) if column else None
        self.report.errors.append(RowIssue(row.record.row, name, code, message))

    def repair(self, row: _Row, code: str, message: str) -> None:
        self.report.repairs.append(RowIssue(row.record.row, None, code, message))


def _max_length(table: str, column: str) -> int | None:
    return getattr(LAYER_MODELS[table].__table__.c[column].type, "length", None)


def _parse_int(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if math.isfinite(raw) and raw.is_integer() else None
    try:
        number = float(str(raw).strip().replace(",", ""))
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _parse_date(raw: object) -> date | None:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    match = re.fullmatch(r"\s*(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?\s*", str(raw))
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def _convert_field(f: Field, raw: object, table: str, settings: Settings) -> tuple[object, tuple[str, str] | None]:
    """(value, None) or (None, (code, message))."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if f.required:
            return None, ("missing_value", "缺少必填值 / required value missing")
        return (getattr(settings, f.default_setting) if f.default_setting else f.default), None
    if f.kind == INT:
        number = _parse_int(raw)
        if number is None:
            return None, ("not_a_number", f"不是整数 / not a whole number: {as_text(raw)!r}")
        if number < 0 and (f.minimum or 0) >= 0:
            return None, ("negative_value", f"不能为负数 / must not be negative: {number}")
        if (f.minimum is not None and number < f.minimum) or (f.maximum is not None and number > f.maximum):
            return None, ("out_of_range", f"超出范围 / out of range {f.minimum}..{f.maximum}: {number}")
        return number, None
    if f.kind == BOOL:
        if isinstance(raw, bool):
            return raw, None
        key = _norm(as_text(raw) or "")
        if key in _TRUE or key in _FALSE:
            return key in _TRUE, None
        return None, ("unknown_value", f"应为 是/否 / expected yes/no: {as_text(raw)!r}")
    if f.kind == DATE:
        day = _parse_date(raw)
        if day is None:
            return None, ("bad_date", f"日期无法识别 / not a date (YYYY-MM-DD): {as_text(raw)!r}")
        return day, None
    if isinstance(raw, float) and abs(raw) >= 1e15:
        # Excel keeps 15 significant digits: an ID number typed as a number has lost its tail.
        return None, (
            "lost_precision",
            "数字超过15位，Excel 已丢失末尾数字，请把该列设为文本 / a number this long lost its last digits "
            "in Excel; format the column as text",
        )
    value = as_text(raw)
    if f.kind == CHOICE:
        assert f.choices is not None
        chosen = f.choices.get(_norm(value or ""))
        if chosen is None:
            known = ", ".join(sorted(set(f.choices.values())))
            return None, (f.unknown_code, f"无法识别 / unknown value {value!r}; 可选 / one of: {known}")
        return chosen, None
    limit = _max_length(table, f.column)
    if limit is not None and value is not None and len(value) > limit:
        return None, ("too_long", f"超过 {limit} 个字符 / longer than {limit} characters")
    return value, None


def _read_fields(row: _Row, spec: LayerSpec, found: Mapping[str, str], settings: Settings, out: _Collector) -> None:
    for f in spec.fields:
        header = found.get(f.column)
        raw = row.record.values.get(header) if header else None
        value, problem = _convert_field(f, raw, spec.table, settings)
        if problem:
            out.error(row, f.column, *problem)
        else:
            row.values[f.column] = value
    for parent in spec.parents:
        header = found.get(parent.column)
        if header is not None:
            value = as_text(row.record.values.get(header))
            if value is None and parent.required:
                out.error(row, parent.column, "missing_value", "缺少必填值 / required value missing")
            elif value is not None:
                row.refs[parent.column] = value


def _read_geometry(row: _Row, spec: LayerSpec, source: SourceData, settings: Settings, out: _Collector) -> None:
    if spec.geometry is None or not source.has_geometry:
        return
    if row.record.row in source.geometry_errors:
        out.error(row, None, "invalid_geometry", source.geometry_errors[row.record.row])
        return
    if spec.table in _GEOMETRY_OPTIONAL and row.record.geom is None:
        return
    check = geo.check_geometry(row.record.geom, spec.geometry, max_vertices=settings.max_polygon_vertices)
    for issue in check.errors:
        out.error(row, None, issue.code, issue.message)
    if check.ok:
        for issue in check.repairs:
            out.repair(row, issue.code, issue.message)
        row.geom = check.geom


# --- checks within the file ----------------------------------------------------------------------


def _duplicates(rows: Sequence[_Row], key: Callable[[_Row], object], column: str, code: str, what: str,
                out: _Collector) -> None:
    first: dict[object, int] = {}
    for row in rows:
        k = key(row)
        if k is None:
            continue
        if k in first:
            out.error(row, column, code, f"{what}与第 {first[k]} 行重复 / {what} repeats row {first[k]}")
        else:
            first[k] = row.record.row


def _unit_key(unit: object) -> str:
    """Units compare without a trailing 单元: '1' and '1单元' are the same unit."""
    return re.sub(r"\s*单元$", "", str(unit or "").strip())


def _address_key(row: _Row) -> tuple[str, str, str] | None:
    building, room = row.refs.get("building_code"), row.values.get("room")
    if building is None or room is None:
        return None
    return building, _unit_key(row.values.get("unit")), str(room)


# --- checks against the database -----------------------------------------------------------------

_UNIT_SQL = "regexp_replace(coalesce({}, ''), '\\s*单元$', '')"


def _ewkb(geom: BaseGeometry) -> str:
    return shapely.to_wkb(shapely.set_srid(geom, SRID), hex=True, include_srid=True)


def _placed(rows: Iterable[_Row]) -> list[_Row]:
    return [r for r in rows if r.geom is not None]


def _district_outside(session: Session, rows: Sequence[_Row], settings: Settings) -> dict[int, float | None]:
    """Rows (by index) not inside the district: polygon rows → m² outside; point rows → None."""
    if not rows:
        return {}
    result = session.execute(
        text(
            "WITH d AS (SELECT ST_Union(geom) AS g FROM district), "
            "s AS (SELECT i, w::geometry AS g FROM unnest(CAST(:i AS int[]), CAST(:w AS text[])) AS t(i, w)) "
            "SELECT s.i, CASE WHEN ST_Dimension(s.g) = 0 THEN NULL "
            "ELSE ST_Area(ST_Difference(s.g, d.g)::geography) END AS outside_m2 "
            "FROM s, d WHERE d.g IS NOT NULL AND NOT ST_CoveredBy(s.g, d.g) AND CASE "
            "WHEN ST_Dimension(s.g) = 0 THEN NOT ST_DWithin(s.g::geography, d.g::geography, :dist) "
            "ELSE ST_Area(ST_Difference(s.g, d.g)::geography) > :tol END"
        ),
        {
            "i": list(range(len(rows))),
            "w": [_ewkb(r.geom) for r in rows],
            "tol": settings.nesting_tolerance_m2,
            "dist": math.sqrt(settings.nesting_tolerance_m2),
        },
    )
    return dict(result.all())


def _ids_by_key(session: Session, parent: Parent, values: Iterable[str]) -> dict[str, int]:
    values = sorted(set(values))
    if not values:
        return {}
    if parent.key == "id":
        numbers = sorted({n for n in map(_parse_int, values) if n is not None})
        found = session.execute(text(f'SELECT id FROM "{parent.table}" WHERE id = ANY(:v)'), {"v": numbers})
        return {str(id_): id_ for id_ in found.scalars()}
    rows = session.execute(text(f'SELECT code, id FROM "{parent.table}" WHERE code = ANY(:v)'), {"v": values})
    return dict(rows.all())


def _parents_by_location(session: Session, parent: Parent, rows: Sequence[_Row], near_m: float) -> dict[int, int]:
    """Row index → the parent under the feature's point on surface (or the nearest within near_m)."""
    if not rows:
        return {}
    if near_m > 0:
        condition = (
            "p.geom && ST_Expand(s.pt, :deg) AND ST_DWithin(p.geom::geography, s.pt::geography, :near)"
        )
    else:
        condition = "ST_Intersects(p.geom, s.pt)"
    result = session.execute(
        text(
            "WITH s AS (SELECT i, ST_PointOnSurface(w::geometry) AS pt "
            "FROM unnest(CAST(:i AS int[]), CAST(:w AS text[])) AS t(i, w)) "
            "SELECT s.i, q.id FROM s CROSS JOIN LATERAL ("
            f'SELECT p.id FROM "{parent.table}" p WHERE {condition} '
            "ORDER BY p.geom <-> s.pt, p.id LIMIT 1) q"
        ),
        {
            "i": list(range(len(rows))),
            "w": [_ewkb(r.geom) for r in rows],
            "near": near_m,
            # a degree of latitude is ~111 km; longitude degrees are shorter, so this box is generous
            "deg": near_m / 50_000.0,
        },
    )
    return dict(result.all())


def _outside_parent(session: Session, parent: Parent, rows: Sequence[_Row], settings: Settings) -> dict[int, float]:
    """Row index → m² of the feature outside its parent, for features beyond the tolerance."""
    if not rows:
        return {}
    result = session.execute(
        text(
            "WITH s AS (SELECT i, w::geometry AS g, pid FROM unnest(CAST(:i AS int[]), CAST(:w AS text[]), "
            "CAST(:p AS int[])) AS t(i, w, pid)) "
            "SELECT s.i, ST_Area(ST_Difference(s.g, p.geom)::geography) "
            f'FROM s JOIN "{parent.table}" p ON p.id = s.pid '
            "WHERE NOT ST_CoveredBy(s.g, p.geom) AND ST_Area(ST_Difference(s.g, p.geom)::geography) > :tol"
        ),
        {
            "i": list(range(len(rows))),
            "w": [_ewkb(r.geom) for r in rows],
            "p": [r.values[parent.fk] for r in rows],
            "tol": settings.nesting_tolerance_m2,
        },
    )
    return dict(result.all())


def _resolve_parents(
    session: Session, spec: LayerSpec, rows: Sequence[_Row], found: Mapping[str, str], settings: Settings,
    out: _Collector,
) -> None:
    for parent in spec.parents:
        if parent.column in found:
            ids = _ids_by_key(session, parent, (r.refs[parent.column] for r in rows if parent.column in r.refs))
            for row in rows:
                value = row.refs.get(parent.column)
                if value is None:
                    row.values[parent.fk] = None
                    continue
                key = str(_parse_int(value)) if parent.key == "id" and _parse_int(value) is not None else value
                if key in ids:
                    row.values[parent.fk] = ids[key]
                else:
                    out.error(
                        row, parent.column, "unknown_parent",
                        f"找不到{describe(parent.column)} / no {parent.table} with {parent.key} {value!r}",
                    )
            continue
        # No code column: find the parent by location.
        near_m = settings.gate_boundary_distance_m if parent.near else 0.0
        placed = _placed(rows)
        by_location = _parents_by_location(session, parent, placed, near_m)
        for i, row in enumerate(placed):
            row.values[parent.fk] = by_location.get(i)
        where = f"{near_m:g} 米内 / within {near_m:g} m" if near_m > 0 else "所在 / containing it"
        for row in rows:
            # A row already refused for its geometry has no location to look from.
            if parent.required and row.values.get(parent.fk) is None and not (row.bad and row.geom is None):
                out.error(
                    row, None, "no_parent",
                    f"找不到所属{parent.table} ({where}); 或在文件中加列 {describe(parent.column)} / "
                    f"no {parent.table} found at this location; or add the column {parent.column}",
                )


def _check_nesting(session: Session, spec: LayerSpec, rows: Sequence[_Row], settings: Settings,
                   out: _Collector) -> None:
    placed = _placed(rows)
    outside = _district_outside(session, placed, settings)
    for i, m2 in outside.items():
        extent = f" ({m2:,.1f} m²)" if m2 is not None else ""
        out.error(placed[i], None, "outside_district", f"不在辖区内 / outside the district{extent}")
    for parent in spec.parents:
        if not parent.nested:
            continue
        inside = [r for i, r in enumerate(placed) if i not in outside and r.values.get(parent.fk) is not None]
        for i, m2 in _outside_parent(session, parent, inside, settings).items():
            out.error(
                inside[i], parent.column, "outside_parent",
                f"超出所属{parent.table} {m2:,.1f} m² / sticks out of its {parent.table} by {m2:,.1f} m²",
            )


def _check_codes(session: Session, spec: LayerSpec, rows: Sequence[_Row], out: _Collector) -> None:
    _duplicates(rows, lambda r: r.values.get("code"), "code", "duplicate_code", "编码 / code ", out)
    codes = [r.values["code"] for r in rows if r.values.get("code")]
    if not codes:
        return
    taken = set(
        session.execute(text(f'SELECT code FROM "{spec.table}" WHERE code = ANY(:c)'), {"c": codes}).scalars()
    )
    for row in rows:
        if row.values.get("code") in taken:
            out.error(row, "code", "code_exists", f"编码已存在 / code already exists: {row.values['code']!r}")


def _check_household_addresses(session: Session, rows: Sequence[_Row], out: _Collector) -> None:
    _duplicates(rows, _address_key, "room", "duplicate_address", "地址 / address ", out)
    known = [r for r in rows if r.values.get("building_id") is not None and r.values.get("room") is not None]
    if not known:
        return
    taken = session.execute(
        text(
            "SELECT DISTINCT s.i FROM unnest(CAST(:i AS int[]), CAST(:b AS int[]), CAST(:u AS text[]), "
            "CAST(:r AS text[])) AS s(i, b, u, r) JOIN household h ON h.building_id = s.b AND h.room = s.r "
            f"AND {_UNIT_SQL.format('h.unit')} = s.u"
        ),
        {
            "i": list(range(len(known))),
            "b": [r.values["building_id"] for r in known],
            "u": [_unit_key(r.values.get("unit")) for r in known],
            "r": [str(r.values["room"]) for r in known],
        },
    ).scalars()
    for i in taken:
        out.error(known[i], "room", "address_exists", "该户已存在 / this household already exists")


# --- key persons ---------------------------------------------------------------------------------


def _category_table(session: Session) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Lookup of category spellings → id, and the Chinese names longest first for tokenising."""
    lookup: dict[str, int] = {}
    names: list[tuple[str, str]] = []
    for id_, code, name_zh, name_en in session.execute(
        text("SELECT id, code, name_zh, name_en FROM key_person_category")
    ).all():
        for spelling in (code, name_zh, name_en):
            lookup[_norm(spelling)] = id_
        names.append((name_zh, code))
    names.sort(key=lambda pair: -len(pair[0]))
    return lookup, names


def parse_categories(raw: str, lookup: Mapping[str, int], names: Sequence[tuple[str, str]]) -> tuple[list[int], list[str]]:
    """Category ids in ``raw`` and the tokens not recognised. Names that contain a separator
    themselves (中高风险地区来人、入境人员) are taken whole before the text is split."""
    for name_zh, code in names:
        raw = raw.replace(name_zh, f" {code} ")
    ids: list[int] = []
    unknown: list[str] = []
    for token in _CATEGORY_SEPARATORS.split(raw):
        if not token:
            continue
        id_ = lookup.get(_norm(token))
        if id_ is None:
            unknown.append(token)
        elif id_ not in ids:
            ids.append(id_)
    return ids, unknown


def _read_key_person_extras(session: Session, rows: Sequence[_Row], found: Mapping[str, str], out: _Collector) -> None:
    lookup, names = _category_table(session)
    for row in rows:
        for column in _ADDRESS:
            value = as_text(row.record.values.get(found[column])) if column in found else None
            if value is not None:
                row.refs[column] = value
            elif column != "unit":
                out.error(row, column, "missing_value", "缺少必填值 / required value missing")
        raw = as_text(row.record.values.get(found["categories"]))
        if raw is None:
            out.error(row, "categories", "missing_value", "缺少类别 / no category given")
            continue
        ids, unknown = parse_categories(raw, lookup, names)
        if unknown:
            out.error(row, "categories", "unknown_category",
                      f"未知类别 / unknown category: {'、'.join(unknown)}")
        elif not ids:
            out.error(row, "categories", "missing_value", "缺少类别 / no category given")
        row.values["_categories"] = ids


def _resolve_households(session: Session, rows: Sequence[_Row], out: _Collector) -> None:
    addressed = [r for r in rows if "building_code" in r.refs and "room" in r.refs]
    found: dict[int, int] = {}
    if addressed:
        found = dict(
            session.execute(
                text(
                    "SELECT s.i, min(h.id) FROM unnest(CAST(:i AS int[]), CAST(:b AS text[]), CAST(:u AS text[]), "
                    "CAST(:r AS text[])) AS s(i, b, u, r) JOIN building b ON b.code = s.b "
                    "JOIN household h ON h.building_id = b.id AND h.room = s.r "
                    f"AND {_UNIT_SQL.format('h.unit')} = s.u GROUP BY s.i"
                ),
                {
                    "i": list(range(len(addressed))),
                    "b": [r.refs["building_code"] for r in addressed],
                    "u": [_unit_key(r.refs.get("unit")) for r in addressed],
                    "r": [r.refs["room"] for r in addressed],
                },
            ).all()
        )
    for i, row in enumerate(addressed):
        if i in found:
            row.values["household_id"] = found[i]
        else:
            address = " ".join(filter(None, (row.refs["building_code"], row.refs.get("unit"), row.refs["room"])))
            out.error(row, "room", "unknown_household", f"找不到该户 / no household at {address}")


def _check_id_numbers(session: Session, rows: Sequence[_Row], out: _Collector) -> None:
    def key(r: _Row) -> str | None:
        value = r.values.get("id_number")
        return str(value).upper() if value else None

    _duplicates(rows, key, "id_number", "duplicate_id_number", "身份证号 / ID number ", out)
    numbers = [k for k in map(key, rows) if k]
    if not numbers:
        return
    taken = set(
        session.execute(
            text("SELECT upper(id_number) FROM key_person WHERE upper(id_number) = ANY(:n)"), {"n": numbers}
        ).scalars()
    )
    for row in rows:
        if key(row) in taken:
            out.error(row, "id_number", "id_number_exists", "该身份证号已登记 / this ID number is already listed")


# --- writing -------------------------------------------------------------------------------------


def _write(session: Session, spec: LayerSpec, rows: Sequence[_Row]) -> int:
    if spec.table == "household":
        return _write_households(session, rows)
    if spec.table == "key_person":
        return _write_key_persons(session, rows)
    columns = [f.column for f in spec.fields] + [p.fk for p in spec.parents] + ["geom"]
    return copy_rows(session, spec.table, columns, ({**r.values, "geom": r.geom} for r in rows))


def _write_households(session: Session, rows: Sequence[_Row]) -> int:
    # A household's point is its building's representative point, computed where the building is.
    payload = [
        {k: r.values.get(k) for k in ("building_id", "unit", "room", "residents", "head_name", "phone")}
        for r in rows
    ]
    result = session.execute(
        text(
            "INSERT INTO household (building_id, unit, room, residents, head_name, phone, geom) "
            "SELECT r.building_id, r.unit, r.room, r.residents, r.head_name, r.phone, ST_PointOnSurface(b.geom) "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(building_id int, unit text, room text, "
            "residents int, head_name text, phone text) JOIN building b ON b.id = r.building_id"
        ),
        {"rows": json.dumps(payload, ensure_ascii=False)},
    )
    return result.rowcount


def _write_key_persons(session: Session, rows: Sequence[_Row]) -> int:
    # Ids are drawn from the sequence first so that the category links can name them.
    ids = session.execute(
        text("SELECT nextval(pg_get_serial_sequence('key_person', 'id')) FROM generate_series(1, :n)"),
        {"n": len(rows)},
    ).scalars().all()
    columns = ("household_id", "name", "gender", "birth_year", "phone", "id_number", "note", "observation_start")
    payload = [
        {"id": id_, **{c: r.values.get(c) for c in columns}} for id_, r in zip(ids, rows, strict=True)
    ]
    for item in payload:
        if item["observation_start"] is not None:
            item["observation_start"] = item["observation_start"].isoformat()
    # A key person is placed at their household.
    written = session.execute(
        text(
            "INSERT INTO key_person (id, household_id, name, gender, birth_year, phone, id_number, note, "
            "observation_start, version, geom) "
            "SELECT r.id, r.household_id, r.name, r.gender, r.birth_year, r.phone, r.id_number, r.note, "
            "r.observation_start, 1, h.geom "
            "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id int, household_id int, name text, gender text, "
            "birth_year int, phone text, id_number text, note text, observation_start date) "
            "JOIN household h ON h.id = r.household_id"
        ),
        {"rows": json.dumps(payload, ensure_ascii=False)},
    ).rowcount
    links = [
        {"key_person_id": id_, "category_id": c}
        for id_, r in zip(ids, rows, strict=True)
        for c in r.values["_categories"]
    ]
    copy_rows(session, "key_person_category_link", ["key_person_id", "category_id"], links)
    return written


# --- the use-case --------------------------------------------------------------------------------


def _wanted_columns(spec: LayerSpec) -> tuple[list[str], list[str]]:
    wanted = [f.column for f in spec.fields] + [p.column for p in spec.parents]
    required = [f.column for f in spec.fields if f.required]
    if spec.table == "key_person":
        wanted += [*_ADDRESS, "categories"]
        required += ["building_code", "room", "categories"]
    return wanted, required


def _file_error(layer: str, exc: GridmapError) -> ImportRejected:
    return ImportRejected(exc.message, ImportReport(layer, 0), code=exc.code)


def import_layer(
    session: Session, layer: str, path: Path, *, settings: Settings, gcj02: bool = False
) -> ImportReport:
    """Check every row of ``path`` and, when all are good, insert them into ``layer``.

    Raises :class:`ImportRejected` (nothing written) listing every bad row, or naming the file-level
    problem. The caller commits.
    """
    spec = LAYERS.get(layer)
    if spec is None:
        raise ImportRejected(
            f"不能导入该图层 / cannot import layer {layer!r}; 可导入 / importable: {', '.join(LAYERS)}",
            ImportReport(layer, 0),
            code="unknown_layer",
        )
    try:
        source = read_source(
            Path(path), max_bytes=settings.max_upload_bytes, max_rows=settings.max_import_rows, gcj02=gcj02
        )
        wanted, required = _wanted_columns(spec)
        located = spec.geometry is not None and source.has_geometry
        # Without geometry to place them by, rows must name their parents.
        required += [p.column for p in spec.parents if p.required and not located]
        # In a file of grids, 网格编码 (grid_code) is the grid's own code when there is no 编码.
        own_code = {"code": f"{layer}_code"} if spec.has_code else {}
        found = resolve_columns(source.columns, wanted, required, fallbacks=own_code)
    except GridmapError as exc:
        raise _file_error(layer, exc) from exc
    if spec.geometry is not None and spec.table not in _GEOMETRY_OPTIONAL and not source.has_geometry:
        raise _file_error(layer, GridmapError(
            f"图层 {layer} 需要几何 / layer {layer} needs geometry: use GeoJSON, GeoPackage or Shapefile, "
            "or a table with 经度/纬度 (lon/lat) or geom_wkt columns",
            code="missing_geometry",
        ))
    if not source.records:
        raise _file_error(layer, GridmapError("文件没有数据行 / the file has no rows", code="empty_file"))
    if session.execute(text("SELECT NOT EXISTS (SELECT 1 FROM district)")).scalar_one():
        raise _file_error(layer, GridmapError(
            "数据库中还没有辖区 / no district in the database yet; load one first", code="no_district"
        ))

    report = ImportReport(layer, rows_read=len(source.records), notes=list(source.notes))
    ignored = [c for c in source.columns if c not in set(found.values())]
    if ignored:
        report.notes.append(f"忽略的列 / columns ignored: {', '.join(ignored)}")
    out = _Collector(report, found)
    rows = [_Row(record) for record in source.records]
    for row in rows:
        _read_fields(row, spec, found, settings, out)
        _read_geometry(row, spec, source, settings, out)
    if spec.table == "key_person":
        _read_key_person_extras(session, rows, found, out)
        _resolve_households(session, rows, out)
        _check_id_numbers(session, rows, out)
    _resolve_parents(session, spec, rows, found, settings, out)
    if spec.has_code:
        _check_codes(session, spec, rows, out)
    if spec.table == "household":
        _check_household_addresses(session, rows, out)
    if spec.geometry is not None:
        _check_nesting(session, spec, rows, settings, out)
    if spec.table == "service_point":
        _check_service_geometry(rows, out)

    report.errors.sort(key=lambda issue: issue.row)
    report.repairs.sort(key=lambda issue: issue.row)
    if report.errors:
        bad_rows = len({issue.row for issue in report.errors})
        raise ImportRejected(
            f"{bad_rows} 行有错误，未写入任何数据 / {bad_rows} of {len(rows)} rows have errors; nothing was written",
            report,
            code="rows_rejected",
        )
    try:
        with session.begin_nested():
            report.rows_written = _write(session, spec, rows)
    except (DBAPIError, psycopg.Error) as exc:
        # A rule the checks above do not know (a constraint added later, a concurrent insert).
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ImportRejected(
            f"数据库拒绝写入，未写入任何数据 / the database refused the rows, nothing was written: {detail}",
            report,
            code="rejected_by_database",
        ) from exc
    return report


def _check_service_geometry(rows: Sequence[_Row], out: _Collector) -> None:
    """A delivery zone is an area; every other service is a point (the table's check constraint)."""
    for row in rows:
        if row.geom is None or row.values.get("kind") is None:
            continue
        is_area = row.geom.geom_type in ("Polygon", "MultiPolygon")
        kind = row.values["kind"]
        if is_area != (kind == "delivery_zone"):
            zh, en = ("面", "a polygon") if kind == "delivery_zone" else ("点", "a point")
            out.error(row, None, "wrong_geometry_type", f"{kind} 应为{zh} / {kind} must be {en}")
