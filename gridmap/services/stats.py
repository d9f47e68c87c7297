"""Counts of every layer and the nesting check: does each polygon lie in its parent, do siblings
overlap, do the children of a parent leave gaps?

Areas are measured with ``gridmap_local_area_m2`` (migration 0004), an affine local frame, on
purpose: the edges are straight in lon/lat, and on geography or in UTM a sliver whose three corners
lie on one lon/lat line becomes a thin triangle of several square metres of false gap. The
tolerance is a setting in square metres (``nesting_tolerance_m2``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.db.models import LAYER_MODELS

# (check name, child table, parent table, foreign key on the child)
_CONTAINMENT = (
    ("subdistrict_outside_district", "subdistrict", "district", "district_id"),
    ("community_outside_subdistrict", "community", "subdistrict", "subdistrict_id"),
    ("grid_outside_community", "grid", "community", "community_id"),
    ("compound_outside_community", "compound", "community", "community_id"),
    ("building_outside_grid", "building", "grid", "grid_id"),
)
# (check name, table, the parent key that makes two rows siblings)
_OVERLAPS = (
    ("subdistrict_overlap", "subdistrict", "district_id"),
    ("community_overlap", "community", "subdistrict_id"),
    ("grid_overlap", "grid", "community_id"),
    ("building_overlap", "building", "grid_id"),
)
# (check name, parent table, child table, foreign key on the child): children must tile the parent
_GAPS = (
    ("gap_in_district", "district", "subdistrict", "district_id"),
    ("gap_in_subdistrict", "subdistrict", "community", "subdistrict_id"),
    ("gap_in_community", "community", "grid", "community_id"),
)


@dataclass(frozen=True)
class Stats:
    counts: dict[str, int]
    violations: dict[str, int]
    tolerance_m2: float

    @property
    def nesting_violations(self) -> int:
        return sum(self.violations.values())

    def as_dict(self) -> dict:
        return {
            "counts": self.counts,
            "nesting_violations": self.nesting_violations,
            "violations": self.violations,
            "tolerance_m2": self.tolerance_m2,
        }


def count_layers(session: Session) -> dict[str, int]:
    counts = {}
    for name in [*LAYER_MODELS, "key_person_category"]:
        counts[name] = session.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
    return counts


def nesting_violations(session: Session, tolerance_m2: float) -> dict[str, int]:
    found: dict[str, int] = {}
    params = {"tol": tolerance_m2}
    for check, child, parent, fk in _CONTAINMENT:
        found[check] = session.execute(
            text(
                f"SELECT count(*) FROM {child} c JOIN {parent} p ON p.id = c.{fk} "
                "WHERE NOT ST_CoveredBy(c.geom, p.geom) "
                "AND gridmap_local_area_m2(ST_Difference(c.geom, p.geom)) > :tol"
            ),
            params,
        ).scalar_one()
    for check, table, key in _OVERLAPS:
        found[check] = session.execute(
            text(
                f"SELECT count(*) FROM {table} a JOIN {table} b "
                f"ON a.id < b.id AND a.{key} = b.{key} AND a.geom && b.geom "
                "WHERE ST_Relate(a.geom, b.geom, '2********') "
                "AND gridmap_local_area_m2(ST_Intersection(a.geom, b.geom)) > :tol"
            ),
            params,
        ).scalar_one()
    for check, parent, child, fk in _GAPS:
        found[check] = session.execute(
            text(
                f"SELECT count(*) FROM {parent} p "
                f"LEFT JOIN LATERAL (SELECT ST_Union(c.geom) AS g FROM {child} c WHERE c.{fk} = p.id) u ON true "
                "WHERE u.g IS NULL "
                "OR gridmap_local_area_m2(ST_Difference(p.geom, u.g)) > :tol"
            ),
            params,
        ).scalar_one()
    found["household_outside_building"] = session.execute(
        text(
            "SELECT count(*) FROM household h JOIN building b ON b.id = h.building_id "
            "WHERE NOT ST_Intersects(h.geom, b.geom)"
        )
    ).scalar_one()
    found["gate_off_compound_boundary"] = session.execute(
        text(
            "SELECT count(*) FROM gate g JOIN compound c ON c.id = g.compound_id "
            "WHERE ST_Distance(g.geom::geography, ST_Boundary(c.geom)::geography) > 1.0"
        )
    ).scalar_one()
    return found


def compute_stats(session: Session, settings: Settings) -> Stats:
    return Stats(
        counts=count_layers(session),
        violations=nesting_violations(session, settings.nesting_tolerance_m2),
        tolerance_m2=settings.nesting_tolerance_m2,
    )
