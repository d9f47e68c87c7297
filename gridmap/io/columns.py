"""Column names as users write them: English names of the database columns and their Chinese aliases.

One table serves both directions: an import matches a file's headers (``楼栋编码`` or
``building_code``) to the canonical column, and an Excel export labels its columns in Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from gridmap.domain.errors import GridmapError

# canonical column → accepted aliases (the first is the label an Excel export writes).
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("ID", "编号"),
    "code": ("编码", "代码"),
    "name": ("名称", "姓名", "名字"),
    "name_en": ("英文名称",),
    "kind": ("类型", "种类"),
    "phone": ("电话", "联系电话", "手机", "手机号"),
    "district_code": ("区县编码", "区编码"),
    "subdistrict_code": ("街道编码", "乡镇编码", "街镇编码"),
    "community_code": ("社区编码", "村编码", "社区(村)编码"),
    "grid_code": ("网格编码",),
    "compound_code": ("小区编码",),
    "building_code": ("楼栋编码", "楼栋代码"),
    "gate_id": ("出入口ID", "出入口编号"),
    "district_id": ("区县ID",),
    "subdistrict_id": ("街道ID",),
    "community_id": ("社区ID",),
    "grid_id": ("网格ID",),
    "compound_id": ("小区ID",),
    "building_id": ("楼栋ID",),
    "household_id": ("户ID",),
    "staff_id": ("人员ID",),
    "risk_class_id": ("风险等级ID",),
    "key_person_id": ("重点人员ID",),
    "category_id": ("类别ID",),
    "floors": ("层数", "楼层数"),
    "households": ("户数",),
    "residents": ("人数", "居住人数", "常住人数"),
    "unit": ("单元", "单元号"),
    "room": ("房号", "门牌号", "房间号"),
    "head_name": ("户主姓名", "户主"),
    "gender": ("性别",),
    "birth_year": ("出生年份", "出生年"),
    "id_number": ("身份证号", "身份证号码", "证件号码"),
    "categories": ("类别", "人员类别", "重点人群类别"),
    "note": ("备注",),
    "observation_start": ("观察开始日期", "隔离开始日期"),
    "version": ("版本",),
    "role": ("角色", "岗位"),
    "skills": ("技能", "专长"),
    "active": ("在岗", "启用", "有效"),
    "is_open": ("是否开放", "开放"),
    "shifts_per_day": ("每日班次", "班次"),
    "staff_per_shift": ("每班人数",),
    "capacity": ("服务能力", "容量"),
    "hours": ("开放时间", "服务时间"),
    "vulnerable": ("脆弱人群",),
    "is_case": ("病例",),
    "sort_order": ("排序",),
    "name_zh": ("中文名称",),
    "scheme": ("方案",),
    "color": ("颜色",),
    "severity": ("严重程度",),
    "measures_zh": ("措施",),
    "measures_en": ("措施(英文)",),
    "valid_from": ("生效时间",),
    "valid_to": ("失效时间",),
    "reason": ("原因",),
    "author": ("操作人",),
    "area_key": ("区域编号",),
    "created_at": ("创建时间",),
    "planned_end": ("计划结束时间",),
    "ended_at": ("结束时间",),
    "end_reason": ("结束原因",),
    "impact": ("影响",),
    "lon": ("经度", "longitude", "lng", "x"),
    "lat": ("纬度", "latitude", "y"),
    "geom_wkt": ("几何", "wkt", "geometry"),
}

# Where the same column means a person, its label says so.
_PERSON_TABLES = frozenset({"key_person", "staff"})
# Kept as they are in an export: the WKT column is read by GIS tools under this name.
_UNLABELLED = frozenset({"geom_wkt"})


def normalize_header(header: object) -> str:
    """A header as compared: no surrounding blanks or BOM, full-width brackets made ASCII,
    a trailing required-marker ``*`` dropped, case folded."""
    text = str(header if header is not None else "").replace("\ufeff", "").strip()
    text = text.replace("（", "(").replace("）", ")").rstrip("*＊ ").strip()
    return re.sub(r"\s+", " ", text).casefold()


def _lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, aliases in ALIASES.items():
        table[normalize_header(canonical)] = canonical
        for alias in aliases:
            table.setdefault(normalize_header(alias), canonical)
    return table


_LOOKUP = _lookup()


def canonical_name(header: object) -> str | None:
    """The canonical column a header stands for, or None when it is not one we know."""
    return _LOOKUP.get(normalize_header(header))


def label(column: str, table: str | None = None) -> str:
    """The Chinese label of a column for an export; the column name itself when there is none."""
    if column == "name" and table in _PERSON_TABLES:
        return "姓名"
    if column in _UNLABELLED:
        return column
    aliases = ALIASES.get(column)
    return aliases[0] if aliases else column


def describe(column: str) -> str:
    """``楼栋编码 (building_code)``: how a message names a column."""
    aliases = ALIASES.get(column)
    return f"{aliases[0]} ({column})" if aliases else column


class MissingColumn(GridmapError):
    code = "missing_column"


class DuplicateColumn(GridmapError):
    code = "duplicate_column"


# A Shapefile's DBF cuts field names to 10 characters: community_code arrives as community_.
_DBF_NAME_LENGTH = 10


def _untruncated(header: str, wanted: Iterable[str]) -> str | None:
    name = normalize_header(header)
    if len(name) != _DBF_NAME_LENGTH:
        return None
    matches = [w for w in wanted if len(w) > _DBF_NAME_LENGTH and w[:_DBF_NAME_LENGTH] == name]
    return matches[0] if len(matches) == 1 else None


def resolve_columns(
    headers: Iterable[str],
    wanted: Iterable[str],
    required: Iterable[str],
    fallbacks: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map each wanted canonical column to the file's header for it.

    ``fallbacks`` lets a column be found under another name when its own is absent: in a file of
    buildings, 楼栋编码 (building_code) is the building's own code.
    Raises :class:`MissingColumn` naming the first required column that is absent and listing
    the columns found, and :class:`DuplicateColumn` when two headers mean the same column.
    """
    headers = [h for h in headers if str(h).strip()]
    wanted = set(wanted) | set(required)
    fallbacks = dict(fallbacks or {})
    present = {canonical_name(h) for h in headers}
    rename = {alt: own for own, alt in fallbacks.items() if own not in present and alt in present}
    found: dict[str, str] = {}
    for header in headers:
        canonical = canonical_name(header)
        canonical = rename.get(canonical, canonical)
        if canonical is None or canonical not in wanted:
            canonical = _untruncated(header, wanted)
        if canonical is None:
            continue
        if canonical in found:
            raise DuplicateColumn(
                f"列重复 / duplicate column: {found[canonical]!r} 与 / and {header!r} "
                f"都表示 / both mean {describe(canonical)}"
            )
        found[canonical] = header
    for column in required:
        if column not in found:
            listed = ", ".join(map(str, headers)) or "(无 / none)"
            raise MissingColumn(
                f"缺少列 / missing column {describe(column)}; 文件中的列 / columns found: {listed}"
            )
    return found


def header_for(found: Mapping[str, str], column: str) -> str:
    """The user's own header for a column when the file has one, else the canonical name."""
    return found.get(column, column)
