"""Controlled areas are edited only by roles that may edit areas, only inside their own area,
and never by the read-only auditor, checked in the services (not only on the page)."""

import pytest
import shapely
from shapely import wkb
from sqlalchemy import text

from gridmap.services.access import AccessDenied, make_principal
from gridmap.services.areas import create_area, lift, save_version


def principal(session, role: str, level: str, area_id: int):
    return make_principal(session, user_id=0, username=f"t-{role}", role=role, area_level=level, area_id=area_id)


def building_area(session, subdistrict_id: int):
    g = session.execute(text(
        "SELECT ST_AsBinary(ST_Buffer(b.geom, 0.00001)) FROM building b JOIN grid g ON g.id = b.grid_id "
        "JOIN community c ON c.id = g.community_id WHERE c.subdistrict_id = :s ORDER BY b.id LIMIT 1"
    ), {"s": subdistrict_id}).scalar_one()
    return wkb.loads(bytes(g))


@pytest.fixture
def two_subdistricts(session):
    return session.execute(text("SELECT id FROM subdistrict ORDER BY id LIMIT 2")).scalars().all()


def test_subdistrict_staff_edit_inside_and_are_refused_outside(session, settings, now, two_subdistricts):
    own, other = two_subdistricts
    staff = principal(session, "subdistrict_staff", "subdistrict", own)
    inside = create_area(session, building_area(session, own), "controlled", settings=settings, author="街道",
                         now=now, reason="病例楼栋", principal=staff)
    assert inside.version == 1
    with pytest.raises(AccessDenied):
        create_area(session, building_area(session, other), "controlled", settings=settings, author="街道",
                    now=now, reason="r", principal=staff)
    both = shapely.union_all([building_area(session, own), building_area(session, other)]).convex_hull
    with pytest.raises(AccessDenied):
        save_version(session, inside.area_key, 1, both, "controlled", settings=settings, author="街道", now=now,
                     reason="扩大", principal=staff)


@pytest.mark.parametrize("role,level", [("grid_leader", "grid"), ("volunteer", "grid"), ("auditor", "district"),
                                        ("community_worker", "community")])
def test_roles_without_area_rights_are_refused(session, settings, now, role, level):
    area_id = session.execute(text(f"SELECT min(id) FROM {level}")).scalar_one()
    sub = session.execute(text("SELECT min(id) FROM subdistrict")).scalar_one()
    before = session.execute(text("SELECT count(*) FROM controlled_area")).scalar_one()
    with pytest.raises(AccessDenied):
        create_area(session, building_area(session, sub), "controlled", settings=settings, author=role, now=now,
                    reason="r", principal=principal(session, role, level, area_id))
    assert session.execute(text("SELECT count(*) FROM controlled_area")).scalar_one() == before


def test_commander_may_lift_and_auditor_may_not(session, settings, now, two_subdistricts):
    district = session.execute(text("SELECT min(id) FROM district")).scalar_one()
    commander = principal(session, "district_commander", "district", district)
    area = create_area(session, building_area(session, two_subdistricts[0]), "sealed", settings=settings,
                       author="指挥", now=now, reason="病例", principal=commander)
    with pytest.raises(AccessDenied):
        lift(session, area.area_key, 1, author="审计", now=now, reason="x",
             principal=principal(session, "auditor", "district", district))
    assert lift(session, area.area_key, 1, author="指挥", now=now, reason="解封", principal=commander).ended_at
