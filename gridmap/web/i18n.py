"""Interface strings in Chinese (the default) and English.

The language a user picked is kept in the browser (``dcc.Store`` with ``storage_type="local"``,
id ``ids.LANG_STORE``); callbacks take it as an input and look strings up with ``t(key, lang)``.
Names that live in the database (risk classes, key-person categories) come translated from the
services, not from here.
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

STRINGS: dict[str, tuple[str, str]] = {
    # app shell
    "app.title": ("网格化防控指挥图", "Grid Command Map"),
    "app.subtitle": ("城乡社区网格化防控", "Grid-level community epidemic control"),
    "app.demo_note": ("演示数据均为虚构", "Demo people are synthetic"),
    "app.language": ("语言", "Language"),
    "nav.map": ("指挥图", "Command map"),
    # layers
    "layer.district": ("区县边界", "District"),
    "layer.subdistrict": ("街道/乡镇", "Sub-districts"),
    "layer.community": ("社区/村", "Communities"),
    "layer.grid": ("网格", "Grids"),
    "layer.building": ("楼栋", "Buildings"),
    "layer.compound": ("小区", "Compounds"),
    "layer.gate": ("小区出入口", "Compound gates"),
    "layer.checkpoint": ("进出卡点", "Checkpoints"),
    "layer.service_point": ("服务点", "Service points"),
    "layer.key_household": ("重点人群户", "Key households"),
    "layer.controlled_area": ("管控区域", "Controlled areas"),
    # what a clicked feature is (side panel heading)
    "kind.district": ("区县", "District"),
    "kind.subdistrict": ("街道/乡镇", "Sub-district"),
    "kind.community": ("社区/村", "Community"),
    "kind.grid": ("网格", "Grid"),
    "kind.building": ("楼栋", "Building"),
    "kind.compound": ("小区", "Compound"),
    "kind.gate": ("小区出入口", "Compound gate"),
    "kind.checkpoint": ("进出卡点", "Checkpoint"),
    "kind.key_household": ("重点人群户", "Key household"),
    "kind.controlled_area": ("管控区域", "Controlled area"),
    # legend
    "legend.title": ("图例", "Legend"),
    "legend.tiers": ("风险等级", "Risk tiers"),
    "legend.areas": ("区域类别", "Area classes"),
    "legend.points": ("点位", "Points"),
    "legend.services": ("服务点", "Service points"),
    "legend.checkpoint": ("进出卡点", "Checkpoint"),
    "legend.gate_open": ("出入口（开放）", "Gate (open)"),
    "legend.gate_closed": ("出入口（关闭）", "Gate (closed)"),
    "legend.kh_case": ("重点户：隔离/治疗/阳性", "Key household: isolation/case"),
    "legend.kh_vulnerable": ("重点户：困难群体", "Key household: vulnerable"),
    "legend.kh_other": ("重点户：其他", "Key household: other"),
    "legend.cluster": ("重点户聚合（点击放大）", "Key households, clustered (click to zoom)"),
    "legend.toggle": ("图例", "Legend"),
    # side panel
    "panel.empty": (
        "点击地图上的社区、网格、楼栋、卡点或服务点，查看详情。",
        "Click a community, grid, building, checkpoint or service point on the map to see its facts.",
    ),
    "panel.overview": ("辖区概况", "Overview"),
    "panel.by_tier": ("社区风险等级", "Communities by risk tier"),
    "panel.by_area": ("网格管控类别", "Grids by area class"),
    "panel.count_communities": ("个社区", ""),
    "panel.count_grids": ("个网格", ""),
    "panel.key_persons_short": ("重点人员", "Key persons"),
    "panel.service_points": ("服务点", "Service points"),
    "panel.code": ("编码", "Code"),
    "panel.district": ("区县", "District"),
    "panel.subdistrict": ("街道", "Sub-district"),
    "panel.community": ("社区", "Community"),
    "panel.grid": ("网格", "Grid"),
    "panel.building": ("楼栋", "Building"),
    "panel.compound": ("小区", "Compound"),
    "panel.communities": ("社区数", "Communities"),
    "panel.subdistricts": ("街道数", "Sub-districts"),
    "panel.grids": ("网格数", "Grids"),
    "panel.buildings": ("楼栋数", "Buildings"),
    "panel.compounds": ("小区数", "Compounds"),
    "panel.households": ("户数", "Households"),
    "panel.residents": ("人数", "Residents"),
    "panel.floors": ("层数", "Floors"),
    "panel.phone": ("电话", "Phone"),
    "panel.leader": ("网格员", "Grid leader"),
    "panel.no_leader": ("未配备网格员", "No grid leader assigned"),
    "panel.staff": ("包片人员", "Staff on this grid"),
    "panel.key_persons": ("重点人群（人数）", "Key persons (counts)"),
    "panel.key_persons_total": ("重点人员合计", "Key persons in total"),
    "panel.no_key_persons": ("无", "None"),
    "panel.risk": ("风险等级", "Risk class"),
    "panel.risk_inherited": ("沿用所在社区等级", "inherited from the community"),
    "panel.no_risk": ("未定级", "Not rated"),
    "panel.measures": ("防控措施", "Measures"),
    "panel.history": ("定级记录", "Risk history"),
    "panel.since": ("起", "from"),
    "panel.until": ("至", "to"),
    "panel.now": ("至今", "now"),
    "panel.reason": ("原因", "Reason"),
    "panel.checkpoints": ("卡点数", "Checkpoints"),
    "panel.gates": ("出入口", "Gates"),
    "panel.gates_open": ("开放出入口", "Open gates"),
    "panel.gate": ("出入口", "Gate"),
    "panel.gate_kind": ("出入口类型", "Gate type"),
    "panel.gate_state": ("出入口状态", "Gate status"),
    "panel.gate_open": ("开放", "Open"),
    "panel.gate_closed": ("关闭", "Closed"),
    "panel.shifts": ("每日班次", "Shifts per day"),
    "panel.hours_per_shift": ("每班时长（小时）", "Hours per shift"),
    "panel.staff_per_shift": ("每班人数", "Staff per shift"),
    "panel.staff_per_day": ("每日值守人次", "Staff shifts per day"),
    "panel.status": ("状态", "Status"),
    "panel.active": ("值守中", "Staffed"),
    "panel.inactive": ("已撤除", "Stood down"),
    "panel.kind": ("类型", "Kind"),
    "panel.capacity": ("服务能力", "Capacity"),
    "panel.hours": ("服务时间", "Hours"),
    "panel.version": ("版本", "Version"),
    "panel.created_at": ("划定时间", "Drawn at"),
    "panel.planned_end": ("计划解除", "Planned end"),
    "panel.author": ("划定人", "Drawn by"),
    "panel.unknown": ("—", "—"),
    "panel.privacy": (
        "个人信息不在地图上显示，仅统计人数。",
        "Personal data is not shown on the map: counts only.",
    ),
    # gate kinds
    "gate.pedestrian": ("人行", "Pedestrian"),
    "gate.vehicle": ("车行", "Vehicle"),
    "gate.both": ("人车通行", "Pedestrian and vehicle"),
    # tooltips drawn in assets/gridmap.js (sent through the GeoJSON hideout)
    "js.households": ("户", "households"),
    "js.residents": ("人", "residents"),
    "js.persons": ("重点人员", "key persons"),
    "js.staff": ("人/班", "staff/shift"),
    "js.shifts": ("班/日", "shifts/day"),
    "js.open": ("开放", "open"),
    "js.closed": ("关闭", "closed"),
    "js.checkpoint": ("设卡", "checkpoint"),
    "js.capacity": ("容量", "capacity"),
    "js.version": ("版本", "version"),
    # errors
    "error.db": ("数据库不可用，地图暂时无法显示。", "The database is unavailable; the map cannot be shown."),
    "error.empty": (
        "数据库中还没有辖区数据。请先运行 gridmap demo load。",
        "No district is loaded yet. Run gridmap demo load first.",
    ),
    "error.not_found": ("没有找到这个要素，可能已被删除。", "This feature was not found; it may have been removed."),
}


def normalise(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def t(key: str, lang: str | None) -> str:
    """The string ``key`` in ``lang``; the key itself when it has no translation (shows the gap)."""
    pair = STRINGS.get(key)
    if pair is None:
        return key
    return pair[LANGUAGES.index(normalise(lang))]


def both(key: str) -> str:
    """HTML holding ``key`` in every language; CSS shows the one of the root's ``lang-xx`` class.

    For labels Leaflet renders itself as HTML (the layer switcher's names), which Dash cannot update.
    """
    return "".join(f'<span class="gm-{lang}">{t(key, lang)}</span>' for lang in LANGUAGES)


def js_labels(lang: str | None) -> dict[str, str]:
    """The strings the map's JavaScript tooltips use, for a GeoJSON ``hideout``."""
    lang = normalise(lang)
    return {key[3:]: t(key, lang) for key in STRINGS if key.startswith("js.")}
