"""Demo activity: contact logs and checkpoint rosters for the loaded demo district.

``gridmap demo load`` writes the district; :func:`seed_demo_activity` then adds two weeks of
contacts with vulnerable people and the rosters of the next two days (gridmap.domain.demo_activity),
so the coverage metrics and the wall show a plausible mix of on-time and overdue, staffed and short.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

import gridmap.db.models_coverage  # noqa: F401  (the tables written here)
from gridmap.config import Settings
from gridmap.db.bulk import copy_rows
from gridmap.domain.demo_activity import (
    ActivitySpec,
    RosterCheckpoint,
    VulnerablePerson,
    generate_contacts,
    generate_shifts,
)
from gridmap.domain.errors import GridmapError
from gridmap.services.coverage import local_tz

# Who stands at a checkpoint: a community's own staff first, then help from the sub-district.
DUTY_ROLES = ("volunteer", "property", "sunk_cadre", "community_worker", "police", "building_leader")
# Who contacts a vulnerable person: whoever is linked to the household, else the grid leader.
CONTACT_ROLES = ("social_worker", "volunteer", "medical", "building_leader")

_PEOPLE_SQL = text(
    """
    SELECT kp.id,
           coalesce(
             (SELECT array_agg(DISTINCT s.id ORDER BY s.id)
              FROM staff_assignment sa JOIN staff s ON s.id = sa.staff_id AND s.active AND s.role = ANY(:roles)
              WHERE sa.household_id = kp.household_id OR sa.building_id = h.building_id),
             (SELECT array_agg(DISTINCT s.id ORDER BY s.id)
              FROM staff_assignment sa JOIN staff s ON s.id = sa.staff_id AND s.active AND s.role = 'grid_leader'
              WHERE sa.grid_id = b.grid_id),
             '{}') AS staff_ids
    FROM key_person kp
    JOIN household h ON h.id = kp.household_id
    JOIN building b ON b.id = h.building_id
    WHERE EXISTS (SELECT 1 FROM key_person_category_link l
                  JOIN key_person_category c ON c.id = l.category_id AND c.vulnerable
                  WHERE l.key_person_id = kp.id)
    ORDER BY kp.id
    """
)

_CHECKPOINTS_SQL = text(
    """
    SELECT ck.id, c.community_id, ck.shifts_per_day, ck.staff_per_shift
    FROM checkpoint ck JOIN gate ga ON ga.id = ck.gate_id JOIN compound c ON c.id = ga.compound_id
    WHERE ck.active ORDER BY ck.id
    """
)

_DUTY_STAFF_SQL = text(
    """
    SELECT s.id, s.community_id, cm.subdistrict_id
    FROM staff s JOIN community cm ON cm.id = s.community_id
    WHERE s.active AND s.role = ANY(:roles)
    ORDER BY s.id
    """
)


class ActivityAlreadySeeded(GridmapError):
    code = "activity_already_seeded"


def seed_demo_activity(
    session: Session,
    settings: Settings,
    now: datetime,
    seed: int,
    *,
    replace: bool = False,
    spec: ActivitySpec | None = None,
) -> dict[str, int]:
    """Write contacts of the last ``spec.history_days`` and rosters of the next ``spec.roster_hours``.

    Deterministic for a given district, ``now`` and ``seed``. Refuses when contact logs or shifts
    exist already, unless ``replace``, which deletes them all first. Returns the rows written.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    spec = spec or ActivitySpec()
    existing = session.execute(
        text("SELECT EXISTS (SELECT 1 FROM contact_log) OR EXISTS (SELECT 1 FROM duty_shift)")
    ).scalar_one()
    if existing:
        if not replace:
            raise ActivityAlreadySeeded("已有联系记录或排班 / contact logs or duty shifts exist already (use replace)")
        session.execute(text("DELETE FROM contact_log"))
        session.execute(text("DELETE FROM duty_shift"))
    tz = local_tz(settings)

    people = [
        VulnerablePerson(r.id, tuple(r.staff_ids))
        for r in session.execute(_PEOPLE_SQL, {"roles": list(CONTACT_ROLES)})
    ]
    contacts = generate_contacts(
        people, now, tz, seed,
        required=settings.vulnerable_contacts_per_week,
        window_days=settings.vulnerable_contact_window_days,
        spec=spec,
    )

    checkpoints = [RosterCheckpoint(*r) for r in session.execute(_CHECKPOINTS_SQL)]
    own: dict[int, list[int]] = {}
    by_subdistrict: dict[int, list[int]] = {}
    subdistrict_of: dict[int, int] = {}
    for staff_id, community_id, subdistrict_id in session.execute(_DUTY_STAFF_SQL, {"roles": list(DUTY_ROLES)}):
        own.setdefault(community_id, []).append(staff_id)
        by_subdistrict.setdefault(subdistrict_id, []).append(staff_id)
        subdistrict_of[community_id] = subdistrict_id
    pools = {}
    for community_id, staff_ids in own.items():
        mine = set(staff_ids)
        elsewhere = [s for s in by_subdistrict[subdistrict_of[community_id]] if s not in mine]
        pools[community_id] = (staff_ids, elsewhere)
    shifts = generate_shifts(
        checkpoints, pools, now, tz, seed, duty_hours_per_day=settings.duty_hours_per_day, spec=spec
    )

    written = {
        "contact_log": copy_rows(
            session, "contact_log", ["key_person_id", "staff_id", "contacted_at", "method", "outcome"], contacts
        ),
        "duty_shift": copy_rows(session, "duty_shift", ["checkpoint_id", "staff_id", "starts_at", "ends_at"], shifts),
    }
    session.execute(text("ANALYZE contact_log"))
    session.execute(text("ANALYZE duty_shift"))
    return written
