"""Reference data from the policy texts: key-population categories, risk classes, staff roles.

These are the seeds written into the tables ``key_person_category`` and ``risk_class`` by the
first migration's data step (and by ``gridmap demo load``); the tables, not this module, are the
truth at run time, so a command room can add its own classes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    vulnerable: bool = False  # contacted at least twice a week (004 §8)
    is_case: bool = False  # counts as a case building when judging proportionality (000 §3(三))


# DOMAIN.md 'Key populations (重点人群)' (001, 003, 004)
KEY_PERSON_CATEGORIES: tuple[Category, ...] = (
    Category("elderly_alone", "独居老人", "Elderly living alone", vulnerable=True),
    Category("scattered_orphan", "散居孤儿", "Scattered orphan", vulnerable=True),
    Category("unattended_child", "事实无人抚养儿童", "De-facto unattended child", vulnerable=True),
    Category("left_behind_child", "农村留守儿童", "Left-behind child"),
    Category("child_in_difficulty", "困境儿童", "Child in difficulty"),
    Category("disabled", "残疾人", "Person with disability"),
    Category("disabled_no_selfcare", "失能残疾人", "Disabled, no self-care", vulnerable=True),
    Category("pregnant", "孕产妇", "Pregnant or postpartum woman"),
    Category("special_hardship", "特殊困难群体", "Person in special hardship"),
    Category("renter", "出租房屋和集体宿舍租住人员", "Renter or dormitory resident"),
    Category("cold_chain_worker", "进口冷链从业人员", "Cold-chain import worker"),
    Category("returnee", "返乡人员", "Holiday returnee"),
    Category("risk_area_arrival", "中高风险地区来人、入境人员", "Arrival from risk area or abroad"),
    Category("recovered", "治愈患者、解除医学观察人员", "Recovered or released from observation"),
    Category("chronic", "慢性病患者", "Chronic patient"),
    Category("home_isolation", "居家隔离", "Home isolation", is_case=True),
    Category("home_treatment", "居家治疗", "Home treatment", is_case=True),
    Category("positive", "阳性感染者", "Positive case", is_case=True),
    Category("medic_family", "一线医务人员家庭", "Family of front-line medical worker"),
)


@dataclass(frozen=True)
class RiskClassSeed:
    scheme: str  # 'tier' or 'area'
    code: str
    name_zh: str
    name_en: str
    color: str
    severity: int
    measures_zh: str
    measures_en: str


# DOMAIN.md 'Risk tiers' (000, 002)
RISK_CLASSES: tuple[RiskClassSeed, ...] = (
    RiskClassSeed(
        "tier", "low", "低风险", "Low risk", "#2e9d5b", 1,
        "外防输入：出入口开放，人员车辆登记测温；快递外卖准入；公共服务限流开放；追踪中高风险地区及境外来人。",
        "Keep imports out: gates open with registration and temperature checks; courier admission "
        "scheme; services open with flow limits; track arrivals from risk areas and abroad.",
    ),
    RiskClassSeed(
        "tier", "medium", "中风险", "Medium risk", "#f0a020", 2,
        "外防输入、内防扩散：封闭式管理，分类准入；服务预约；设置生活物资集中销售(配送)点和快递(外卖)集中配送区域；按网格追踪密切接触者。",
        "Imports out, no spread inside: closed management with classified entry; services by "
        "appointment; central supply points and express-delivery zones; trace contacts by grid.",
    ),
    RiskClassSeed(
        "tier", "high", "高风险", "High risk", "#d62728", 3,
        "内防扩散、外防输出、严格管控：限制或禁止人员出入；保障发热病人、急危重症患者、孕产妇就医车辆；志愿者统一配送到户；慢性病用药保障。",
        "No spread, no export, strict control: entry and exit restricted or forbidden; emergency "
        "vehicles for fever, acute and pregnant patients; volunteers deliver to every door; "
        "chronic-disease medicine supply.",
    ),
    RiskClassSeed(
        "area", "precaution", "防范区", "Precaution area", "#4c8bd6", 1,
        "强化社会面管控，严格限制人员聚集。",
        "Tighter control in public; gatherings strictly limited.",
    ),
    RiskClassSeed(
        "area", "controlled", "管控区", "Controlled area", "#f0a020", 2,
        "人不出区、严禁聚集；出入口设卡点值守。",
        "People stay inside the area, no gatherings; checkpoints staffed at every gate.",
    ),
    RiskClassSeed(
        "area", "sealed", "封控区", "Sealed area", "#b5121b", 3,
        "足不出户、上门服务；物资由志愿者统一配送到户。",
        "People stay at home, services come to the door; volunteers deliver supplies to every door.",
    ),
)


# DOMAIN.md 'Staff (网格化工作队伍)'
STAFF_ROLES: dict[str, tuple[str, str]] = {
    "community_worker": ("社区工作者", "Community worker"),
    "grid_leader": ("网格员", "Grid leader"),
    "building_leader": ("楼栋长", "Building leader"),
    "medical": ("社区医务人员", "Community medical staff"),
    "sunk_cadre": ("下沉干部", "Sunk cadre"),
    "police": ("社区民警", "Community police"),
    "property": ("物业人员", "Property-management staff"),
    "social_worker": ("社会工作者", "Social worker"),
    "volunteer": ("志愿者", "Volunteer"),
}

SERVICE_POINT_KINDS: dict[str, tuple[str, str]] = {
    "supply_point": ("生活物资集中配送点", "Central supply point"),
    "delivery_zone": ("快递(外卖)集中配送区", "Express-delivery drop zone"),
    "testing_point": ("便民核酸检测点", "Testing point"),
    "vaccination_point": ("临时接种点", "Vaccination point"),
    "vaccination_vehicle": ("流动接种车", "Mobile vaccination vehicle"),
    "health_station": ("社区卫生服务站", "Community health station"),
    "elderly_green_channel": ("老年人绿色通道", "Elderly green channel"),
}
