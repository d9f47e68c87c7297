"""Controlled areas (封控区 / 管控区 / 防范区, or a tier) with every version kept.

A save never overwrites: it adds the next version of the area with its geometry, class, reason,
author, time, planned end and the impact as computed then. Saving from a stale version (someone
else saved in between) is refused with the other's change, so nothing is lost; the unique
(area_key, version) constraint makes that hold across concurrent transactions, not just in Python.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.domain.access import EDIT_AREA
from gridmap.domain.errors import GridmapError, NotFound
from gridmap.services.access import AccessDenied, Principal, require, require_write
from gridmap.services.impact import Impact, compute_impact, to_ewkb


class AreaConflict(GridmapError):
    """Someone saved this area since the version the user started from."""

    code = "area_conflict"

    def __init__(self, message: str, current: dict):
        super().__init__(message)
        self.current = current


class ReasonRequired(GridmapError):
    code = "reason_required"

    def __init__(self, message: str, impact: Impact):
        super().__init__(message)
        self.impact = impact


@dataclass(frozen=True)
class AreaVersion:
    id: int
    area_key: int
    version: int
    class_code: str
    class_scheme: str
    name: str
    reason: str
    author: str
    created_at: datetime
    planned_end: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    impact: dict | None
    geometry: dict  # GeoJSON

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        for k in ("created_at", "planned_end", "ended_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d


_VERSION_COLUMNS = """
    ca.id, ca.area_key, ca.version, rc.code AS class_code, rc.scheme AS class_scheme, ca.name,
    ca.reason, ca.author, ca.created_at, ca.planned_end, ca.ended_at, ca.end_reason, ca.impact,
    ST_AsGeoJSON(ca.geom, 7)::json AS geometry
"""


def _as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    raise GridmapError("区域必须是多边形 / an area must be a polygon", code="not_polygon")


def _class_id(session: Session, class_code: str) -> int:
    # Area classes first: 'sealed' etc.; tiers ('high', ...) are accepted too.
    row = session.execute(
        text("SELECT id FROM risk_class WHERE code = :c ORDER BY (scheme = 'area') DESC LIMIT 1"),
        {"c": class_code},
    ).scalar()
    if row is None:
        raise GridmapError(f"未知区域类别 / unknown class {class_code!r}", code="bad_class")
    return row


def _row_to_version(row) -> AreaVersion:
    return AreaVersion(**row._mapping)


def get_version(session: Session, area_key: int, version: int | None = None) -> AreaVersion:
    """One version of an area (the latest when ``version`` is None)."""
    row = session.execute(
        text(
            f"SELECT {_VERSION_COLUMNS} FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id "
            "WHERE ca.area_key = :k AND ca.version = coalesce(CAST(:v AS integer), "
            "(SELECT max(version) FROM controlled_area WHERE area_key = :k))"
        ),
        {"k": area_key, "v": version},
    ).one_or_none()
    if row is None:
        raise NotFound(f"没有区域 {area_key} 的版本 {version or '最新'} / no such area version")
    return _row_to_version(row)


def list_versions(session: Session, area_key: int) -> list[AreaVersion]:
    rows = session.execute(
        text(
            f"SELECT {_VERSION_COLUMNS} FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id "
            "WHERE ca.area_key = :k ORDER BY ca.version"
        ),
        {"k": area_key},
    ).all()
    if not rows:
        raise NotFound(f"没有区域 {area_key} / no such area")
    return [_row_to_version(r) for r in rows]


def list_current_areas(session: Session, *, include_ended: bool = False) -> list[AreaVersion]:
    rows = session.execute(
        text(
            f"SELECT {_VERSION_COLUMNS} FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id "
            "WHERE ca.version = (SELECT max(version) FROM controlled_area v WHERE v.area_key = ca.area_key) "
            "AND (:all OR ca.ended_at IS NULL) ORDER BY ca.area_key"
        ),
        {"all": include_ended},
    ).all()
    return [_row_to_version(r) for r in rows]


def _insert_version(
    session: Session,
    *,
    area_key: int | None,
    version: int,
    geom: MultiPolygon,
    class_code: str,
    name: str,
    reason: str,
    author: str,
    now: datetime,
    planned_end: datetime | None,
    impact: dict | None,
    ended_at: datetime | None = None,
    end_reason: str | None = None,
) -> AreaVersion:
    params = {
        "version": version,
        "class_id": _class_id(session, class_code),
        "name": name,
        "reason": reason,
        "author": author,
        "now": now,
        "planned_end": planned_end,
        "ended_at": ended_at,
        "end_reason": end_reason,
        "impact": json.dumps(impact, ensure_ascii=False, default=str) if impact is not None else None,
        "wkb": to_ewkb(geom),
    }
    new_id = session.execute(text("SELECT nextval(pg_get_serial_sequence('controlled_area', 'id'))")).scalar_one()
    try:
        with session.begin_nested():
            session.execute(
                text(
                    "INSERT INTO controlled_area (id, area_key, version, risk_class_id, name, reason, author,"
                    " created_at, planned_end, ended_at, end_reason, impact, geom)"
                    " VALUES (:id, :key, :version, :class_id, :name, :reason, :author, :now, :planned_end,"
                    " :ended_at, :end_reason, CAST(:impact AS jsonb), ST_GeomFromEWKB(:wkb))"
                ),
                {**params, "id": new_id, "key": new_id if area_key is None else area_key},
            )
    except IntegrityError as exc:
        if "controlled_area_version" not in str(exc.orig):
            raise
        latest = get_version(session, area_key) if area_key is not None else None
        raise AreaConflict(
            f"区域已被 {latest.author} 于 {latest.created_at:%Y-%m-%d %H:%M} 修改为第 {latest.version} 版；"
            "请在最新版本上重新编辑。/ Someone else saved this area meanwhile; edit the latest version.",
            latest.as_dict() if latest else {},
        ) from exc
    row = session.execute(
        text(f"SELECT {_VERSION_COLUMNS} FROM controlled_area ca JOIN risk_class rc ON rc.id = ca.risk_class_id "
             "WHERE ca.id = :id"),
        {"id": new_id},
    ).one()
    return _row_to_version(row)


def _require_editor(principal: Principal | None, grid_ids: list[int]) -> None:
    """Only roles that may edit areas, and only over grids inside their own area.

    ``principal`` None is the command line and the tests of the rules themselves: no check.
    """
    if principal is None:
        return
    require_write(principal)
    require(principal, EDIT_AREA)
    outside = sorted(set(grid_ids) - principal.grid_ids)
    if outside:
        raise AccessDenied(
            f"区域超出你负责的范围（{principal.area_name}），涉及 {len(outside)} 个网格 / the area reaches "
            f"{len(outside)} grid(s) outside your area ({principal.area_name})"
        )


def _checked_impact(
    session: Session, geom: MultiPolygon, class_code: str, reason: str, settings: Settings, area_key: int | None,
    principal: Principal | None,
) -> Impact:
    impact = compute_impact(session, geom, class_code, settings, exclude_area_key=area_key)
    _require_editor(principal, [g["id"] for g in impact.grids])
    if impact.warnings and not reason.strip():
        raise ReasonRequired(
            "该区域触发过度防控预警，提交前必须填写理由。/ This area raises over-control warnings: "
            "a written reason is required to commit it.",
            impact,
        )
    return impact


def create_area(
    session: Session,
    geom: BaseGeometry,
    class_code: str,
    *,
    settings: Settings,
    author: str,
    now: datetime,
    name: str = "",
    reason: str = "",
    planned_end: datetime | None = None,
    principal: Principal | None = None,
) -> AreaVersion:
    mp = _as_multipolygon(geom)
    impact = _checked_impact(session, mp, class_code, reason, settings, None, principal)
    return _insert_version(
        session, area_key=None, version=1, geom=mp, class_code=class_code, name=name, reason=reason,
        author=author, now=now, planned_end=planned_end, impact=impact.as_dict(),
    )


def _require_current(session: Session, area_key: int, base_version: int) -> AreaVersion:
    latest = get_version(session, area_key)
    if latest.version != base_version:
        raise AreaConflict(
            f"区域已被 {latest.author} 于 {latest.created_at:%Y-%m-%d %H:%M} 修改为第 {latest.version} 版"
            f"（你编辑的是第 {base_version} 版）；你的修改未保存，请在最新版本上重做。"
            f" / {latest.author} saved version {latest.version} at {latest.created_at:%Y-%m-%d %H:%M} "
            f"while you edited version {base_version}; your change was not saved.",
            latest.as_dict(),
        )
    return latest


def save_version(
    session: Session,
    area_key: int,
    base_version: int,
    geom: BaseGeometry,
    class_code: str,
    *,
    settings: Settings,
    author: str,
    now: datetime,
    reason: str = "",
    name: str | None = None,
    planned_end: datetime | None = None,
    principal: Principal | None = None,
) -> AreaVersion:
    """Save a redraw of ``area_key`` made from ``base_version``; refused when that is not the latest."""
    latest = _require_current(session, area_key, base_version)
    if latest.ended_at is not None:
        raise GridmapError("该区域已解除 / this area has been lifted", code="area_ended")
    _require_editor(principal, [g["id"] for g in (latest.impact or {}).get("grids", [])])
    mp = _as_multipolygon(geom)
    impact = _checked_impact(session, mp, class_code, reason, settings, area_key, principal)
    return _insert_version(
        session, area_key=area_key, version=base_version + 1, geom=mp, class_code=class_code,
        name=latest.name if name is None else name, reason=reason, author=author, now=now,
        planned_end=planned_end if planned_end is not None else latest.planned_end, impact=impact.as_dict(),
    )


def revert(
    session: Session, area_key: int, to_version: int, base_version: int, *, settings: Settings, author: str,
    now: datetime, reason: str, principal: Principal | None = None,
) -> AreaVersion:
    """A new version equal to an older one (history is never rewritten)."""
    old = get_version(session, area_key, to_version)
    geom = shapely.geometry.shape(old.geometry)
    return save_version(
        session, area_key, base_version, geom, old.class_code, settings=settings, author=author, now=now,
        reason=reason or f"恢复到第 {to_version} 版 / revert to version {to_version}", name=old.name,
        principal=principal,
    )


def lift(
    session: Session, area_key: int, base_version: int, *, author: str, now: datetime, reason: str,
    principal: Principal | None = None,
) -> AreaVersion:
    """End the area (解封): a last version carrying the end time and reason."""
    if not reason.strip():
        raise GridmapError("解除区域必须填写理由 / lifting an area needs a reason", code="reason_required")
    latest = _require_current(session, area_key, base_version)
    if latest.ended_at is not None:
        raise GridmapError("该区域已解除 / this area has already been lifted", code="area_ended")
    _require_editor(principal, [g["id"] for g in (latest.impact or {}).get("grids", [])])
    return _insert_version(
        session, area_key=area_key, version=base_version + 1,
        geom=_as_multipolygon(shapely.geometry.shape(latest.geometry)), class_code=latest.class_code,
        name=latest.name, reason=latest.reason, author=author, now=now, planned_end=latest.planned_end,
        impact=latest.impact, ended_at=now, end_reason=reason,
    )


def compare_versions(session: Session, area_key: int, old: int, new: int) -> dict:
    """What ``new`` added to and released from ``old``, as GeoJSON with areas in m² (on geography)."""
    row = session.execute(
        text(
            """
            WITH a AS (SELECT geom FROM controlled_area WHERE area_key = :k AND version = :old),
                 b AS (SELECT geom FROM controlled_area WHERE area_key = :k AND version = :new),
                 d AS (SELECT ST_Difference(b.geom, a.geom) AS added, ST_Difference(a.geom, b.geom) AS released
                       FROM a, b)
            SELECT ST_AsGeoJSON(added, 7)::json AS added, ST_AsGeoJSON(released, 7)::json AS released,
                   ST_Area(added::geography) AS added_m2, ST_Area(released::geography) AS released_m2
            FROM d
            """
        ),
        {"k": area_key, "old": old, "new": new},
    ).one_or_none()
    if row is None:
        raise NotFound(f"区域 {area_key} 没有第 {old} 或第 {new} 版 / no such versions")
    old_v, new_v = get_version(session, area_key, old), get_version(session, area_key, new)
    return {
        "area_key": area_key,
        "old": old_v.as_dict(),
        "new": new_v.as_dict(),
        "added": row.added,
        "released": row.released,
        "added_m2": round(row.added_m2, 1),
        "released_m2": round(row.released_m2, 1),
    }
