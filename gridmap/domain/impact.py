"""What a controlled area means on the ground, from counts: staff, shifts, drop zones, and the
proportionality warnings the guidance asks for (000 §3(三): no over-control, no 一封了之).

Pure: the counts come from PostGIS (gridmap.services.impact); the numbers that turn counts into
needs are settings, passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImpactRules:
    """The settings that turn counts into needs and warnings."""

    shifts_per_day: int = 3
    staff_per_shift: int = 2
    households_per_drop_zone: int = 500
    households_per_delivery_volunteer: int = 30
    overcontrol_households_ratio: float = 20.0
    overcontrol_community_share: float = 0.5
    whole_community_share: float = 0.95


@dataclass(frozen=True)
class CommunityShare:
    community_id: int
    name: str
    households_inside: int
    households_total: int

    @property
    def share(self) -> float:
        return self.households_inside / self.households_total if self.households_total else 0.0


@dataclass(frozen=True)
class Warning:
    code: str
    message_zh: str
    message_en: str
    numbers: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"code": self.code, "message_zh": self.message_zh, "message_en": self.message_en,
                "numbers": self.numbers}


@dataclass(frozen=True)
class Needs:
    checkpoints_needed: int
    duty_staff_needed: int
    drop_zones_needed: int
    delivery_volunteers_needed: int


def needs_for(
    area_class: str, households: int, open_gates: int, staffed_gates: int, rules: ImpactRules
) -> Needs:
    """Checkpoints and people an area of ``area_class`` needs.

    Every open gate of a controlled area is either closed or gets a checkpoint staffed around the
    clock (001, 003): ``checkpoints_needed`` are the open gates without one yet, and duty staff are
    counted for every open gate, new checkpoint or existing. A precaution area keeps its gates as
    they are. A sealed area (or a high-risk tier) also needs drop zones and volunteers who deliver
    to every door (000: 统一配送到户).
    """
    controls_gates = area_class != "precaution"
    open_gates = open_gates if controls_gates else 0
    delivers_to_door = area_class in ("sealed", "high")
    return Needs(
        checkpoints_needed=max(open_gates - staffed_gates, 0) if controls_gates else 0,
        duty_staff_needed=open_gates * rules.shifts_per_day * rules.staff_per_shift,
        drop_zones_needed=math.ceil(households / rules.households_per_drop_zone) if delivers_to_door else 0,
        delivery_volunteers_needed=(
            math.ceil(households / rules.households_per_delivery_volunteer) if delivers_to_door else 0
        ),
    )


def proportionality_warnings(
    area_class: str,
    households: int,
    case_households: int,
    case_buildings: int,
    communities: list[CommunityShare],
    rules: ImpactRules,
) -> list[Warning]:
    """Warnings when an area is far larger than its cases justify.

    ``case_households`` are the households of the buildings with cases inside the area; the
    guidance's unit of control is the building with a case, so the ratio of controlled households
    to those is the measure of over-control.
    """
    if area_class == "precaution" or households == 0:
        return []
    warnings: list[Warning] = []
    if case_buildings == 0:
        warnings.append(Warning(
            "no_cases_inside",
            f"区域内没有病例楼栋，却将管控 {households} 户。",
            f"No building with a case lies inside, yet {households} households would be controlled.",
            {"households": households, "case_buildings": 0},
        ))
    else:
        ratio = households / max(case_households, 1)
        if ratio > rules.overcontrol_households_ratio:
            warnings.append(Warning(
                "overcontrol_ratio",
                f"管控 {households} 户，是病例楼栋 {case_households} 户的 {ratio:.1f} 倍"
                f"（阈值 {rules.overcontrol_households_ratio:g} 倍），可能过度防控。",
                f"{households} households controlled, {ratio:.1f}× the {case_households} households of "
                f"buildings with cases (threshold {rules.overcontrol_households_ratio:g}×): possible over-control.",
                {"households": households, "case_households": case_households,
                 "case_buildings": case_buildings, "ratio": round(ratio, 2),
                 "threshold": rules.overcontrol_households_ratio},
            ))
    for c in communities:
        if c.share >= rules.whole_community_share and area_class in ("sealed", "high"):
            warnings.append(Warning(
                "whole_community_sealed",
                f"{c.name}几乎整体封控（{c.share:.0%} 的住户），防止“一封了之”。",
                f"{c.name} would be sealed almost whole ({c.share:.0%} of households): "
                "the guidance forbids sealing a whole community (一封了之).",
                {"community_id": c.community_id, "share": round(c.share, 3)},
            ))
        elif c.share > rules.overcontrol_community_share and case_buildings > 0:
            ratio = households / max(case_households, 1)
            if ratio > rules.overcontrol_households_ratio:
                warnings.append(Warning(
                    "large_community_share",
                    f"区域覆盖{c.name} {c.share:.0%} 的住户（阈值 {rules.overcontrol_community_share:.0%}）。",
                    f"The area covers {c.share:.0%} of {c.name}'s households "
                    f"(threshold {rules.overcontrol_community_share:.0%}).",
                    {"community_id": c.community_id, "share": round(c.share, 3),
                     "threshold": rules.overcontrol_community_share},
                ))
    return warnings
