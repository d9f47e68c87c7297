"""Coverage and staffing per grid, checked on a small hand-made community far from the demo data.

The community lies 50 km west of the demo district, so nothing of the demo reaches it. It is drawn
in metres (UTM 48N) around an origin and holds four grids side by side:

    y=2000 +---------+
           |    E    |        E touches A at one corner only: not a neighbour of A.
    y=1000 +----+----+----+
           | A  | B  | D  |   A|B and B|D share borders.
    y=0    +----+----+----+
          x=0  1000 2000 3000

Each expected value below is written out by hand from this plan, and distances are checked again
with pyproj's geodesic on the household points the database holds.
"""

import json
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import shapely
from geoalchemy2.shape import from_shape
from pyproj import Geod, Transformer
from shapely import wkb
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import text

from gridmap.db.models import (
    Building,
    Checkpoint,
    Community,
    Compound,
    ControlledArea,
    Gate,
    Grid,
    KeyPerson,
    RiskAssignment,
    ServicePoint,
    Staff,
    StaffAssignment,
)
from gridmap.db.models_coverage import ContactLog, DutyShift
from gridmap.services.coverage import (
    GridCoverageDelta,
    apply_coverage_change,
    contacts_by_grid,
    grid_metrics,
    recompute_service_coverage,
    service_coverage,
    service_load,
    staffing_gaps,
)
from gridmap.services.demo_activity import ActivityAlreadySeeded, seed_demo_activity

ORIGIN = (106.0, 29.0)
_TO_M = Transformer.from_crs("EPSG:4326", "EPSG:32648", always_xy=True)
_TO_DEG = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True)
X0, Y0 = _TO_M.transform(*ORIGIN)
GEOD = Geod(ellps="WGS84")


def deg(geom):
    """A shape drawn in metres from the origin, in EPSG:4326."""
    return shapely.transform(geom, lambda xy: _local_to_deg(xy))


def _local_to_deg(xy):
    lon, lat = _TO_DEG.transform(xy[:, 0] + X0, xy[:, 1] + Y0)
    xy[:, 0], xy[:, 1] = lon, lat
    return xy


def g(geom):
    return from_shape(deg(geom), srid=4326)


def footprint(cx, cy, w=40, h=20):
    return box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


# Buildings: (grid, name, centre, households)
BUILDINGS = {
    "A1": ("A", (500, 500), 300),
    "A2": ("A", (700, 500), 220),
    "B1": ("B", (1500, 300), 200),
    "B2": ("B", (1500, 700), 150),
    "D1": ("D", (2300, 500), 100),
    "D2": ("D", (2700, 500), 70),
    "D3": ("D", (2500, 200), 30),
    "E1": ("E", (1500, 1600), 100),
}
GRIDS = {"A": box(0, 0, 1000, 1000), "B": box(1000, 0, 2000, 1000), "D": box(2000, 0, 3000, 1000),
         "E": box(1000, 1000, 2000, 2000)}
TESTING_AT, SUPPLY_AT = (-400, 500), (1600, 500)


class Fixture:
    def __init__(self, session, now):
        self.session, self.now = session, now
        self.grid, self.building, self.staff, self.person, self.checkpoint = {}, {}, {}, {}, {}
        self.build()

    def add(self, obj):
        self.session.add(obj)
        self.session.flush()
        return obj.id

    def ids(self, sql, **params):
        return dict(self.session.execute(text(sql), params).all())

    def build(self):
        s, now = self.session, self.now
        cat = self.ids("SELECT code, id FROM key_person_category")
        area_class = self.ids("SELECT code, id FROM risk_class WHERE scheme = 'area'")
        subdistrict = s.execute(text("SELECT min(id) FROM subdistrict")).scalar_one()
        community = self.add(Community(subdistrict_id=subdistrict, code="T-C", name="测试社区",
                                       geom=g(MultiPolygon([box(0, 0, 3000, 2000)]))))
        self.community = community
        for name, shape in GRIDS.items():
            self.grid[name] = self.add(Grid(community_id=community, code=f"T-{name}", name=f"测试网格{name}",
                                            geom=g(MultiPolygon([shape]))))
        for name, (grid, (cx, cy), _n) in BUILDINGS.items():
            self.building[name] = self.add(Building(grid_id=self.grid[grid], code=f"T-{name}", name=name,
                                                    floors=6, geom=g(footprint(cx, cy))))
        for name, (_grid, _c, n) in BUILDINGS.items():
            s.execute(text(
                "INSERT INTO household (building_id, room, residents, geom) "
                "SELECT b.id, 'r' || k, 2, ST_Centroid(b.geom) FROM building b, generate_series(1, :n) k "
                "WHERE b.id = :b"), {"b": self.building[name], "n": n})
        self.households = {
            name: [r[0] for r in s.execute(text("SELECT id FROM household WHERE building_id = :b ORDER BY id"),
                                           {"b": self.building[name]})]
            for name in BUILDINGS
        }

        # Staff: leaders by three paths, volunteers by grid, building and household, one inactive.
        def staff(name, role, active=True):
            self.staff[name] = self.add(Staff(community_id=community, name=name, role=role, active=active))
            return self.staff[name]

        def assign(staff_id, **target):
            self.add(StaffAssignment(staff_id=staff_id, **target))

        assign(staff("LA", "grid_leader"), grid_id=self.grid["A"])
        assign(staff("LB", "grid_leader"), building_id=self.building["B1"])
        assign(staff("LD", "grid_leader"), grid_id=self.grid["D"])
        for k in range(1, 4):
            assign(staff(f"VA{k}", "volunteer"), grid_id=self.grid["A"])
        assign(staff("VA4", "volunteer"), household_id=self.households["A1"][0])
        assign(staff("VA5", "volunteer"), building_id=self.building["A2"])
        assign(self.staff["VA5"], grid_id=self.grid["A"])  # twice in A: counted once
        assign(staff("VA6", "volunteer", active=False), grid_id=self.grid["A"])
        for k in range(1, 7):
            assign(staff(f"VB{k}", "volunteer"), grid_id=self.grid["B"])
        for k in range(7, 11):
            assign(staff(f"VB{k}", "volunteer"), household_id=self.households["B2"][k])
        for k in range(1, 5):
            assign(staff(f"VD{k}", "volunteer"), grid_id=self.grid["D"])
        for k in range(1, 4):
            assign(staff(f"VE{k}", "volunteer"), grid_id=self.grid["E"])
        sw = staff("SW", "social_worker")
        for k in range(3):
            assign(sw, household_id=self.households["B1"][k])

        # Key people: (name, building, household index, categories, observation_start)
        today = date(2022, 11, 25)
        people = [
            ("P1", "B1", 0, ["elderly_alone"], None),
            ("P2", "B1", 1, ["scattered_orphan"], None),
            ("P3", "B1", 2, ["disabled_no_selfcare"], None),
            ("P4", "B1", 3, ["elderly_alone", "chronic"], None),
            ("P5", "B1", 4, ["chronic"], None),
            ("P6", "A1", 0, ["elderly_alone"], None),
            ("O1", "D1", 0, ["home_isolation"], today),
            ("O2", "D1", 1, ["risk_area_arrival"], today - timedelta(days=13)),
            ("O3", "D1", 2, ["home_isolation"], today - timedelta(days=14)),
            ("O4", "D1", 3, ["risk_area_arrival"], None),
            ("O5", "D1", 4, ["chronic"], today),
        ]
        for name, b, k, cats, start in people:
            hid = self.households[b][k]
            pid = self.add(KeyPerson(household_id=hid, name=name, observation_start=start, version=1,
                                     geom=g(Point(*BUILDINGS[b][1]))))
            self.person[name] = pid
            for c in cats:
                s.execute(text("INSERT INTO key_person_category_link (key_person_id, category_id) VALUES (:p, :c)"), {"p": pid, "c": cat[c]})

        # Contacts: the window is (now - 7 days, now].
        contacts = {
            "P1": [timedelta(days=-1), timedelta(days=-3)],
            "P2": [timedelta(days=-2), timedelta(days=-7)],  # the second is just outside
            "P4": [timedelta(hours=-1), timedelta(days=-6, hours=-23), timedelta(hours=1)],  # one in the future
            "P5": [timedelta(days=-1)],
        }
        for name, offsets in contacts.items():
            for off in offsets:
                self.add(ContactLog(key_person_id=self.person[name], staff_id=sw, contacted_at=now + off,
                                    method="visit", outcome="情况正常"))

        # Risk: A sealed by assignment now; B's controlled assignment is over, E's starts tomorrow.
        def risk(grid, code, since, until=None):
            self.add(RiskAssignment(risk_class_id=area_class[code], grid_id=self.grid[grid],
                                    valid_from=now + since, valid_to=None if until is None else now + until,
                                    reason="test", author="test"))

        risk("A", "sealed", timedelta(days=-2))
        risk("B", "controlled", timedelta(days=-5), timedelta(days=-1))
        risk("E", "controlled", timedelta(days=1))
        # Drawn areas in D: key 990001 v1 covered D2, v2 covers D1 whole and 30 % of D3; key 990002 ended.
        d3_left = BUILDINGS["D3"][1][0] - 20
        current = MultiPolygon([box(2200, 400, 2400, 600), box(2400, 150, d3_left + 12, 250)])
        for key, version, shape, ended in [
            (990001, 1, MultiPolygon([box(2600, 400, 2800, 600)]), None),
            (990001, 2, current, None),
            (990002, 1, MultiPolygon([box(2600, 400, 2800, 600)]), now - timedelta(hours=1)),
        ]:
            self.add(ControlledArea(area_key=key, version=version, risk_class_id=area_class["controlled"],
                                    name="t", reason="t", author="t", created_at=now - timedelta(days=1),
                                    ended_at=ended, geom=g(shape)))

        # Checkpoints: one in B (point on surface of its compound), one whose compound lies in no
        # grid and so belongs to the grid of its building (D).
        cb = self.add(Compound(community_id=community, code="T-CB", name="B小区", geom=g(box(1300, 400, 1450, 600))))
        gate_b = self.add(Gate(compound_id=cb, name="1号门", kind="both", is_open=True, geom=g(Point(1300, 500))))
        gate_b2 = self.add(Gate(compound_id=cb, name="2号门", kind="both", is_open=True, geom=g(Point(1450, 500))))
        self.checkpoint["B"] = self.add(Checkpoint(gate_id=gate_b, name="B卡点", shifts_per_day=3, staff_per_shift=2,
                                                   active=True, geom=g(Point(1300, 500))))
        self.checkpoint["B-off"] = self.add(Checkpoint(gate_id=gate_b2, name="B停用卡点", shifts_per_day=3,
                                                       staff_per_shift=2, active=False, geom=g(Point(1450, 500))))
        cx = self.add(Compound(community_id=community, code="T-CX", name="X小区", geom=g(box(2400, 1400, 2600, 1600))))
        self.add(Building(grid_id=self.grid["D"], compound_id=cx, code="T-X1", name="X1", floors=2,
                          geom=g(footprint(2500, 1500))))
        gate_x = self.add(Gate(compound_id=cx, name="X门", kind="both", is_open=True, geom=g(Point(2400, 1500))))
        self.checkpoint["X"] = self.add(Checkpoint(gate_id=gate_x, name="X卡点", shifts_per_day=3, staff_per_shift=1,
                                                   active=True, geom=g(Point(2400, 1500))))
        for k in range(1, 7):
            staff(f"S{k}", "property", active=k != 5)
        z = datetime(2022, 11, 25, tzinfo=UTC)
        roster = [  # (staff, checkpoint, start, end) in UTC; slots are 08–16, 16–24, 00–08 UTC
            ("S1", "B", z + timedelta(hours=8), z + timedelta(hours=16)),
            ("S2", "B", z + timedelta(hours=8), z + timedelta(hours=16)),
            ("S3", "B", z + timedelta(hours=16), z + timedelta(hours=24)),
            ("S4", "B", z + timedelta(hours=16), z + timedelta(hours=20)),
            ("S4", "B", z + timedelta(hours=20), z + timedelta(hours=24)),
            ("S1", "B", z + timedelta(hours=24), z + timedelta(hours=32)),
            ("S2", "B", z + timedelta(hours=24), z + timedelta(hours=31)),  # leaves an hour early
            ("S5", "B", z + timedelta(hours=32), z + timedelta(hours=40)),  # inactive
            ("S3", "B", z + timedelta(hours=34), z + timedelta(hours=40)),  # comes two hours late
            ("S6", "X", z, z + timedelta(hours=48)),
            ("S6", "B-off", z, z + timedelta(hours=48)),
        ]
        for name, ck, start, end in roster:
            self.add(DutyShift(checkpoint_id=self.checkpoint[ck], staff_id=self.staff[name],
                               starts_at=start, ends_at=end))

        # Service points west of A and east of A's border; none of the demo's within 50 km.
        self.testing = self.add(ServicePoint(community_id=community, kind="testing_point", name="T核酸点",
                                             capacity=400, geom=g(Point(*TESTING_AT))))
        self.supply = self.add(ServicePoint(community_id=community, kind="supply_point", name="T配送点",
                                            capacity=2000, geom=g(Point(*SUPPLY_AT))))

    def metrics(self, settings):
        found = grid_metrics(self.session, settings, self.now, list(self.grid.values()))
        return {m.code.removeprefix("T-"): m for m in found}


@pytest.fixture
def fx(session, now):
    return Fixture(session, now)


def test_counts_staff_and_households_per_leader(fx, settings):
    m = fx.metrics(settings)
    assert list(m) == ["A", "B", "D", "E"]
    for name in m:
        want = sum(n for grid, _c, n in BUILDINGS.values() if grid == name)
        assert (m[name].households, m[name].residents) == (want, 2 * want)
    assert m["A"].staff_by_role == {"grid_leader": 1, "volunteer": 5}
    assert m["B"].staff_by_role == {"grid_leader": 1, "social_worker": 1, "volunteer": 10}
    assert m["D"].staff_by_role == {"grid_leader": 1, "volunteer": 4}
    assert m["E"].staff_by_role == {"volunteer": 3}
    assert m["B"].key_persons == 5
    assert m["B"].key_persons_by_category == {"chronic": 2, "disabled_no_selfcare": 1, "elderly_alone": 2,
                                              "scattered_orphan": 1}
    assert m["D"].key_persons_by_category == {"chronic": 1, "home_isolation": 2, "risk_area_arrival": 2}
    # 300–500 households per grid leader.
    assert {k: (v.leaders.leaders, v.leaders.households_per_leader, v.leaders.status) for k, v in m.items()} == {
        "A": (1, 520.0, "over"), "B": (1, 350.0, "ok"), "D": (1, 200.0, "under"), "E": (0, None, "no_leader"),
    }


def test_delivery_volunteers_in_sealed_and_controlled_areas(fx, settings):
    m = fx.metrics(settings)
    a = m["A"].delivery
    assert (a.area_class, a.households_inside, a.volunteers, a.volunteers_needed, a.status) == (
        "sealed", 520, 5, math.ceil(520 / 30), "short")
    assert a.volunteers_per_100_households == pytest.approx(100 * 5 / 520, abs=0.01)
    # D: only the latest version of a live drawn area counts, and D3 (30 % inside) is outside.
    d = m["D"].delivery
    assert (d.area_class, d.households_inside, d.volunteers_needed, d.status) == ("controlled", 100, 4, "ok")
    # B's assignment ended yesterday, E's starts tomorrow.
    assert m["B"].delivery.status == m["E"].delivery.status == "not_controlled"
    assert m["B"].delivery.households_inside == 0


def test_vulnerable_people_contacted_twice_in_the_last_seven_days(fx, settings, now):
    m = fx.metrics(settings)
    b = m["B"].contacts
    assert (b.vulnerable, b.on_time, b.share_on_time, b.required, b.window_days) == (4, 2, 0.5, 2, 7)
    assert b.window_end == now and b.window_start == now - timedelta(days=7)
    assert [(o.key_person_id, o.category, o.contacts_in_window, o.contacts_missing) for o in b.overdue] == [
        (fx.person["P3"], "disabled_no_selfcare", 0, 2),  # never contacted comes first
        (fx.person["P2"], "scattered_orphan", 1, 1),
    ]
    assert b.overdue[0].last_contact is None
    assert b.overdue[1].last_contact == now - timedelta(days=2)
    a = m["A"].contacts
    assert (a.vulnerable, a.on_time, [o.key_person_id for o in a.overdue]) == (1, 0, [fx.person["P6"]])
    assert m["D"].contacts.vulnerable == 0 and m["D"].contacts.share_on_time is None


def test_checkpoint_shifts_of_the_next_24_hours(fx, settings):
    m = fx.metrics(settings)
    b = m["B"].checkpoints
    assert (b.checkpoints, b.slots, b.slots_covered, b.status) == (1, 4, 2, "gaps")
    z = datetime(2022, 11, 26, tzinfo=UTC)
    assert [(gp.checkpoint_id, gp.slot_start, gp.slot_end, gp.staff_rostered, gp.staff_needed) for gp in b.gaps] == [
        (fx.checkpoint["B"], z, z + timedelta(hours=8), 1, 2),
        (fx.checkpoint["B"], z + timedelta(hours=8), z + timedelta(hours=16), 0, 2),
    ]
    assert b.gaps[0].slot_start.isoformat() == "2022-11-26T08:00:00+08:00"  # local time
    d = m["D"].checkpoints  # the compound in no grid belongs to the grid of its building
    assert (d.checkpoints, d.slots, d.slots_covered, d.status, d.gaps) == (1, 4, 4, "ok", [])
    assert m["A"].checkpoints.status == "no_checkpoints"


def _independent_share(session, grid_id, kind, dist):
    """Households of the grid within ``dist`` of any point of ``kind``, on pyproj's geodesic."""
    points = [wkb.loads(bytes(r[0])) for r in session.execute(
        text("SELECT ST_AsBinary(geom) FROM service_point WHERE kind = :k"), {"k": kind})]
    homes = [wkb.loads(bytes(r[0])) for r in session.execute(text(
        "SELECT ST_AsBinary(h.geom) FROM household h JOIN building b ON b.id = h.building_id WHERE b.grid_id = :g"),
        {"g": grid_id})]
    lons, lats = np.array([h.x for h in homes]), np.array([h.y for h in homes])
    nearest = np.full(len(homes), np.inf)
    for p in points:
        _, _, d = GEOD.inv(lons, lats, np.full(len(homes), p.x), np.full(len(homes), p.y))
        nearest = np.minimum(nearest, d)
    return int((nearest <= dist).sum())


def test_share_of_households_within_walking_distance(fx, settings, session):
    m = fx.metrics(settings)
    # Built at 900 m (A1, 300 households) and 1100 m (A2, 220) from the testing point, the other
    # way round from the supply point.
    want = {"A": {"testing_point": 300, "supply_point": 220, "vaccination_point": 0},
            "B": {"testing_point": 0, "supply_point": 350, "vaccination_point": 0},
            "D": {"testing_point": 0, "supply_point": 130, "vaccination_point": 0},
            "E": {"testing_point": 0, "supply_point": 0, "vaccination_point": 0}}
    for name, kinds in want.items():
        got = m[name].services
        assert (got.distance_m, got.measure) == (1000.0, "straight-line")
        for kind, n in kinds.items():
            assert got.kinds[kind].households_within == n
            assert got.kinds[kind].share == pytest.approx(n / m[name].households, abs=1e-4)
            assert n == _independent_share(session, fx.grid[name], kind, settings.service_walk_distance_m)


def test_home_observation_days_left(fx, settings):
    m = fx.metrics(settings)
    d = m["D"].home_observation
    assert (d.count, d.days) == (2, 14)
    assert [(p.key_person_id, p.days_left, p.categories) for p in d.people] == [
        (fx.person["O2"], 1, ["risk_area_arrival"]),
        (fx.person["O1"], 14, ["home_isolation"]),
    ]
    assert m["B"].home_observation.count == 0


def test_staffing_gaps_and_volunteers_from_neighbours(fx, settings, session, now):
    result = staffing_gaps(session, settings, now)
    ours = set(fx.grid.values())
    gaps = sorted((gp["code"], gp["reason"]) for gp in result.gaps if gp["grid_id"] in ours)
    assert gaps == [("T-A", "leader_over"), ("T-A", "volunteers_short"), ("T-E", "no_leader")]
    short = next(gp for gp in result.gaps if gp["grid_id"] == fx.grid["A"] and gp["reason"] == "volunteers_short")
    assert short["numbers"]["short"] == 18 - 5
    # B (10 spare, shares A's border) gives all it has; E touches A at a corner only, D is not next to A.
    moves = [(mv["from_code"], mv["to_code"], mv["volunteers"]) for mv in result.moves
             if mv["to_grid"] in ours or mv["from_grid"] in ours]
    assert moves == [("T-B", "T-A", 10)]
    assert short["numbers"]["still_short_after_moves"] == 3
    assert result.moves[0]["reason"] == "volunteers_short"
    json.dumps(result.as_dict(), ensure_ascii=False)


def test_load_of_each_point_against_its_capacity(fx, settings, session):
    total = sum(n for _g, _c, n in BUILDINGS.values())
    testing = next(p for p in service_load(session, settings, "testing_point") if p["id"] == fx.testing)
    assert (testing["households"], testing["households_within"], testing["capacity"]) == (total, 300, 400)
    assert testing["load"] == pytest.approx(total / 400, abs=1e-3) and testing["status"] == "over"
    assert testing["measure"] == "straight-line"
    supply = next(p for p in service_load(session, settings, "supply_point") if p["id"] == fx.supply)
    assert (supply["households"], supply["households_within"], supply["status"]) == (total, 220 + 350 + 130, "ok")


def test_moving_a_point_changes_only_what_the_full_recomputation_does(fx, settings, session):
    metrics = grid_metrics(session, settings, fx.now, list(fx.grid.values()))
    before = service_coverage(session, settings, kinds=("testing_point",))
    old = wkb.loads(bytes(session.execute(
        text("SELECT ST_AsBinary(geom) FROM service_point WHERE id = :id"), {"id": fx.testing}).scalar_one()))
    session.execute(text("UPDATE service_point SET geom = ST_GeomFromEWKB(:g) WHERE id = :id"),
                    {"id": fx.testing, "g": shapely.to_wkb(shapely.set_srid(deg(Point(-200, 500)), 4326),
                                                          include_srid=True)})
    change = recompute_service_coverage(session, settings, fx.testing, old)
    assert change.grids == [GridCoverageDelta(fx.grid["A"], 220, 0)]  # A2 now at 900 m
    assert change.households_checked == 520
    after = service_coverage(session, settings, kinds=("testing_point",))
    assert after[fx.grid["A"]]["testing_point"] == before[fx.grid["A"]]["testing_point"] + 220
    apply_coverage_change(metrics, change)
    fresh = grid_metrics(session, settings, fx.now, list(fx.grid.values()))
    assert [m.services for m in metrics] == [m.services for m in fresh]


def test_incremental_matches_full_on_the_demo_points(session, settings):
    points = session.execute(text(
        "SELECT id, kind, ST_AsBinary(geom) FROM service_point WHERE kind IN ('testing_point', 'supply_point') "
        "ORDER BY id LIMIT 4")).all()
    assert points
    for pid, kind, geom in points:
        before = service_coverage(session, settings, kinds=(kind,))
        old = wkb.loads(bytes(geom))
        session.execute(text("UPDATE service_point SET geom = ST_Translate(geom, 0.004, 0.001) WHERE id = :id"),
                        {"id": pid})
        change = recompute_service_coverage(session, settings, pid, old)
        after = service_coverage(session, settings, kinds=(kind,))
        expected = {gid: dict(k) for gid, k in before.items()}
        for d in change.grids:
            expected[d.grid_id][kind] += d.gained - d.lost
        assert expected == after


def test_metrics_for_every_grid_of_the_demo(session, settings, now):
    grids = session.execute(text("SELECT count(*) FROM grid")).scalar_one()
    metrics = grid_metrics(session, settings, now)
    assert len(metrics) == grids and [m.code for m in metrics] == sorted(m.code for m in metrics)
    assert sum(m.households for m in metrics) == session.execute(text("SELECT count(*) FROM household")).scalar_one()
    data = json.loads(json.dumps([m.as_dict() for m in metrics], ensure_ascii=False))
    assert {"leaders", "delivery", "contacts", "checkpoints", "services", "home_observation"} <= set(data[0])
    assert grid_metrics(session, settings, now, []) == []
    with pytest.raises(ValueError):
        grid_metrics(session, settings, now.replace(tzinfo=None))


def test_demo_activity_gives_the_wall_something_to_show(session, settings, now):
    # load_demo (tests/conftest.py) seeded activity already: a second seed is refused ...
    with pytest.raises(ActivityAlreadySeeded):
        seed_demo_activity(session, settings, now, 7)
    # ... and replacing it is deterministic.
    written = seed_demo_activity(session, settings, now, 3, replace=True)
    assert written["contact_log"] > 0 and written["duty_shift"] > 0
    metrics = grid_metrics(session, settings, now)
    vulnerable = sum(m.contacts.vulnerable for m in metrics)
    on_time = sum(m.contacts.on_time for m in metrics)
    assert 0.7 < on_time / vulnerable < 0.95
    slots = sum(m.checkpoints.slots for m in metrics)
    covered = sum(m.checkpoints.slots_covered for m in metrics)
    assert 0 < slots - covered < 0.3 * slots  # a few gaps, not a collapse
    rows = "SELECT key_person_id, staff_id, contacted_at, method FROM contact_log ORDER BY 1, 3"
    shifts = "SELECT checkpoint_id, staff_id, starts_at, ends_at FROM duty_shift ORDER BY 1, 3, 2"
    first = (session.execute(text(rows)).all(), session.execute(text(shifts)).all())
    seed_demo_activity(session, settings, now, 3, replace=True)
    assert (session.execute(text(rows)).all(), session.execute(text(shifts)).all()) == first


def test_cli_prints_metrics_and_gaps_as_json(settings, monkeypatch, capsys):
    from gridmap import cli

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    assert cli.main(["coverage", "--json"]) == 0
    grids = json.loads(capsys.readouterr().out)
    assert grids and {"id", "code", "leaders", "services"} <= set(grids[0])
    assert cli.main(["coverage", "gaps", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"gaps", "moves"}
    assert cli.main(["coverage", "load", "nonsense"]) == 2


def test_kept_coverage_equals_a_full_recomputation_after_every_change(fx, settings, session):
    from gridmap.services.coverage import kept_service_coverage, refresh_service_coverage

    def check(what):
        kept = kept_service_coverage(session, settings)
        full = service_coverage(session, settings)
        full = {gid: {k: n for k, n in kinds.items() if n} for gid, kinds in full.items()}
        assert kept == {gid: kinds for gid, kinds in full.items() if kinds}, what
        assert session.execute(text("SELECT count(*) FROM service_coverage_dirty")).scalar_one() == 0, what

    assert refresh_service_coverage(session, settings, full=True).mode == "full"
    check("full")
    assert refresh_service_coverage(session, settings).mode == "fresh"
    move = "UPDATE service_point SET geom = ST_GeomFromEWKB(:g) WHERE id = :id"
    at = lambda x, y: shapely.to_wkb(shapely.set_srid(deg(Point(x, y)), 4326), include_srid=True)  # noqa: E731
    session.execute(text(move), {"id": fx.testing, "g": at(-200, 500)})
    assert refresh_service_coverage(session, settings).mode == "repaired"
    check("testing point moved")
    session.execute(text(move), {"id": fx.supply, "g": at(2500, 900)})
    session.execute(text("UPDATE service_point SET kind = 'vaccination_point' WHERE id = :id"), {"id": fx.testing})
    check("supply point moved, testing point re-kinded")
    new_point = fx.add(ServicePoint(community_id=fx.community, kind="testing_point", name="T新点",
                                    geom=g(Point(1500, 1500))))
    check("point added")
    session.execute(text("DELETE FROM service_point WHERE id = :id"), {"id": fx.supply})
    check("point deleted")
    session.execute(text(
        "INSERT INTO household (building_id, room, residents, geom) "
        "SELECT b.id, 'n' || k, 1, ST_Centroid(b.geom) FROM building b, generate_series(1, 40) k WHERE b.id = :b"),
        {"b": fx.building["E1"]})
    check("households added")
    session.execute(text("DELETE FROM household WHERE id = ANY(:ids)"), {"ids": fx.households["B1"][10:60]})
    check("households deleted")
    session.execute(text("UPDATE household SET building_id = :b, geom = (SELECT ST_Centroid(geom) FROM building "
                         "WHERE id = :b) WHERE id = ANY(:ids)"),
                    {"b": fx.building["A1"], "ids": fx.households["D2"][:20]})
    check("households moved to another building")
    session.execute(text("UPDATE building SET grid_id = :g WHERE id = :b"), {"g": fx.grid["E"], "b": fx.building["B2"]})
    check("building moved to another grid")
    session.execute(text("DELETE FROM building WHERE id = :b"), {"b": fx.building["D1"]})
    check("building deleted with its households")
    session.execute(text("DELETE FROM service_point WHERE id = :id"), {"id": new_point})
    settings_far = settings.model_copy(update={"service_walk_distance_m": 2500.0})
    assert refresh_service_coverage(session, settings_far).mode == "full"  # another distance: all again
    check_far = kept_service_coverage(session, settings_far)
    assert check_far == {gid: {k: n for k, n in kinds.items() if n}
                         for gid, kinds in service_coverage(session, settings_far).items()
                         if any(kinds.values())}


def test_kept_staff_counts_equal_a_full_recomputation_after_every_change(fx, settings, session):
    from gridmap.services.coverage import kept_staff_by_grid, refresh_staff_counts, staff_by_grid

    def check(what, mode="repaired"):
        assert refresh_staff_counts(session).mode == mode, what
        assert kept_staff_by_grid(session, None) == staff_by_grid(session, None), what
        some = [fx.grid["A"], fx.grid["B"], fx.grid["E"]]
        assert kept_staff_by_grid(session, some) == staff_by_grid(session, some), what
        assert session.execute(text("SELECT count(*) FROM staff_count_dirty")).scalar_one() == 0, what

    assert refresh_staff_counts(session, full=True).mode == "full"
    check("full", "fresh")
    assert kept_staff_by_grid(session, [fx.grid["A"]])[fx.grid["A"]] == {"grid_leader": 1, "volunteer": 5}
    fx.add(StaffAssignment(staff_id=fx.staff["VD1"], household_id=fx.households["E1"][0]))
    check("household-level assignment added")
    session.execute(text("UPDATE staff SET role = 'medical' WHERE id = :id"), {"id": fx.staff["VB1"]})
    check("role changed")
    session.execute(text("UPDATE staff SET active = false WHERE id = :id"), {"id": fx.staff["LB"]})
    session.execute(text("UPDATE staff SET active = true WHERE id = :id"), {"id": fx.staff["VA6"]})
    check("staff deactivated and activated")
    session.execute(text("UPDATE staff_assignment SET grid_id = :g WHERE staff_id = :s AND grid_id IS NOT NULL"),
                    {"g": fx.grid["E"], "s": fx.staff["VA2"]})
    check("assignment moved to another grid")
    session.execute(text("DELETE FROM staff_assignment WHERE staff_id = :s"), {"s": fx.staff["VA3"]})
    check("assignment deleted")
    session.execute(text("UPDATE household SET building_id = :b, room = 'moved' WHERE id = :h"),
                    {"b": fx.building["E1"], "h": fx.households["A1"][0]})
    check("household with an assignment moved to another grid's building")
    session.execute(text("DELETE FROM household WHERE id = ANY(:ids)"), {"ids": fx.households["B2"][7:10]})
    check("households with assignments deleted")
    session.execute(text("UPDATE building SET grid_id = :g WHERE id = :b"), {"g": fx.grid["D"], "b": fx.building["B1"]})
    check("building with assignments moved to another grid")
    session.execute(text("DELETE FROM building WHERE id = :b"), {"b": fx.building["A2"]})
    check("building with an assignment deleted")
    session.execute(text("DELETE FROM staff WHERE id = :id"), {"id": fx.staff["SW"]})
    check("staff deleted")
    session.execute(text("TRUNCATE staff_assignment"))
    check("assignments truncated", "full")
    assert kept_staff_by_grid(session, None) == {}


def test_kept_key_person_counts_equal_a_full_recomputation_after_every_change(fx, settings, session):
    from gridmap.services.coverage import (
        kept_key_persons_by_grid,
        key_person_counts_by_grid,
        key_persons_by_grid,
        refresh_key_person_counts,
    )

    def check(what, mode="repaired"):
        assert refresh_key_person_counts(session).mode == mode, what
        assert kept_key_persons_by_grid(session, None) == key_persons_by_grid(session, None), what
        some = [fx.grid["A"], fx.grid["B"], fx.grid["D"], fx.grid["E"]]
        assert kept_key_persons_by_grid(session, some) == key_persons_by_grid(session, some), what
        assert session.execute(text("SELECT count(*) FROM key_person_count_dirty")).scalar_one() == 0, what

    assert refresh_key_person_counts(session, full=True).mode == "full"
    check("full", "fresh")
    # The definition: distinct persons through their household's building, with or without a category.
    kept = kept_key_persons_by_grid(session, [fx.grid["B"], fx.grid["D"]])
    assert kept[fx.grid["B"]][0] == 5 and kept[fx.grid["D"]][0] == 5
    person = lambda name, b, k: KeyPerson(  # noqa: E731
        household_id=fx.households[b][k], name=name, version=1, geom=g(Point(*BUILDINGS[b][1])))
    nobody = fx.add(person("N1", "E1", 0))  # no category: counted all the same
    check("person without a category added")
    assert key_person_counts_by_grid(session, [fx.grid["E"]]) == {fx.grid["E"]: 1}
    session.execute(text("UPDATE key_person SET household_id = :h WHERE id = :p"),
                    {"h": fx.households["A1"][1], "p": fx.person["P5"]})
    check("person moved to another grid's household")
    session.execute(text("UPDATE key_person SET observation_start = NULL WHERE id = :p"), {"p": fx.person["O1"]})
    check("person updated in place", "fresh")
    session.execute(text("DELETE FROM key_person WHERE id = ANY(:ids)"), {"ids": [fx.person["P1"], nobody]})
    check("persons deleted")
    session.execute(text("UPDATE household SET building_id = :b, room = 'moved' WHERE id = :h"),
                    {"b": fx.building["E1"], "h": fx.households["B1"][1]})
    check("household with a person moved to another grid's building")
    session.execute(text("DELETE FROM household WHERE id = :h"), {"h": fx.households["B1"][2]})
    check("household with a person deleted")
    session.execute(text("UPDATE building SET grid_id = :g WHERE id = :b"), {"g": fx.grid["A"], "b": fx.building["D1"]})
    check("building with persons moved to another grid")
    session.execute(text("DELETE FROM building WHERE id = :b"), {"b": fx.building["B1"]})
    check("building with persons deleted")
    session.execute(text("TRUNCATE key_person CASCADE"))
    check("persons truncated", "full")
    # (The per-category counts of 0008/0010 do not follow a TRUNCATE; the persons do.)
    assert all(n == 0 for n, _categories in kept_key_persons_by_grid(session, None).values())


def test_all_grid_metrics_read_contacts_alongside_yet_see_this_transactions_writes(session, settings, now):
    """For all grids the contacts are read on a second connection while the rest are read here:
    the same figures as read here, while this transaction has written nothing; after a write they
    are read here, so the uncommitted contact counts."""
    inline = contacts_by_grid(session, settings, now, None)
    assert session.execute(text("SELECT pg_current_xact_id_if_assigned() IS NULL")).scalar_one()
    metrics = grid_metrics(session, settings, now)
    assert {m.id: (m.contacts.vulnerable, m.contacts.on_time, [o.key_person_id for o in m.contacts.overdue])
            for m in metrics if m.contacts.vulnerable} == \
        {g: (v, on_time, [o.key_person_id for o in late]) for g, (v, on_time, late) in inline.items()}
    grid_id, person = next((g, late[0].key_person_id) for g, (_v, _n, late) in sorted(inline.items()) if late)
    for hours in (1, 2, 3, 4):
        session.add(ContactLog(key_person_id=person, contacted_at=now - timedelta(hours=hours), method="phone"))
    session.flush()
    after = {m.id: m for m in grid_metrics(session, settings, now)}[grid_id]
    assert person not in [o.key_person_id for o in after.contacts.overdue]
    assert after.contacts.on_time == inline[grid_id][1] + 1
