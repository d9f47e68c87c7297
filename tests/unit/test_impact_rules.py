"""The pure rules that turn an area's counts into needs and proportionality warnings."""

from gridmap.config import Settings
from gridmap.domain.impact import CommunityShare, ImpactRules, needs_for, proportionality_warnings
from gridmap.services.impact import rules_from

RULES = ImpactRules()


def test_rules_come_from_settings_with_policy_defaults():
    rules = rules_from(Settings(_env_file=None))
    assert (rules.shifts_per_day, rules.staff_per_shift) == (3, 2)
    assert rules_from(Settings(_env_file=None, checkpoint_shifts_per_day=2)).shifts_per_day == 2


def test_every_open_gate_is_staffed_around_the_clock():
    needs = needs_for("controlled", households=120, open_gates=4, staffed_gates=1, rules=RULES)
    assert needs.checkpoints_needed == 3
    assert needs.duty_staff_needed == 4 * 3 * 2
    assert needs.drop_zones_needed == 0 and needs.delivery_volunteers_needed == 0


def test_sealed_area_needs_drop_zones_and_door_delivery():
    needs = needs_for("sealed", households=1001, open_gates=2, staffed_gates=0, rules=RULES)
    assert needs.drop_zones_needed == 3  # ceil(1001 / 500)
    assert needs.delivery_volunteers_needed == 34  # ceil(1001 / 30)


def test_precaution_area_controls_no_gates():
    needs = needs_for("precaution", households=500, open_gates=5, staffed_gates=0, rules=RULES)
    assert needs.checkpoints_needed == 0 and needs.duty_staff_needed == 0


def test_over_control_warning_carries_the_numbers():
    warnings = proportionality_warnings("sealed", 2100, 60, 1, [], RULES)
    assert [w.code for w in warnings] == ["overcontrol_ratio"]
    assert warnings[0].numbers["ratio"] == 35.0
    assert "2100" in warnings[0].message_zh


def test_proportionate_area_has_no_warning():
    assert proportionality_warnings("sealed", 300, 60, 2, [], RULES) == []


def test_no_case_inside_is_a_warning_but_precaution_never_is():
    assert [w.code for w in proportionality_warnings("controlled", 80, 0, 0, [], RULES)] == ["no_cases_inside"]
    assert proportionality_warnings("precaution", 8000, 0, 0, [], RULES) == []


def test_sealing_a_whole_community_is_flagged_separately():
    whole = CommunityShare(1, "较场口社区", households_inside=1480, households_total=1500)
    codes = [w.code for w in proportionality_warnings("sealed", 1480, 1480, 30, [whole], RULES)]
    assert codes == ["whole_community_sealed"]
