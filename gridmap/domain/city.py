"""A synthetic city to measure on: real districts, clipped to a dense core, cut into chunks.

Pure and deterministic, like gridmap.domain.demo, whose generator fills each chunk. The city is the
part of each real district (data/boundaries/chongqing_core.geojson) inside a circle around the
Yuzhong centre: the four districts are large and mostly rural at their edges, so filling them
whole at 300–500 households per grid would give far more grids than a city core has.

How the city is cut:

* all geometry is built in one affine metric frame centred on the circle (gridmap.domain.demo
  ``LocalMetric``), so what is cut on an edge in metres lies on that edge in lon/lat;
* each district piece gets a number of chunks proportional to its area (at least one), and is
  partitioned into that many sub-districts, exactly as the demo partitions a district;
* a chunk is one sub-district: the demo generator fills it with its communities, grids, compounds,
  buildings, households, people and staff (``DemoSpec(subdistricts=1, ...)``) from a seed of its own,
  derived from the city seed and the chunk's index;
* the generator numbers ids from 1 in every chunk; :func:`shift_ids` moves them past the rows of
  the chunks before, in chunk order, so ids are unique and the result does not depend on which
  chunk was generated first (the loader may generate chunks in parallel).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from gridmap.domain.demo import (
    TABLES,
    DemoSpec,
    LocalMetric,
    _as_multi,  # the demo's geometry helpers, shared on purpose: chunks must nest like the demo
    _partition,
    _polygonal,
    _reproject,
    building_code,
    generate_district,
)
from gridmap.domain.errors import InvalidInput

# Real sub-district names (街道), roughly west to east; a district cut into more chunks than it has
# names gets numbered ones after them. Keyed by adcode.
SUBDISTRICT_NAMES: dict[str, tuple[str, ...]] = {
    "500103": (  # 渝中区
        "石油路街道", "大坪街道", "化龙桥街道", "两路口街道", "上清寺街道", "菜园坝街道",
        "大溪沟街道", "七星岗街道", "南纪门街道", "解放碑街道", "朝天门街道",
    ),
    "500105": (  # 江北区
        "大石坝街道", "石马河街道", "观音桥街道", "华新街街道", "江北城街道", "五里店街道",
        "寸滩街道", "铁山坪街道", "郭家沱街道",
    ),
    "500106": (  # 沙坪坝区
        "歌乐山街道", "山洞街道", "新桥街道", "天星桥街道", "覃家岗街道", "井口街道", "磁器口街道",
        "童家桥街道", "石井坡街道", "沙坪坝街道", "小龙坎街道", "詹家溪街道", "渝碚路街道", "土湾街道",
    ),
    "500108": (  # 南岸区
        "铜元局街道", "花园路街道", "南坪街道", "海棠溪街道", "龙门浩街道", "弹子石街道",
        "南山街道", "天文街道",
    ),
}

# Tables a chunk writes, parents before children: the demo's tables but the districts (the city
# writes them itself) and controlled areas (none are generated).
CHUNK_TABLES: tuple[str, ...] = tuple(t for t in TABLES if t not in ("district", "controlled_area"))

# Per table, the columns holding ids and the table whose id they hold: a chunk's rows are moved
# past the chunks before by that table's offset. "district" is the chunk's own district.
ID_COLUMNS: dict[str, dict[str, str]] = {
    "subdistrict": {"id": "subdistrict", "district_id": "district"},
    "community": {"id": "community", "subdistrict_id": "subdistrict"},
    "grid": {"id": "grid", "community_id": "community"},
    "compound": {"id": "compound", "community_id": "community"},
    "gate": {"id": "gate", "compound_id": "compound"},
    "building": {"id": "building", "grid_id": "grid", "compound_id": "compound"},
    "household": {"id": "household", "building_id": "building"},
    "key_person": {"id": "key_person", "household_id": "household"},
    "key_person_category_link": {"key_person_id": "key_person", "building_id": "building"},
    "staff": {"id": "staff", "community_id": "community"},
    "staff_assignment": {
        "id": "staff_assignment",
        "staff_id": "staff",
        "grid_id": "grid",
        "building_id": "building",
        "household_id": "household",
    },
    "risk_assignment": {"id": "risk_assignment", "community_id": "community", "grid_id": "grid"},
    "checkpoint": {"id": "checkpoint", "gate_id": "gate"},
    "service_point": {"id": "service_point", "community_id": "community"},
}


@dataclass(frozen=True)
class CitySpec:
    """Where the city is and how big: the defaults give about 10,000 grids in 125 chunks."""

    # The circle is centred on this district's centroid, unless ``centre`` (lon, lat) is given.
    centre_district: str = "渝中区"
    centre: tuple[float, float] | None = None
    # 15 km: ~380 km² of the four districts, ~38,000 m² per grid: a dense core (Yuzhong has about
    # 250,000 households on 23 km², ~37,000 m² per 400 households). Denser grids leave the
    # generator little room between buildings and cost it more time.
    radius_m: float = 15_000.0
    grids: int = 10_000
    # A chunk (one sub-district): 8 communities of 10 grids, about 32,000 households.
    communities_per_subdistrict: int = 8
    grids_per_community: int = 10
    households_min: int = 300
    households_max: int = 500
    # Medium/high-risk communities per sub-district.
    elevated_per_subdistrict: int = 1
    # A chunk never gets less land per grid than this (the generator needs 20,000 m²); a district
    # piece too small for one chunk is left out of the city.
    min_grid_area_m2: float = 25_000.0
    # Detached bits of a district inside the circle smaller than this are dropped.
    min_part_area_m2: float = 50_000.0

    def __post_init__(self) -> None:
        if self.radius_m <= 0:
            raise ValueError("radius_m must be positive")
        if self.grids < 1:
            raise ValueError("grids must be at least 1")
        if self.min_grid_area_m2 < 20_000.0:
            raise ValueError("min_grid_area_m2 below 20,000 m² is more than the generator can fill")
        self.chunk_spec()  # the DemoSpec checks the rest

    @classmethod
    def tiny(cls) -> CitySpec:
        """Two chunks of four grids, one each side of the Jialing river (渝中区 | 江北区): for tests."""
        return cls(
            centre=(106.5515, 29.5707),  # a point of the border the two districts share
            radius_m=330.0,
            grids=8,
            communities_per_subdistrict=2,
            grids_per_community=2,
        )

    def scaled(self, factor: float) -> CitySpec:
        """The same density over ``factor`` of the area (and about ``factor`` of the grids)."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        return replace(self, radius_m=self.radius_m * math.sqrt(factor), grids=max(1, round(self.grids * factor)))

    @property
    def grids_per_chunk(self) -> int:
        return self.communities_per_subdistrict * self.grids_per_community

    def chunk_spec(self) -> DemoSpec:
        return DemoSpec(
            subdistricts=1,
            communities_per_subdistrict=self.communities_per_subdistrict,
            grids_per_community=self.grids_per_community,
            households_min=self.households_min,
            households_max=self.households_max,
            elevated_communities=min(self.elevated_per_subdistrict, self.communities_per_subdistrict),
        )


@dataclass(frozen=True)
class CityDistrict:
    id: int  # 1, 2, ... in the order of the boundary file
    code: str
    name: str
    name_en: str
    geom: BaseGeometry  # MultiPolygon, lon/lat: the district's part of the city
    area_m2: float


@dataclass(frozen=True)
class CityChunk:
    """One sub-district, generated and loaded as a unit."""

    index: int  # 0, 1, ...: the load order
    district_id: int
    district_code: str
    district_name: str
    district_name_en: str
    subdistrict_code: str
    subdistrict_name: str
    boundary: BaseGeometry  # lon/lat
    spec: DemoSpec
    seed: int


@dataclass(frozen=True)
class CityPlan:
    districts: tuple[CityDistrict, ...]
    chunks: tuple[CityChunk, ...]
    centre: tuple[float, float]

    @property
    def grids(self) -> int:
        return sum(c.spec.grids for c in self.chunks)

    @property
    def area_m2(self) -> float:
        return sum(d.area_m2 for d in self.districts)


def chunk_seed(seed: int, index: int) -> int:
    """The generator seed of chunk ``index``: independent streams for every chunk of a city seed."""
    a, b = np.random.SeedSequence(seed, spawn_key=(1, index)).generate_state(2)
    return (int(a) << 32) | int(b)


def _cut_seed(seed: int, district_index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(0, district_index))


def subdistrict_names(adcode: str, district_name: str, n: int) -> list[str]:
    """``n`` sub-district names for a district, west to east: real ones spread evenly over the
    district while there are enough, then numbered ones."""
    real = SUBDISTRICT_NAMES.get(adcode, ())
    if n <= len(real):
        return [real[(2 * i + 1) * len(real) // (2 * n)] for i in range(n)]
    return [*real, *(f"{district_name}第{k}街道" for k in range(len(real) + 1, n + 1))]


def _chunk_counts(areas: Sequence[float], spec: CitySpec) -> list[int]:
    """Chunks per district piece: proportional to area (largest remainders, so they add up to the
    grids wanted), at least one, never denser than ``min_grid_area_m2`` allows (a piece without
    room for one chunk gets none)."""
    total = sum(areas)
    if total <= 0:
        return [0] * len(areas)
    wanted = max(1, round(spec.grids / spec.grids_per_chunk))
    quotas = [wanted * a / total for a in areas]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(areas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in by_remainder[: wanted - sum(counts)]:
        counts[i] += 1
    rooms = [int(a // (spec.grids_per_chunk * spec.min_grid_area_m2)) for a in areas]
    return [min(room, max(1, n)) for n, room in zip(counts, rooms, strict=True)]


def plan_city(
    boundaries: Sequence[tuple[BaseGeometry, Mapping]], spec: CitySpec, seed: int = 1
) -> CityPlan:
    """Cut the city out of ``boundaries`` ((lon/lat polygon, properties) per real district, with
    ``name``, ``adcode`` and ``name_en``) into districts and chunks. Deterministic."""
    if spec.centre is not None:
        cx, cy = spec.centre
    else:
        named = [g for g, props in boundaries if props.get("name") == spec.centre_district]
        if not named:
            raise InvalidInput(
                f"边界文件中没有{spec.centre_district} / no district named {spec.centre_district!r}",
                code="bad_boundary",
            )
        c = named[0].centroid
        cx, cy = c.x, c.y
    to_metric = LocalMetric(cx, cy)
    to_lonlat = LocalMetric(cx, cy, inverse=True)
    circle = Point(0.0, 0.0).buffer(spec.radius_m, quad_segs=64)

    pieces: list[tuple[BaseGeometry, Mapping]] = []
    for geom, props in boundaries:
        metric = _polygonal(shapely.make_valid(_reproject([shapely.force_2d(geom)], to_metric)[0]))
        piece = _polygonal(shapely.intersection(metric, circle)) if metric is not None else None
        if piece is None:
            continue
        parts = [p for p in shapely.get_parts(piece) if p.area >= spec.min_part_area_m2]
        if parts:
            pieces.append((parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts), props))
    counts = _chunk_counts([p.area for p, _ in pieces], spec)

    districts: list[CityDistrict] = []
    chunks: list[CityChunk] = []
    chunk_spec = spec.chunk_spec()
    for k, ((piece, props), n) in enumerate(zip(pieces, counts, strict=True)):
        if n < 1:
            continue
        code = str(props.get("adcode", f"9{k:05d}"))
        name = str(props.get("name", f"第{k + 1}区"))
        name_en = str(props.get("name_en", ""))
        district_id = len(districts) + 1
        districts.append(
            CityDistrict(district_id, code, name, name_en, _as_multi(_reproject([piece], to_lonlat)[0]), piece.area)
        )
        cells = _partition(piece, n, np.random.default_rng(_cut_seed(seed, k)))
        for seq, (cell, sub_name) in enumerate(zip(cells, subdistrict_names(code, name, n), strict=True), start=1):
            index = len(chunks)
            chunks.append(
                CityChunk(
                    index=index,
                    district_id=district_id,
                    district_code=code,
                    district_name=name,
                    district_name_en=name_en,
                    subdistrict_code=f"{code}{seq:03d}",
                    subdistrict_name=sub_name,
                    boundary=_reproject([cell], to_lonlat)[0],
                    spec=chunk_spec,
                    seed=chunk_seed(seed, index),
                )
            )
    if not chunks:
        raise InvalidInput("圆内没有可用的辖区 / no district is large enough inside the circle", code="bad_boundary")
    return CityPlan(districts=tuple(districts), chunks=tuple(chunks), centre=(cx, cy))


def chunk_offsets(before: Mapping[str, int], chunk: CityChunk) -> dict[str, int]:
    """What to add to each table's ids in ``chunk``, given the rows of every chunk before it.

    The generator's district (local id 1) becomes the city's district of the chunk."""
    return {**before, "district": chunk.district_id - 1}


def shift_ids(table: str, columns: Sequence[str], rows: Sequence[list], offsets: Mapping[str, int]) -> None:
    """Move the ids of a chunk's rows (lists in ``columns`` order) by ``offsets``, in place.

    Missing references (None) stay missing; a building's code follows its new id."""
    moves = [
        (columns.index(col), offsets.get(target, 0))
        for col, target in ID_COLUMNS.get(table, {}).items()
        if col in columns and offsets.get(target, 0)
    ]
    for i, off in moves:
        for row in rows:
            if row[i] is not None:
                row[i] += off
    if table == "building" and "code" in columns:
        i_id, i_code = columns.index("id"), columns.index("code")
        for row in rows:
            row[i_code] = building_code(row[i_id])


# --- a chunk's rows, laid out for a loader (runs in a worker process) ---------------------------

LINK_COLUMNS: tuple[str, ...] = ("key_person_id", "category_id", "building_id")


@dataclass(frozen=True)
class ChunkLayout:
    """How a loader wants a chunk's rows: the database's columns and reference ids, and the rest of
    what the generator takes. Small and picklable: sent with every chunk to a worker."""

    now: datetime
    columns: Mapping[str, tuple[str, ...]]  # per table, in COPY order (``geom`` as hex EWKB)
    category_ids: Mapping[str, int]
    class_ids: Mapping[tuple[str, str], int]  # (scheme, code) -> risk_class.id
    srid: int = 4326
    shifts_per_day: int = 3
    staff_per_shift: int = 2


@dataclass
class ChunkRows:
    """A chunk's rows as lists in ``ChunkLayout.columns`` order, geometries hex EWKB, ids local
    (from 1, as the generator numbers them: :func:`shift_ids` moves them)."""

    index: int
    grids: int
    seconds: float  # spent generating
    tables: dict[str, tuple[tuple[str, ...], list[list]]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(len(rows) for _, rows in self.tables.values())


def _hex_ewkb(geoms: list, srid: int) -> np.ndarray:
    """Hex EWKB of each geometry (None stays None), in one vectorised call rather than per row."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    return shapely.to_wkb(shapely.set_srid(arr, srid), hex=True, include_srid=True)


def generate_chunk(chunk: CityChunk, layout: ChunkLayout) -> ChunkRows:
    """Generate one chunk and lay its rows out for COPY. Deterministic (only ``seconds`` is not).

    Lives here, with nothing of the database imported, so that a worker process starts quickly."""
    started = time.perf_counter()
    district = generate_district(
        chunk.boundary,
        chunk.spec,
        chunk.seed,
        district_code=chunk.district_code,
        district_name=chunk.district_name,
        district_name_en=chunk.district_name_en,
        now=layout.now,
        checkpoint_shifts_per_day=layout.shifts_per_day,
        checkpoint_staff_per_shift=layout.staff_per_shift,
        subdistricts=[(chunk.subdistrict_code, chunk.subdistrict_name)],
    )
    out = ChunkRows(index=chunk.index, grids=len(district.grid), seconds=0.0)
    for table in CHUNK_TABLES:
        if table == "key_person_category_link":  # ids are list positions + 1 in a generated district
            person, household = district.key_person, district.household
            out.tables[table] = (
                LINK_COLUMNS,
                [
                    [
                        r["key_person_id"],
                        layout.category_ids[r["category_code"]],
                        household[person[r["key_person_id"] - 1]["household_id"] - 1]["building_id"],
                    ]
                    for r in district.key_person_category_link
                ],
            )
            continue
        columns = tuple(layout.columns[table])
        source = getattr(district, table)
        if table == "risk_assignment":
            source = [
                {**r, "risk_class_id": layout.class_ids[(r["risk_scheme"], r["risk_class_code"])]} for r in source
            ]
        rows = [[r.get(c) for c in columns] for r in source]
        if "geom" in columns:
            g = columns.index("geom")
            for row, value in zip(rows, _hex_ewkb([row[g] for row in rows], layout.srid), strict=True):
                row[g] = value
        out.tables[table] = (columns, rows)
    out.seconds = time.perf_counter() - started
    return out


def district_rows(plan: CityPlan, columns: Sequence[str], srid: int = 4326) -> list[list]:
    """The city's district rows in ``columns`` order (geometry as hex EWKB)."""
    rows = [[getattr(d, c) for c in columns] for d in plan.districts]
    if "geom" in columns:
        g = list(columns).index("geom")
        for row, value in zip(rows, _hex_ewkb([row[g] for row in rows], srid), strict=True):
            row[g] = value
    return rows


__all__ = [
    "CHUNK_TABLES",
    "ID_COLUMNS",
    "LINK_COLUMNS",
    "SUBDISTRICT_NAMES",
    "ChunkLayout",
    "ChunkRows",
    "CityChunk",
    "CityDistrict",
    "CityPlan",
    "CitySpec",
    "chunk_offsets",
    "chunk_seed",
    "district_rows",
    "generate_chunk",
    "plan_city",
    "shift_ids",
    "subdistrict_names",
]
