"""A synthetic district drawn inside a real boundary, for demos and tests.

Pure and deterministic: the same boundary, spec and seed give the same rows, byte for byte. Nothing
here touches a database; :func:`generate_district` returns one list of row dicts per table, keyed by
the column names of ``gridmap.db.models`` (trigger-maintained columns left out), with geometries as
shapely objects in EPSG:4326 and ids assigned from 1 so that children can point at their parents.

All geometry is built in a metric CRS (metres) and transformed back to lon/lat once, at the end:

* sub-districts, communities and grids are Voronoi cells of k-means centres (compact and of similar
  size) clipped to their parent, so siblings tile the parent with no overlap and no gap;
* each grid holds 1–3 compounds (小区) set back from its edge, each with 1–3 gates on its boundary;
* buildings are rotated rectangles kept 3 m from each other and from their compound's edge; their
  households add up to 300–500 per grid (``DemoSpec.households_min/max``).

The people are invented: names are composed from common surnames and given-name characters, phone
numbers start with 170/171 (virtual-operator ranges) and ID numbers carry a valid check digit on a
made-up birth date and sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from gridmap.domain.errors import InvalidInput
from gridmap.domain.reference import KEY_PERSON_CATEGORIES, RISK_CLASSES, SERVICE_POINT_KINDS, STAFF_ROLES

# Tables in parent-to-child order.
TABLES: tuple[str, ...] = (
    "district",
    "subdistrict",
    "community",
    "grid",
    "compound",
    "gate",
    "building",
    "household",
    "key_person",
    "key_person_category_link",
    "staff",
    "staff_assignment",
    "risk_assignment",
    "checkpoint",
    "service_point",
    "controlled_area",
)

# Share of households with a person of each category (one draw per household and category).
# Rates are plausible orders of magnitude for an old urban district, not statistics.
DEFAULT_KEY_PERSON_RATES: tuple[tuple[str, float], ...] = (
    ("elderly_alone", 0.03),
    ("chronic", 0.045),  # plus the chronic elderly living alone: ~6 % in all
    ("disabled", 0.012),  # plus those without self-care: ~1.5 %
    ("disabled_no_selfcare", 0.004),
    ("pregnant", 0.008),
    ("renter", 0.04),
    ("risk_area_arrival", 0.005),
    ("home_isolation", 0.003),  # spec.home_isolation_rate_elevated in medium/high communities
    ("recovered", 0.005),
    ("scattered_orphan", 0.0005),
    ("unattended_child", 0.0005),
    ("child_in_difficulty", 0.001),
    ("left_behind_child", 0.0),  # a rural category; the demo district is all urban
    ("special_hardship", 0.004),
    ("cold_chain_worker", 0.001),
    ("returnee", 0.008),
    ("medic_family", 0.004),
)

# Categories the same person often also has: (category, probability).
_SECONDARY: dict[str, tuple[tuple[str, float], ...]] = {
    "elderly_alone": (("chronic", 0.45), ("disabled", 0.08), ("special_hardship", 0.08)),
    "disabled_no_selfcare": (("disabled", 1.0), ("chronic", 0.3)),
    "risk_area_arrival": (("home_isolation", 0.2),),
    "scattered_orphan": (("child_in_difficulty", 0.3),),
    "positive": (("home_treatment", 0.6),),
}

# Age range (years, inclusive) of a person by primary category.
_AGES: dict[str, tuple[int, int]] = {
    "elderly_alone": (70, 95),
    "chronic": (45, 88),
    "disabled": (18, 80),
    "disabled_no_selfcare": (30, 92),
    "pregnant": (22, 40),
    "renter": (20, 45),
    "risk_area_arrival": (18, 65),
    "home_isolation": (3, 80),
    "home_treatment": (5, 85),
    "positive": (5, 85),
    "recovered": (18, 80),
    "scattered_orphan": (2, 17),
    "unattended_child": (2, 17),
    "child_in_difficulty": (3, 17),
    "left_behind_child": (3, 15),
    "special_hardship": (30, 85),
    "cold_chain_worker": (22, 55),
    "returnee": (18, 50),
    "medic_family": (5, 75),
}
_CHILD_CATEGORIES = frozenset(
    {"scattered_orphan", "unattended_child", "child_in_difficulty", "left_behind_child"}
)
# Someone else lives in these households (a child is cared for, a pregnant woman is not alone).
_NEEDS_COMPANY = _CHILD_CATEGORIES | {"pregnant"}
_OBSERVED = frozenset({"home_isolation", "risk_area_arrival", "home_treatment", "positive"})
_NOTES: dict[str, str] = {
    "elderly_alone": "独居，每周联系不少于2次",
    "disabled_no_selfcare": "生活不能自理，每周联系不少于2次",
    "scattered_orphan": "由亲属照料，每周联系不少于2次",
    "unattended_child": "由亲属照料，每周联系不少于2次",
    "pregnant": "定期产检，需保障就医",
    "positive": "核酸检测阳性",
    "home_isolation": "居家隔离医学观察",
    "risk_area_arrival": "中高风险地区来渝，已报备",
    "chronic": "长期用药",
}

_CATEGORY_CODES = frozenset(c.code for c in KEY_PERSON_CATEGORIES)
_VULNERABLE = frozenset(c.code for c in KEY_PERSON_CATEGORIES if c.vulnerable)
_RISK_CODES = frozenset((r.scheme, r.code) for r in RISK_CLASSES)


@dataclass(frozen=True)
class DemoSpec:
    """How big the demo district is and how its people are spread."""

    subdistricts: int = 11
    communities_per_subdistrict: int = 4
    grids_per_community: int = 3
    # Households per grid (settings.households_per_grid_min/max); the caller passes the settings.
    households_min: int = 300
    households_max: int = 500
    # Communities rated medium or high, each in a different sub-district where possible.
    elevated_communities: int = 3
    key_person_rates: tuple[tuple[str, float], ...] = DEFAULT_KEY_PERSON_RATES
    home_isolation_rate_elevated: float = 0.03
    positives_high: tuple[int, int] = (6, 10)
    positives_medium: tuple[int, int] = (2, 4)
    # Share of buildings standing outside any compound (临街楼).
    loose_building_share: float = 0.08
    # Share of gates with a checkpoint in low-risk communities (every gate in elevated ones).
    checkpoint_share_low: float = 0.10
    # Every community is rated low from this many days before `now`.
    risk_history_days: int = 60

    def __post_init__(self) -> None:
        for name in ("subdistricts", "communities_per_subdistrict", "grids_per_community"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 1 <= self.households_min <= self.households_max:
            raise ValueError("need 1 <= households_min <= households_max")
        if self.households_max > _MAX_FLATS_PER_BUILDING:
            raise ValueError(f"households_max above {_MAX_FLATS_PER_BUILDING} is not supported")
        if not 0 <= self.elevated_communities <= self.communities:
            raise ValueError("elevated_communities must be between 0 and the number of communities")
        unknown = {code for code, _ in self.key_person_rates} - _CATEGORY_CODES
        if unknown:
            raise ValueError(f"unknown key-person categories: {sorted(unknown)}")

    @classmethod
    def small(cls) -> DemoSpec:
        """Eight grids in two sub-districts: enough for every feature, fast enough for tests."""
        return cls(
            subdistricts=2, communities_per_subdistrict=2, grids_per_community=2, elevated_communities=2
        )

    @property
    def communities(self) -> int:
        return self.subdistricts * self.communities_per_subdistrict

    @property
    def grids(self) -> int:
        return self.communities * self.grids_per_community


@dataclass
class DemoDistrict:
    """One list of row dicts per table, ready for a loader (parents before children)."""

    district: list[dict] = field(default_factory=list)
    subdistrict: list[dict] = field(default_factory=list)
    community: list[dict] = field(default_factory=list)
    grid: list[dict] = field(default_factory=list)
    compound: list[dict] = field(default_factory=list)
    gate: list[dict] = field(default_factory=list)
    building: list[dict] = field(default_factory=list)
    household: list[dict] = field(default_factory=list)
    key_person: list[dict] = field(default_factory=list)
    # {key_person_id, category_code}: category ids are the database's to assign.
    key_person_category_link: list[dict] = field(default_factory=list)
    staff: list[dict] = field(default_factory=list)
    staff_assignment: list[dict] = field(default_factory=list)
    # risk_class_code + risk_scheme instead of risk_class_id, resolved by the loader.
    risk_assignment: list[dict] = field(default_factory=list)
    checkpoint: list[dict] = field(default_factory=list)
    service_point: list[dict] = field(default_factory=list)
    controlled_area: list[dict] = field(default_factory=list)

    def tables(self) -> dict[str, list[dict]]:
        return {name: getattr(self, name) for name in TABLES}

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables().items()}


# --- names ---------------------------------------------------------------------------------------

# Real Yuzhong sub-districts with a rough lon/lat of each, so that names land in the right part of
# the peninsula when the boundary is Yuzhong's (any boundary works: positions are matched
# relative to the bounding box).
_SUBDISTRICTS: tuple[tuple[str, float, float], ...] = (
    ("七星岗街道", 106.565, 29.558),
    ("解放碑街道", 106.576, 29.557),
    ("两路口街道", 106.548, 29.553),
    ("上清寺街道", 106.548, 29.563),
    ("菜园坝街道", 106.550, 29.546),
    ("南纪门街道", 106.565, 29.550),
    ("大溪沟街道", 106.559, 29.566),
    ("大坪街道", 106.522, 29.552),
    ("化龙桥街道", 106.523, 29.566),
    ("石油路街道", 106.508, 29.545),
    ("朝天门街道", 106.585, 29.562),
)
_COMMUNITY_NAMES: dict[str, tuple[str, ...]] = {
    "七星岗街道": ("金汤街", "观音岩", "通远门", "兴隆街", "领事巷", "中山一路", "双溪沟", "七星岗"),
    "解放碑街道": ("较场口", "民生路", "大井巷", "新华路", "白象街", "解放西路", "凯旋路", "小什字"),
    "两路口街道": ("中山支路", "大田湾", "健康路", "桂花园", "佛图关", "文化宫", "枇杷山", "两路口"),
    "上清寺街道": ("学田湾", "美专校街", "嘉陵桥东村", "牛角沱", "中山四路", "人民村", "上清寺"),
    "菜园坝街道": ("王家坡", "燕子岩", "珊瑚坝", "铁路村", "皇冠", "菜园坝"),
    "南纪门街道": ("凤凰台", "石板坡", "燕喜洞", "储奇门", "金紫门", "厚慈街", "南纪门"),
    "大溪沟街道": ("人民路", "双钢路", "张家花园", "黄花园", "马鞍山", "华一坡", "大溪沟"),
    "大坪街道": ("袁家岗", "马家堡", "肖家湾", "大黄路", "七牌坊", "大坪正街", "大坪"),
    "化龙桥街道": ("虎头岩", "李子坝", "红岩村", "龙隐路", "嘉陵滨江", "化龙桥"),
    "石油路街道": ("渝州路", "长江二路", "天灯堡", "协信", "鹅岭", "石油路"),
    "朝天门街道": ("朝东路", "千厮门", "望龙门", "陕西路", "东水门", "洪崖洞", "朝天门"),
}
_EXTRA_COMMUNITY_NAMES = (
    "人和街",
    "和平路",
    "新德村",
    "打铜街",
    "民族路",
    "邹容路",
    "八一路",
    "五一路",
    "中华路",
    "守备街",
    "戴家巷",
    "罗汉寺",
    "十八梯",
    "山城巷",
    "燕子坡",
    "春森路",
    "捍卫路",
    "嘉西村",
)
_COMPOUND_PREFIXES = (
    "嘉陵",
    "长江",
    "山城",
    "渝州",
    "鹅岭",
    "枇杷",
    "金汤",
    "和平",
    "新华",
    "民族",
    "中山",
    "人和",
    "黄花",
    "桂花",
    "锦绣",
    "阳光",
    "滨江",
    "望江",
    "观江",
    "临江",
    "半岛",
    "春晖",
    "朝阳",
    "东升",
    "兴隆",
    "富康",
    "康宁",
    "安居",
    "福寿",
    "天星",
    "龙门",
    "白象",
    "凤凰",
    "燕喜",
    "石板",
    "菜园",
    "美专",
    "学田",
    "双钢",
    "马鞍",
    "虎头",
    "红岩",
    "化龙",
    "李子",
    "袁家",
    "大坪",
    "石油",
    "协和",
    "华村",
    "建新",
    "团结",
    "胜利",
    "光明",
    "友谊",
    "育才",
    "园林",
    "铁路",
    "电力",
    "邮电",
    "纺织",
)
_COMPOUND_SUFFIXES = ("小区", "花园", "苑", "新村", "大厦", "公寓", "家园", "名苑", "雅居", "宿舍")

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴"
    "莫孔向汤冉"
)
# Roughly Zipf-shaped weights: 王/李/张 are far more common than 汤/冉.
_SURNAME_P = 1.0 / np.arange(1, len(_SURNAMES) + 1) ** 0.9
_SURNAME_P = _SURNAME_P / _SURNAME_P.sum()
_GIVEN_M = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林洋东峰建志国兵文亮成海川江渝庆春德福"
_GIVEN_F = "芳娜敏静丽艳娟霞秀玲桂英燕萍红梅琳雪婷慧颖倩洁佳琴莉兰云蓉丹晶欣瑶璐媛雯月凤琼玉"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def building_code(building_id: int) -> str:
    """A building's code, unique in the database: derived from its id."""
    return f"B{building_id:06d}"


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of an 18-character ID number."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


class _People:
    """Invented names, phone numbers and ID numbers, from one random stream."""

    def __init__(self, rng: np.random.Generator, area_code: str):
        self.rng = rng
        self.area_code = area_code if len(area_code) == 6 and area_code.isdigit() else "500103"
        self._phones: set[str] = set()
        self._ids: set[str] = set()

    def names(self, genders: Sequence[str]) -> list[str]:
        n = len(genders)
        rng = self.rng
        surnames = rng.choice(len(_SURNAMES), size=n, p=_SURNAME_P)
        two = rng.random(n) < 0.7
        a, b = rng.random(n), rng.random(n)
        out = []
        for i, g in enumerate(genders):
            chars = _GIVEN_F if g == "F" else _GIVEN_M
            given = chars[int(a[i] * len(chars))]
            if two[i]:
                given += chars[int(b[i] * len(chars))]
            out.append(_SURNAMES[surnames[i]] + given)
        return out

    def name(self, gender: str, surname: str | None = None) -> str:
        name = self.names([gender])[0]
        return surname + name[1:] if surname else name

    def genders(self, n: int, female_share: float = 0.5) -> list[str]:
        return ["F" if x < female_share else "M" for x in self.rng.random(n)]

    def phones(self, n: int, prefix: str) -> list[str]:
        out = []
        while len(out) < n:
            for x in self.rng.integers(0, 10**8, size=n - len(out)):
                phone = f"{prefix}{int(x):08d}"
                if phone not in self._phones:
                    self._phones.add(phone)
                    out.append(phone)
        return out

    def id_number(self, birth_year: int, gender: str, today: date) -> str:
        while True:
            born = date(birth_year, 1, 1) + timedelta(days=int(self.rng.integers(0, 365)))
            born = min(born, today)
            seq = int(self.rng.integers(0, 500)) * 2 + (1 if gender == "M" else 0)  # odd = male
            first17 = f"{self.area_code}{born:%Y%m%d}{seq:03d}"
            number = first17 + id_check_digit(first17)
            if number not in self._ids:
                self._ids.add(number)
                return number


# --- geometry ------------------------------------------------------------------------------------

_MAX_FLATS_PER_BUILDING = 33 * 4 * 4  # floors x units x flats per floor
_BUILDING_GAP_M = 3.0
_COMPOUND_MIN_AREA_M2 = 1500.0


def _polygonal(geom: BaseGeometry | None) -> Polygon | MultiPolygon | None:
    """The polygons of a geometry (dropping lines and points), or None when there are none."""
    if geom is None or geom.is_empty:
        return None
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and p.area > 0]
    if not parts:
        # A GeometryCollection may hold a MultiPolygon.
        nested = [q for p in shapely.get_parts(geom) if isinstance(p, MultiPolygon) for q in p.geoms]
        parts = [p for p in nested if p.area > 0]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _largest_polygon(geom: BaseGeometry | None) -> Polygon | None:
    poly = _polygonal(geom)
    if poly is None:
        return None
    if isinstance(poly, Polygon):
        return poly
    return max(poly.geoms, key=lambda p: p.area)


def _as_multi(geom: BaseGeometry) -> MultiPolygon:
    return geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])


def _sample_points(area: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly inside ``area``, as an (n, 2) array."""
    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    fill = max(area.area / max((maxx - minx) * (maxy - miny), 1e-9), 0.02)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    got = 0
    while got < n:
        m = int((n - got) / fill * 1.3) + 16
        x = rng.uniform(minx, maxx, m)
        y = rng.uniform(miny, maxy, m)
        ok = shapely.contains_xy(area, x, y)
        xs.append(x[ok])
        ys.append(y[ok])
        got += int(ok.sum())
    return np.column_stack([np.concatenate(xs), np.concatenate(ys)])[:n]


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding: centres of compact clusters of similar size."""
    n = len(points)
    centers = np.empty((k, 2))
    centers[0] = points[rng.integers(n)]
    d2 = ((points - centers[0]) ** 2).sum(axis=1)
    for i in range(1, k):
        centers[i] = points[rng.choice(n, p=d2 / d2.sum())]
        d2 = np.minimum(d2, ((points - centers[i]) ** 2).sum(axis=1))
    for _ in range(iterations):
        dist = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        labels = dist.argmin(axis=1)
        counts = np.bincount(labels, minlength=k)
        sx = np.bincount(labels, weights=points[:, 0], minlength=k)
        sy = np.bincount(labels, weights=points[:, 1], minlength=k)
        for j in range(k):
            if counts[j]:
                centers[j] = (sx[j] / counts[j], sy[j] / counts[j])
            else:  # an empty cluster restarts at the point worst served
                centers[j] = points[dist.min(axis=1).argmax()]
    return centers


def _shared_length(a: BaseGeometry, b: BaseGeometry) -> float:
    return shapely.length(shapely.intersection(a.boundary, b.boundary))


def _absorb_fragments(cells: list[BaseGeometry]) -> list[BaseGeometry]:
    """Give each cell's detached fragments to the sibling sharing the longest edge with them.

    A Voronoi cell clipped to a concave parent can fall apart; moving the small pieces keeps every
    cell in one piece where the parent allows it, without changing the union.
    """
    cells = list(cells)
    for _ in range(4):
        changed = False
        for i in range(len(cells)):
            parts = sorted(shapely.get_parts(cells[i]), key=lambda p: -p.area)
            if len(parts) <= 1:
                continue
            kept = [parts[0]]
            for part in parts[1:]:
                shared = [(_shared_length(part, cells[j]), j) for j in range(len(cells)) if j != i]
                best_len, best_j = max(shared, default=(0.0, -1))
                if best_len > 1e-6:
                    cells[best_j] = _polygonal(shapely.union(cells[best_j], part))
                    changed = True
                else:
                    kept.append(part)
            cells[i] = kept[0] if len(kept) == 1 else MultiPolygon(kept)
        if not changed:
            break
    return cells


def _partition(
    parent: BaseGeometry,
    k: int,
    rng: np.random.Generator,
    *,
    samples_per_cell: int = 250,
    iterations: int = 25,
) -> list[BaseGeometry]:
    """Cut ``parent`` into ``k`` compact pieces of similar area that tile it exactly.

    Voronoi cells of k-means centres over random points of the parent, each clipped to the parent.
    Returned west to east.
    """
    if k <= 1:
        return [parent]
    points = _sample_points(parent, samples_per_cell * k, rng)
    centers = _kmeans(points, k, rng, iterations)
    minx, miny, maxx, maxy = parent.bounds
    pad = max(maxx - minx, maxy - miny)
    frame = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    diagram = shapely.voronoi_polygons(shapely.multipoints(centers), extend_to=frame)
    cells: list[BaseGeometry | None] = [None] * k
    for cell in shapely.get_parts(diagram):
        inside = np.flatnonzero(shapely.contains_xy(cell, centers[:, 0], centers[:, 1]))
        if len(inside) == 1:
            cells[int(inside[0])] = cell
    if any(c is None for c in cells):  # coincident centres: should not happen, retry
        return _partition(parent, k, rng, samples_per_cell=samples_per_cell, iterations=iterations)
    pieces = [_polygonal(shapely.intersection(c, parent)) for c in cells]
    if any(p is None for p in pieces):
        return _partition(parent, k, rng, samples_per_cell=samples_per_cell, iterations=iterations)
    pieces = _absorb_fragments(pieces)
    return sorted(pieces, key=lambda p: (p.centroid.x, p.centroid.y))


def _rectangles(cx: np.ndarray, cy: np.ndarray, length: float, width: float, angle: float) -> np.ndarray:
    """Rotated rectangles centred on (cx, cy), as an array of polygons."""
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * [length / 2, width / 2]
    c, s = math.cos(angle), math.sin(angle)
    rotated = half @ np.array([[c, s], [-s, c]])
    coords = rotated[None, :, :] + np.column_stack([cx, cy])[:, None, :]
    return shapely.polygons(coords)


def _orientation(poly: BaseGeometry) -> float:
    """Angle (radians) of the long side of the polygon's minimum rotated rectangle."""
    rect = shapely.oriented_envelope(poly)
    xy = np.asarray(rect.exterior.coords) if isinstance(rect, Polygon) else np.zeros((3, 2))
    e1, e2 = xy[1] - xy[0], xy[2] - xy[1]
    edge = e1 if np.hypot(*e1) >= np.hypot(*e2) else e2
    return math.atan2(edge[1], edge[0])


class LocalMetric:
    """Metres east and north of a centre point, as an affine map of lon/lat (equirectangular).

    Affine on purpose: a straight edge in lon/lat stays straight in metres and back, so a point cut
    on a parent's edge in metres lands on that edge in lon/lat, and children nest in their parents
    exactly (a UTM round trip bends long edges by centimetres, square metres of overlap). Over a
    district the scale error is below 0.5 %, which is fine for drawing footprints.
    """

    R = 6_371_008.8

    def __init__(self, lon0: float, lat0: float, *, inverse: bool = False):
        self.lon0, self.lat0, self.inverse = lon0, lat0, inverse
        self.kx = self.R * math.cos(math.radians(lat0)) * math.pi / 180.0
        self.ky = self.R * math.pi / 180.0

    def transform(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.inverse:
            return x / self.kx + self.lon0, y / self.ky + self.lat0
        return (x - self.lon0) * self.kx, (y - self.lat0) * self.ky


def _reproject(geoms: Sequence[BaseGeometry | None], transformer: LocalMetric) -> list[BaseGeometry | None]:
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)

    def fn(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return list(shapely.transform(arr, fn))


# --- the generator -------------------------------------------------------------------------------

# (share, floors, units, flats per floor per unit, footprint width m, unit length m)
_BUILDING_TYPES = (
    (0.78, (6, 9), (1, 2), (2, 2), (10.0, 13.0), (12.0, 17.0)),  # 步梯楼 walk-up
    (0.17, (10, 18), (1, 2), (2, 3), (11.0, 15.0), (14.0, 19.0)),  # 小高层 mid-rise
    (0.05, (19, 33), (1, 2), (4, 4), (14.0, 18.0), (18.0, 20.0)),  # 高层 high-rise
)
_TYPE_P = np.array([t[0] for t in _BUILDING_TYPES])


@dataclass
class _Building:
    geom: Polygon
    area_index: int  # index into the grid's compounds, or -1 outside any compound
    floors: int
    units: int
    per_floor: int
    first_floor: int  # 2 when the ground floor is shops
    occupancy: float
    households: int = 0

    @property
    def flats(self) -> int:
        return (self.floors - self.first_floor + 1) * self.units * self.per_floor


@dataclass
class _GridCtx:
    id: int
    community: int  # index
    geom: BaseGeometry
    name: str
    compounds: list[int] = field(default_factory=list)  # compound ids
    buildings: list[int] = field(default_factory=list)  # building ids
    households: list[int] = field(default_factory=list)  # household ids


@dataclass
class _CommunityCtx:
    id: int
    subdistrict: int  # index
    geom: BaseGeometry
    name: str
    grids: list[int] = field(default_factory=list)  # grid indexes
    tier: str = "low"
    tier_since_days: int = 0
    medium_since_days: int = 0
    outbreak_grid: int | None = None  # grid index


class _Generator:
    def __init__(
        self,
        boundary: BaseGeometry,
        spec: DemoSpec,
        seed: int,
        *,
        district_code: str,
        district_name: str,
        district_name_en: str,
        now: datetime,
        shifts_per_day: int,
        staff_per_shift: int,
        subdistricts: Sequence[tuple[str, str]] | None = None,
    ):
        self.spec = spec
        self.subdistrict_labels = subdistricts
        self.now = now
        self.today = now.date()
        self.district_code = district_code
        self.district_name = district_name
        self.district_name_en = district_name_en
        self.shifts_per_day = shifts_per_day
        self.staff_per_shift = staff_per_shift
        # Separate streams, so that changing the people does not move the buildings.
        geo_seq, people_seq, service_seq = np.random.SeedSequence(seed).spawn(3)
        self.rng = np.random.default_rng(geo_seq)
        self.prng = np.random.default_rng(people_seq)
        self.srng = np.random.default_rng(service_seq)
        self.people = _People(self.prng, district_code[:6])
        self.boundary = shapely.force_2d(boundary)
        centre = self.boundary.centroid
        self.to_metric = LocalMetric(centre.x, centre.y)
        self.to_lonlat = LocalMetric(centre.x, centre.y, inverse=True)
        self.out = DemoDistrict()
        self.subdistricts: list[BaseGeometry] = []
        self.communities: list[_CommunityCtx] = []
        self.grids: list[_GridCtx] = []
        self.compound_buildings: dict[int, list[int]] = {}
        self.gates_of: dict[int, list[int]] = {}
        self.building_geoms: list[Polygon] = []
        self.household_categories: dict[int, list[str]] = {}
        self.used_compound_names: set[str] = set()
        self.compounds_in: dict[int, int] = {}  # compounds so far per community id

    def _add(self, table: str, **fields) -> int:
        rows = getattr(self.out, table)
        row_id = len(rows) + 1
        rows.append({"id": row_id, **fields})
        return row_id

    # -- the administrative tree --------------------------------------------------------------

    def build(self) -> DemoDistrict:
        metric = _polygonal(shapely.make_valid(_reproject([self.boundary], self.to_metric)[0]))
        if metric is None:
            raise InvalidInput("边界不是多边形 / the boundary is not a polygon", code="bad_boundary")
        min_area = self.spec.grids * 20_000.0
        if metric.area < min_area:
            raise InvalidInput(
                f"边界面积 {metric.area / 1e6:.2f} km² 太小，容纳不下 {self.spec.grids} 个网格 / "
                f"the boundary is too small for {self.spec.grids} grids",
                code="boundary_too_small",
            )
        district_id = self._add(
            "district",
            code=self.district_code,
            name=self.district_name,
            name_en=self.district_name_en,
            geom=_as_multi(metric),
        )
        self._subdistricts(district_id, metric)
        self._pick_elevated()
        for grid_index in range(len(self.grids)):
            self._fill_grid(grid_index)
        self.building_tree = shapely.STRtree(self.building_geoms)
        self._key_persons()
        self._staff()
        self._risk_assignments()
        self._checkpoints()
        self._service_points()
        self._finish()
        return self.out

    def _subdistricts(self, district_id: int, metric: BaseGeometry) -> None:
        spec = self.spec
        cells = _partition(metric, spec.subdistricts, self.rng)
        if self.subdistrict_labels is None:
            names = self._subdistrict_names(cells)
            order = sorted(range(len(cells)), key=lambda i: names[i][0])
            labels = [(f"{self.district_code}{seq:03d}", names[i][1]) for seq, i in enumerate(order, start=1)]
        else:  # given by the caller (a city cut into sub-districts), west to east
            order, labels = list(range(len(cells))), list(self.subdistrict_labels)
        used_communities: set[str] = set()
        for (sub_code, name), i in zip(labels, order, strict=True):
            sub_id = self._add(
                "subdistrict", district_id=district_id, code=sub_code, name=name, geom=_as_multi(cells[i])
            )
            self.subdistricts.append(cells[i])
            comm_cells = _partition(cells[i], spec.communities_per_subdistrict, self.rng)
            comm_names = self._community_names(name, len(comm_cells), used_communities)
            for cseq, (ccell, cname) in enumerate(zip(comm_cells, comm_names, strict=True), start=1):
                comm_code = f"{sub_code}{cseq:03d}"
                phone = (
                    f"023-0{int(self.rng.integers(0, 10**7)):07d}"  # 0 after the area code: not a real line
                )
                comm_id = self._add(
                    "community",
                    subdistrict_id=sub_id,
                    code=comm_code,
                    name=cname,
                    kind="community",
                    phone=phone,
                    geom=_as_multi(ccell),
                )
                comm = _CommunityCtx(
                    id=comm_id, subdistrict=len(self.subdistricts) - 1, geom=ccell, name=cname
                )
                self.communities.append(comm)
                for gseq, gcell in enumerate(_partition(ccell, spec.grids_per_community, self.rng), start=1):
                    gname = f"{cname}第{gseq}网格"
                    grid_id = self._add(
                        "grid",
                        community_id=comm_id,
                        code=f"G{comm_code}{gseq:02d}",
                        name=gname,
                        geom=_as_multi(gcell),
                    )
                    comm.grids.append(len(self.grids))
                    self.grids.append(
                        _GridCtx(id=grid_id, community=len(self.communities) - 1, geom=gcell, name=gname)
                    )

    def _subdistrict_names(self, cells: list[BaseGeometry]) -> list[tuple[int, str]]:
        """(rank, name) per cell: real names matched to cells by relative position, greedily."""
        anchors = np.array([(lon, lat) for _, lon, lat in _SUBDISTRICTS])
        centroids = np.array([(c.centroid.x, c.centroid.y) for c in cells])

        def relative(xy: np.ndarray) -> np.ndarray:
            lo, hi = xy.min(axis=0), xy.max(axis=0)
            return (xy - lo) / np.where(hi - lo > 0, hi - lo, 1.0)

        a, c = relative(anchors), relative(centroids)
        pairs = sorted(
            (float(np.hypot(*(c[i] - a[j]))), i, j) for i in range(len(cells)) for j in range(len(anchors))
        )
        named: dict[int, tuple[int, str]] = {}
        taken: set[int] = set()
        for _, i, j in pairs:
            if i not in named and j not in taken:
                named[i] = (j, _SUBDISTRICTS[j][0])
                taken.add(j)
        extra = len(_SUBDISTRICTS)
        for i in range(len(cells)):
            if i not in named:
                named[i] = (extra, f"第{extra + 1}街道")
                extra += 1
        return [named[i] for i in range(len(cells))]

    def _community_names(self, subdistrict: str, n: int, used: set[str]) -> list[str]:
        own = list(_COMMUNITY_NAMES.get(subdistrict, ()))
        self.rng.shuffle(own)
        pool = own + list(_EXTRA_COMMUNITY_NAMES)
        names = []
        for base in pool:
            if len(names) == n:
                break
            if base + "社区" not in used:
                names.append(base + "社区")
                used.add(base + "社区")
        k = 2
        while len(names) < n:
            candidate = f"{subdistrict.removesuffix('街道')}第{k}社区"
            if candidate not in used:
                names.append(candidate)
                used.add(candidate)
            k += 1
        return names

    def _pick_elevated(self) -> None:
        """Medium/high communities, each in a different sub-district while there are some left."""
        spec = self.spec
        by_sub: dict[int, list[int]] = {}
        for ci, comm in enumerate(self.communities):
            by_sub.setdefault(comm.subdistrict, []).append(ci)
        sub_order = [int(s) for s in self.rng.permutation(len(self.subdistricts))]
        chosen: list[int] = []
        while len(chosen) < spec.elevated_communities:
            for s in sub_order:
                free = [c for c in by_sub[s] if c not in chosen]
                if free and len(chosen) < spec.elevated_communities:
                    chosen.append(free[int(self.rng.integers(len(free)))])
        for rank, ci in enumerate(chosen):
            comm = self.communities[ci]
            if rank == 0:
                comm.tier = "high"
            elif rank == 1:
                comm.tier = "medium"
            else:
                comm.tier = "high" if self.rng.random() < 0.4 else "medium"
            comm.tier_since_days = int(self.rng.integers(4, 11))
            comm.medium_since_days = comm.tier_since_days + int(self.rng.integers(3, 7))
            if comm.tier == "high":
                comm.outbreak_grid = comm.grids[int(self.rng.integers(len(comm.grids)))]

    # -- compounds, buildings, households -----------------------------------------------------

    def _compound_name(self) -> str:
        for _ in range(50):
            name = (
                _COMPOUND_PREFIXES[int(self.rng.integers(len(_COMPOUND_PREFIXES)))]
                + _COMPOUND_SUFFIXES[int(self.rng.integers(len(_COMPOUND_SUFFIXES)))]
            )
            if name not in self.used_compound_names:
                break
        k = 2
        base = name
        while name in self.used_compound_names:
            name = f"{base}{k}期"
            k += 1
        self.used_compound_names.add(name)
        return name

    def _compound_shapes(self, grid: BaseGeometry) -> list[Polygon]:
        rng = self.rng
        n = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        cells = _partition(grid, n, rng, samples_per_cell=120, iterations=12)
        shapes = []
        for cell in cells:
            setback = float(rng.uniform(4.0, 8.0))
            core = shapely.buffer(cell, -setback, join_style="mitre")
            scale = float(rng.uniform(0.65, 0.85))
            origin = cell.centroid if cell.contains(cell.centroid) else cell.point_on_surface()
            shaped = _largest_polygon(
                shapely.intersection(core, affinity.scale(cell, scale, scale, origin=origin))
            )
            if shaped is None or shaped.area < 2 * _COMPOUND_MIN_AREA_M2:
                shaped = _largest_polygon(core)
            if shaped is None or shaped.area < _COMPOUND_MIN_AREA_M2:
                continue
            shaped = shaped.simplify(0.5)  # sheds buffer noise; stays metres inside the cell
            if shaped.is_valid and isinstance(shaped, Polygon):
                shapes.append(shaped)
        if not shapes:
            fallback = _largest_polygon(shapely.buffer(grid, -4.0, join_style="mitre"))
            if fallback is None:
                raise InvalidInput(
                    "网格太小，放不下小区 / a grid is too small for a compound", code="grid_too_small"
                )
            shapes.append(fallback)
        return shapes

    def _place(
        self, area: BaseGeometry, length: float, width: float, angle: float, placed: list[Polygon]
    ) -> Polygon | None:
        """A rectangle inside ``area``, at least the building gap from every placed building."""
        minx, miny, maxx, maxy = area.bounds
        others = np.empty(len(placed), dtype=object)
        others[:] = placed
        for _ in range(6):
            x = self.rng.uniform(minx, maxx, 48)
            y = self.rng.uniform(miny, maxy, 48)
            ok = shapely.contains_xy(area, x, y)
            if not ok.any():
                continue
            rects = _rectangles(x[ok], y[ok], length, width, angle)
            for rect in rects[shapely.contains(area, rects)]:
                if not len(others) or not shapely.dwithin(others, rect, _BUILDING_GAP_M).any():
                    return rect
        return None

    def _fill_grid(self, gi: int) -> None:
        rng, spec, grid = self.rng, self.spec, self.grids[gi]
        comm = self.communities[grid.community]
        middle = (spec.households_min + spec.households_max) / 2
        target = round(float(rng.triangular(spec.households_min, middle, spec.households_max)))
        target = min(max(target, spec.households_min), spec.households_max)

        shapes = self._compound_shapes(grid.geom)
        compound_ids = []
        for shape in shapes:
            name = self._compound_name()
            self.compounds_in[comm.id] = self.compounds_in.get(comm.id, 0) + 1
            code = f"C{self.out.community[comm.id - 1]['code']}{self.compounds_in[comm.id]:03d}"
            cid = self._add("compound", community_id=comm.id, code=code, name=name, geom=shape)
            grid.compounds.append(cid)
            compound_ids.append(cid)
            self.compound_buildings[cid] = []
            self._gates(cid, shape)

        # Where buildings may stand: inside a compound, or on the street outside all of them.
        areas: list[BaseGeometry] = []
        angles: list[float] = []
        for shape in shapes:
            inner = shape.buffer(-_BUILDING_GAP_M, join_style="mitre")
            shapely.prepare(inner)
            areas.append(inner)
            angles.append(_orientation(shape))
        weights = np.array([a.area for a in areas])
        loose = _polygonal(
            shapely.difference(
                shapely.buffer(grid.geom, -_BUILDING_GAP_M, join_style="mitre"),
                shapely.union_all([s.buffer(_BUILDING_GAP_M, join_style="mitre") for s in shapes]),
            )
        )
        if loose is not None:
            shapely.prepare(loose)
        loose_angle = float(rng.uniform(0, math.pi))

        buildings: list[_Building] = []
        placed: list[Polygon] = []
        expected = 0
        failures = 0
        while expected < target and failures < 12 and len(buildings) < 80:
            t = _BUILDING_TYPES[int(rng.choice(len(_BUILDING_TYPES), p=_TYPE_P))]
            _, floors_r, units_r, flats_r, width_r, unit_len_r = t
            units = int(rng.integers(units_r[0], units_r[1] + 1))
            length = float(np.clip(units * rng.uniform(*unit_len_r), 12.0, 40.0))
            width = float(rng.uniform(*width_r))
            if failures >= 6:  # crowded: try the smallest footprint
                units, length, width = 1, 12.0, 10.0
            outside = loose is not None and loose.area > 2000 and rng.random() < spec.loose_building_share
            if outside:
                area_index, area, base = -1, loose, loose_angle
            else:
                area_index = int(rng.choice(len(areas), p=weights / weights.sum()))
                area, base = areas[area_index], angles[area_index]
            angle = base + (math.pi / 2 if rng.random() < 0.2 else 0.0) + float(rng.normal(0, 0.03))
            rect = self._place(area, length, width, angle, placed)
            if rect is None:
                failures += 1
                continue
            failures = 0
            floors = int(rng.integers(floors_r[0], floors_r[1] + 1))
            b = _Building(
                geom=rect,
                area_index=area_index,
                floors=floors,
                units=units,
                per_floor=int(rng.integers(flats_r[0], flats_r[1] + 1)),
                first_floor=2 if rng.random() < 0.3 else 1,
                occupancy=float(rng.uniform(0.5, 0.85)),
            )
            buildings.append(b)
            placed.append(rect)
            expected += max(1, round(b.flats * b.occupancy))
        if not buildings:
            raise InvalidInput(
                "网格太小，放不下楼栋 / a grid is too small for buildings", code="grid_too_small"
            )
        self._allocate(buildings, target)

        # Number buildings per compound from the north-west, the way a plan is read.
        buildings.sort(
            key=lambda b: (b.area_index < 0, b.area_index, -round(b.geom.centroid.y / 20), b.geom.centroid.x)
        )
        numbers: dict[int, int] = {}
        for b in buildings:
            numbers[b.area_index] = numbers.get(b.area_index, 0) + 1
            compound_id = compound_ids[b.area_index] if b.area_index >= 0 else None
            name = f"{numbers[b.area_index]}栋" if compound_id else f"临街{numbers[b.area_index]}栋"
            bid = self._add(
                "building",
                grid_id=grid.id,
                compound_id=compound_id,
                code=building_code(len(self.out.building) + 1),
                name=name,
                floors=b.floors,
                geom=b.geom,
            )
            grid.buildings.append(bid)
            self.building_geoms.append(b.geom)
            if compound_id:
                self.compound_buildings[compound_id].append(bid)
            self._households(gi, bid, b)

    def _allocate(self, buildings: list[_Building], target: int) -> None:
        """Spread exactly ``target`` households over the buildings, none above its flats."""
        rng = self.rng
        i = 0
        while sum(b.flats for b in buildings) < target:  # a crowded grid: build its blocks taller
            b = buildings[i % len(buildings)]
            b.floors = min(33, b.floors + 6)
            if b.floors == 33:
                b.per_floor, b.units, b.first_floor = 4, min(4, b.units + 1), 1
            i += 1
        flats = np.array([b.flats for b in buildings])
        alloc = np.minimum(flats, np.maximum(1, np.round(flats * [b.occupancy for b in buildings]))).astype(
            int
        )
        diff = target - int(alloc.sum())
        while diff:
            room = (flats - alloc) if diff > 0 else (alloc - 1)
            if room.sum() == 0:
                break
            step = rng.multinomial(abs(diff), room / room.sum())
            step = np.minimum(step, room)
            alloc += step if diff > 0 else -step
            diff = target - int(alloc.sum())
        for b, n in zip(buildings, alloc, strict=True):
            b.households = int(n)

    def _households(self, gi: int, bid: int, b: _Building) -> None:
        prng, grid = self.prng, self.grids[gi]
        rooms = np.sort(self.rng.choice(b.flats, size=b.households, replace=False))
        per_unit = (b.floors - b.first_floor + 1) * b.per_floor
        residents = prng.choice([1, 2, 3, 4, 5], size=b.households, p=[0.2, 0.3, 0.28, 0.14, 0.08])
        names = self.people.names(self.people.genders(b.households))
        phones = self.people.phones(b.households, "170")
        point = b.geom.centroid
        for k, flat in enumerate(rooms):
            unit, rest = divmod(int(flat), per_unit)
            floor, door = divmod(rest, b.per_floor)
            hid = self._add(
                "household",
                building_id=bid,
                unit=f"{unit + 1}单元",
                room=f"{floor + b.first_floor}{door + 1:02d}",
                residents=int(residents[k]),
                head_name=names[k],
                phone=phones[k],
                geom=point,
            )
            grid.households.append(hid)

    def _gates(self, compound_id: int, shape: Polygon) -> None:
        rng = self.rng
        n = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        start = float(rng.random())
        ring = shape.exterior
        self.gates_of[compound_id] = []
        for k in range(n):
            frac = (start + k / n + float(rng.uniform(-0.05, 0.05))) % 1.0
            kind = "both" if k == 0 else str(rng.choice(["pedestrian", "vehicle", "both"], p=[0.5, 0.2, 0.3]))
            gid = self._add(
                "gate",
                compound_id=compound_id,
                name=f"{k + 1}号门",
                kind=kind,
                is_open=True,
                geom=ring.interpolate(frac, normalized=True),
            )
            self.gates_of[compound_id].append(gid)

    # -- key persons --------------------------------------------------------------------------

    def _key_persons(self) -> None:
        spec, prng = self.spec, self.prng
        households = self.out.household
        for comm in self.communities:
            hh_ids = [h for gi in comm.grids for h in self.grids[gi].households]
            alone: set[int] = set()
            for code, base_rate in spec.key_person_rates:
                rate = (
                    spec.home_isolation_rate_elevated
                    if code == "home_isolation" and comm.tier != "low"
                    else base_rate
                )
                n = int(prng.binomial(len(hh_ids), rate)) if rate > 0 else 0
                if not n:
                    continue
                pool = [
                    h
                    for h in hh_ids
                    if h not in alone and (code not in _NEEDS_COMPANY or households[h - 1]["residents"] >= 2)
                ]
                picks = np.sort(prng.choice(len(pool), size=min(n, len(pool)), replace=False))
                for p in picks:
                    hid = pool[int(p)]
                    if code == "elderly_alone":
                        alone.add(hid)
                        households[hid - 1]["residents"] = 1
                    self._key_person(hid, code, comm)
            if comm.tier != "low":
                lo, hi = spec.positives_high if comm.tier == "high" else spec.positives_medium
                n = int(prng.integers(lo, hi + 1))
                if comm.outbreak_grid is not None:
                    # Cases cluster: one or two buildings of the outbreak grid.
                    blds = self.grids[comm.outbreak_grid].buildings
                    hot = {
                        blds[int(i)] for i in prng.choice(len(blds), size=min(2, len(blds)), replace=False)
                    }
                    pool = [
                        h
                        for h in self.grids[comm.outbreak_grid].households
                        if households[h - 1]["building_id"] in hot and h not in alone
                    ]
                else:
                    pool = [h for h in hh_ids if h not in alone]
                for p in np.sort(prng.choice(len(pool), size=min(n, len(pool)), replace=False)):
                    self._key_person(pool[int(p)], "positive", comm)

    def _key_person(self, hid: int, primary: str, comm: _CommunityCtx) -> None:
        prng, household = self.prng, self.out.household[hid - 1]
        categories = [primary]
        for extra, p in _SECONDARY.get(primary, ()):
            if prng.random() < p and extra not in categories:
                categories.append(extra)
        lo, hi = _AGES[primary]
        age = int(prng.integers(lo, hi + 1))
        if primary == "pregnant":
            gender = "F"
        elif primary == "elderly_alone":
            gender = "F" if prng.random() < 0.62 else "M"
        else:
            gender = "F" if prng.random() < 0.5 else "M"
        if primary == "elderly_alone":  # lives alone, so heads the household: one name for both
            name = self.people.name(gender, household["head_name"][0])
            household["head_name"], phone = name, household["phone"]
        else:
            surname = household["head_name"][0] if prng.random() < 0.7 else None
            name = self.people.name(gender, surname)
            phone = None if age < 14 else self.people.phones(1, "170")[0]
        observation_start = None
        if _OBSERVED.intersection(categories):
            window = min(14, comm.tier_since_days + 1) if "positive" in categories else 14
            observation_start = self.today - timedelta(days=int(prng.integers(0, window)))
        birth_year = self.today.year - age
        kid = self._add(
            "key_person",
            household_id=hid,
            name=name,
            gender=gender,
            birth_year=birth_year,
            phone=phone,
            id_number=self.people.id_number(birth_year, gender, self.today),
            note=next((_NOTES[c] for c in categories if c in _NOTES), None),
            observation_start=observation_start,
            version=1,
            geom=household["geom"],
        )
        for code in categories:
            self.out.key_person_category_link.append({"key_person_id": kid, "category_code": code})
        self.household_categories.setdefault(hid, []).extend(categories)

    # -- staff ----------------------------------------------------------------------------------

    def _new_staff(
        self, comm: _CommunityCtx, role: str, geom: Point | None, skills: str | None = None
    ) -> int:
        assert role in STAFF_ROLES, role
        gender = "F" if self.prng.random() < 0.5 else "M"
        return self._add(
            "staff",
            community_id=comm.id,
            name=self.people.name(gender),
            role=role,
            phone=self.people.phones(1, "171")[0],
            skills=skills,
            active=True,
            geom=geom,
        )

    def _assign(
        self,
        staff_id: int,
        *,
        grid_id: int | None = None,
        building_id: int | None = None,
        household_id: int | None = None,
    ) -> None:
        self._add(
            "staff_assignment",
            staff_id=staff_id,
            grid_id=grid_id,
            building_id=building_id,
            household_id=household_id,
        )

    def _building_point(self, building_ids: list[int]) -> Point:
        return self.building_geoms[building_ids[int(self.prng.integers(len(building_ids)))] - 1].centroid

    def _staff(self) -> None:
        prng = self.prng
        volunteer_skills = ("医疗护理", "心理疏导", "应急救援", "驾驶", "外语")
        for comm in self.communities:
            grids = [self.grids[gi] for gi in comm.grids]
            comm_buildings = [b for g in grids for b in g.buildings]
            office = self._building_point(comm_buildings)
            elevated = comm.tier != "low"
            hh_ids = [h for g in grids for h in g.households]

            workers = [
                self._new_staff(comm, "community_worker", office) for _ in range(int(prng.integers(4, 7)))
            ]
            for k, g in enumerate(grids):  # every grid has a community worker; workers share them out
                self._assign(workers[k % len(workers)], grid_id=g.id)
            for k in range(len(grids), len(workers)):
                self._assign(workers[k], grid_id=grids[k % len(grids)].id)

            care = [
                h
                for h in hh_ids
                if {"pregnant", "disabled_no_selfcare", "home_treatment", "positive"}
                & set(self.household_categories.get(h, ()))
            ]
            medics = [
                self._new_staff(comm, "medical", office, "医疗护理") for _ in range(int(prng.integers(1, 3)))
            ]
            for k, h in enumerate(care):
                self._assign(medics[k % len(medics)], household_id=h)

            police = self._new_staff(comm, "police", None)
            for g in grids:
                self._assign(police, grid_id=g.id)

            vulnerable = [h for h in hh_ids if _VULNERABLE & set(self.household_categories.get(h, ()))]
            social = self._new_staff(comm, "social_worker", office, "心理疏导")
            for h in vulnerable:
                self._assign(social, household_id=h)

            if elevated:
                cadres = [self._new_staff(comm, "sunk_cadre", None) for _ in range(int(prng.integers(2, 5)))]
                for k, cadre in enumerate(cadres):
                    self._assign(cadre, grid_id=grids[k % len(grids)].id)

            for g in grids:
                leader = self._new_staff(comm, "grid_leader", self._building_point(g.buildings))
                self._assign(leader, grid_id=g.id)
                self._building_leaders(comm, g)
                self._volunteers(comm, g, volunteer_skills)
                for cid in g.compounds:
                    if prng.random() < 0.5 and self.compound_buildings[cid]:
                        gate = self.out.gate[self.gates_of[cid][0] - 1]["geom"]
                        keeper = self._new_staff(comm, "property", gate)
                        for bid in self.compound_buildings[cid]:
                            self._assign(keeper, building_id=bid)

    def _building_leaders(self, comm: _CommunityCtx, g: _GridCtx) -> None:
        order = [g.buildings[int(i)] for i in self.prng.permutation(len(g.buildings))]
        k = 0
        while k < len(order):
            size = int(self.prng.integers(1, 4))
            group = order[k : k + size]
            leader = self._new_staff(comm, "building_leader", self.building_geoms[group[0] - 1].centroid)
            for bid in group:
                self._assign(leader, building_id=bid)
            k += size

    def _volunteers(self, comm: _CommunityCtx, g: _GridCtx, skills: tuple[str, ...]) -> None:
        """包片联户: each volunteer links to 10–30 households, the vulnerable ones first."""
        prng = self.prng
        n = int(prng.integers(5, 9)) if comm.tier != "low" else int(prng.integers(2, 6))

        def rank(h: int) -> int:
            cats = set(self.household_categories.get(h, ()))
            return 0 if cats & _VULNERABLE else (1 if cats else 2)

        shuffled = [g.households[int(i)] for i in prng.permutation(len(g.households))]
        pool = sorted(shuffled, key=rank)
        k = 0
        for _ in range(n):
            chosen = [s for s in skills if prng.random() < 0.15]
            volunteer = self._new_staff(
                comm, "volunteer", self._building_point(g.buildings), "、".join(chosen) or None
            )
            take = int(prng.integers(10, 31))
            for h in pool[k : k + take]:
                self._assign(volunteer, household_id=h)
            k += take

    # -- risk, checkpoints, services ------------------------------------------------------------

    def _risk(
        self,
        code: str,
        scheme: str,
        *,
        community_id: int | None = None,
        grid_id: int | None = None,
        since: int,
        until: int | None,
        reason: str,
    ) -> None:
        assert (scheme, code) in _RISK_CODES, (scheme, code)
        self._add(
            "risk_assignment",
            risk_class_code=code,
            risk_scheme=scheme,
            community_id=community_id,
            grid_id=grid_id,
            valid_from=self.now - timedelta(days=since),
            valid_to=None if until is None else self.now - timedelta(days=until),
            reason=reason,
            author=f"{self.district_name}疫情防控指挥部",
        )

    def _risk_assignments(self) -> None:
        start = self.spec.risk_history_days
        for comm in self.communities:
            if comm.tier == "low":
                self._risk(
                    "low",
                    "tier",
                    community_id=comm.id,
                    since=start,
                    until=None,
                    reason="常态化防控，辖区未发现病例",
                )
                continue
            first_change = comm.medium_since_days if comm.tier == "high" else comm.tier_since_days
            self._risk(
                "low",
                "tier",
                community_id=comm.id,
                since=start,
                until=first_change,
                reason="常态化防控，辖区未发现病例",
            )
            if comm.tier == "high":
                self._risk(
                    "medium",
                    "tier",
                    community_id=comm.id,
                    since=comm.medium_since_days,
                    until=comm.tier_since_days,
                    reason="辖区出现本土确诊病例",
                )
                self._risk(
                    "high",
                    "tier",
                    community_id=comm.id,
                    since=comm.tier_since_days,
                    until=None,
                    reason="病例持续增加，出现社区传播",
                )
                sealed = self.grids[comm.outbreak_grid]
                self._risk(
                    "sealed",
                    "area",
                    grid_id=sealed.id,
                    since=comm.tier_since_days,
                    until=None,
                    reason=f"{sealed.name}出现阳性感染者，划为封控区",
                )
                others = [self.grids[gi] for gi in comm.grids if gi != comm.outbreak_grid]
                if others:
                    nearest = min(others, key=lambda g: g.geom.distance(sealed.geom))
                    self._risk(
                        "controlled",
                        "area",
                        grid_id=nearest.id,
                        since=comm.tier_since_days,
                        until=None,
                        reason=f"与{sealed.name}相邻，划为管控区",
                    )
            else:
                self._risk(
                    "medium",
                    "tier",
                    community_id=comm.id,
                    since=comm.tier_since_days,
                    until=None,
                    reason="辖区出现本土确诊病例",
                )

    def _checkpoints(self) -> None:
        for comm in self.communities:
            for gi in comm.grids:
                for cid in self.grids[gi].compounds:
                    compound = self.out.compound[cid - 1]
                    for gid in self.gates_of[cid]:
                        if comm.tier != "low" or self.srng.random() < self.spec.checkpoint_share_low:
                            gate = self.out.gate[gid - 1]
                            self._add(
                                "checkpoint",
                                gate_id=gid,
                                name=f"{compound['name']}{gate['name']}卡点",
                                shifts_per_day=self.shifts_per_day,
                                staff_per_shift=self.staff_per_shift,
                                active=True,
                                geom=gate["geom"],
                            )

    def _is_free(self, geom: BaseGeometry, clearance: float) -> bool:
        return not len(self.building_tree.query(geom, predicate="dwithin", distance=clearance))

    def _free_point(self, area: BaseGeometry, near: Point | None = None, clearance: float = 3.0) -> Point:
        """A point of ``area`` clear of buildings, near ``near`` (within 60 m) when one is given."""
        srng = self.srng
        for _ in range(300):
            if near is not None:
                r, a = srng.uniform(4.0, 60.0), srng.uniform(0, 2 * math.pi)
                p = Point(near.x + r * math.cos(a), near.y + r * math.sin(a))
            else:
                p = Point(*_sample_points(area, 1, srng)[0])
            if area.contains(p) and self._is_free(p, clearance):
                return p
        return area.point_on_surface()

    def _delivery_zone(self, comm: _CommunityCtx, gates: list[Point]) -> Polygon:
        """A ~20 x 30 m drop zone by a compound gate, inside the community, clear of buildings."""
        srng = self.srng
        for size in ((30.0, 20.0), (20.0, 14.0)):
            for gate in [*gates, None]:
                for _ in range(60):
                    if gate is not None:
                        r, a = srng.uniform(size[0] / 2 + 2, 50.0), srng.uniform(0, 2 * math.pi)
                        cx, cy = gate.x + r * math.cos(a), gate.y + r * math.sin(a)
                    else:
                        cx, cy = _sample_points(comm.geom, 1, srng)[0]
                    rect = _rectangles(
                        np.array([cx]), np.array([cy]), *size, float(srng.uniform(0, math.pi))
                    )[0]
                    if comm.geom.contains(rect) and self._is_free(rect, 2.0):
                        return rect
        raise InvalidInput("社区内找不到快递集中配送区位置 / no room for a delivery zone", code="no_room")

    def _service(
        self,
        kind: str,
        comm: _CommunityCtx,
        name: str,
        capacity: tuple[int, int],
        hours: str,
        geom: BaseGeometry,
    ) -> int:
        assert kind in SERVICE_POINT_KINDS, kind
        step = 10 if capacity[1] - capacity[0] >= 100 else 1
        cap = int(self.srng.integers(capacity[0] // step, capacity[1] // step + 1)) * step
        return self._add(
            "service_point", community_id=comm.id, kind=kind, name=name, capacity=cap, hours=hours, geom=geom
        )

    def _service_points(self) -> None:
        srng = self.srng
        for comm in self.communities:
            gates = [
                self.out.gate[gid - 1]["geom"]
                for gi in comm.grids
                for cid in self.grids[gi].compounds
                for gid in self.gates_of[cid]
            ]
            gates = [gates[int(i)] for i in srng.permutation(len(gates))]
            short = comm.name.removesuffix("社区")
            self._service(
                "supply_point",
                comm,
                f"{short}生活物资集中配送点",
                (800, 2000),
                "08:00-20:00",
                self._free_point(comm.geom, gates[0] if gates else None),
            )
            station = self._free_point(comm.geom)
            self._service(
                "health_station", comm, f"{short}社区卫生服务站", (100, 300), "08:00-17:30", station
            )
            if srng.random() < 0.5:
                self._service(
                    "elderly_green_channel",
                    comm,
                    f"{short}社区卫生服务站老年人绿色通道",
                    (50, 150),
                    "08:00-17:30",
                    station,
                )
            self._service(
                "delivery_zone",
                comm,
                f"{short}快递(外卖)集中配送区",
                (500, 1500),
                "07:00-22:00",
                self._delivery_zone(comm, gates[:3]),
            )
            for k in range(0, len(comm.grids), 2):
                grid = self.grids[comm.grids[k]]
                self._service(
                    "testing_point",
                    comm,
                    f"{short}便民核酸检测点{k // 2 + 1}号",
                    (1500, 4000),
                    "07:00-21:00",
                    self._free_point(grid.geom),
                )
        for si in range(len(self.subdistricts)):
            comms = [c for c in self.communities if c.subdistrict == si]
            comm = comms[int(srng.integers(len(comms)))]
            sub_name = self.out.subdistrict[si]["name"]
            self._service(
                "vaccination_point",
                comm,
                f"{sub_name}临时接种点",
                (300, 800),
                "08:30-17:00",
                self._free_point(comm.geom),
            )
        n = min(len(self.communities), int(srng.integers(2, 4)))
        for k, ci in enumerate(
            sorted(int(i) for i in srng.choice(len(self.communities), size=n, replace=False))
        ):
            comm = self.communities[ci]
            self._service(
                "vaccination_vehicle",
                comm,
                f"{self.district_name}流动接种车{k + 1}号",
                (150, 300),
                "09:00-16:00",
                self._free_point(comm.geom),
            )

    # -- back to lon/lat ---------------------------------------------------------------------------

    def _finish(self) -> None:
        multi = {"district", "subdistrict", "community", "grid"}
        for table in (
            "district",
            "subdistrict",
            "community",
            "grid",
            "compound",
            "gate",
            "building",
            "household",
            "key_person",
            "staff",
            "checkpoint",
            "service_point",
        ):
            rows = getattr(self.out, table)
            geoms = _reproject([r["geom"] for r in rows], self.to_lonlat)
            for row, geom in zip(rows, geoms, strict=True):
                if geom is not None and not geom.is_valid:  # never seen; guards the type contract anyway
                    geom = (
                        _largest_polygon(shapely.make_valid(geom))
                        if table not in multi
                        else _polygonal(shapely.make_valid(geom))
                    )
                row["geom"] = _as_multi(geom) if table in multi else geom
        if self.out.district:
            # The district keeps the boundary it was given, not a round trip through the metric CRS.
            given = _polygonal(shapely.make_valid(self.boundary))
            if given is not None:
                self.out.district[0]["geom"] = _as_multi(given)


def generate_district(
    boundary: BaseGeometry,
    spec: DemoSpec,
    seed: int = 1,
    *,
    district_code: str = "500103",
    district_name: str = "渝中区",
    district_name_en: str = "Yuzhong District",
    now: datetime,
    checkpoint_shifts_per_day: int = 3,
    checkpoint_staff_per_shift: int = 2,
    subdistricts: Sequence[tuple[str, str]] | None = None,
) -> DemoDistrict:
    """A synthetic district inside ``boundary`` (a (multi)polygon in EPSG:4326, lon/lat).

    Deterministic: the same boundary, spec, seed and ``now`` give equal rows. ``now`` anchors the
    risk history and the observation dates. Raises :class:`InvalidInput` when the boundary is not
    a polygon or is too small for the spec.

    ``subdistricts`` gives the (code, name) of each sub-district, west to east, instead of the
    Yuzhong names matched by position and codes numbered from the district's (gridmap.domain.city
    names the sub-districts of a whole city this way).
    """
    if subdistricts is not None and len(subdistricts) != spec.subdistricts:
        raise ValueError("subdistricts must give one (code, name) per sub-district of the spec")
    if not isinstance(boundary, Polygon | MultiPolygon) or boundary.is_empty:
        raise InvalidInput(
            "边界必须是多边形 / the boundary must be a polygon or multipolygon", code="bad_boundary"
        )
    if checkpoint_shifts_per_day < 1 or checkpoint_staff_per_shift < 1:
        raise ValueError("checkpoint shifts and staff per shift must be positive")
    return _Generator(
        boundary,
        spec,
        seed,
        district_code=district_code,
        district_name=district_name,
        district_name_en=district_name_en,
        now=now,
        shifts_per_day=checkpoint_shifts_per_day,
        staff_per_shift=checkpoint_staff_per_shift,
        subdistricts=subdistricts,
    ).build()


__all__ = [
    "DEFAULT_KEY_PERSON_RATES",
    "TABLES",
    "DemoDistrict",
    "DemoSpec",
    "building_code",
    "generate_district",
    "id_check_digit",
]
