"""Coverage views on the small demo district: the choropleth equals grid_metrics for every metric,
the ranking is worst first, the wall's figures equal the services', and logging a contact is
refused outside one's area and moves the grid's on-time share."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from gridmap.domain.errors import InvalidInput
from gridmap.services import contacts, coverage_layers
from gridmap.services.access import AccessDenied, load_principal, make_principal
from gridmap.services.coverage import grid_metrics, staffing_gaps
from gridmap.services.reports import report_status

# Each metric's value read from GridMetrics.as_dict(), written out here rather than taken from the
# module under test.
EXPECTED = {
    "households_per_leader": lambda d: d["leaders"]["households_per_leader"],
    "contact_on_time": lambda d: d["contacts"]["share_on_time"],
    "uncovered_slots": lambda d: (d["checkpoints"]["slots"] - d["checkpoints"]["slots_covered"]
                                  if d["checkpoints"]["checkpoints"] else None),
    "testing_coverage": lambda d: d["services"]["kinds"]["testing_point"]["share"],
    "volunteers_per_100": lambda d: d["delivery"]["volunteers_per_100_households"],
    "home_observation": lambda d: d["home_observation"]["count"],
}


def _user(session, username: str):
    uid = session.execute(text("SELECT id FROM app_user WHERE username = :u"), {"u": username}).scalar_one()
    return load_principal(session, uid)


def test_every_metric_is_covered():
    assert set(EXPECTED) == set(coverage_layers.METRICS)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_choropleth_values_equal_grid_metrics(session, settings, now, key):
    metrics = {m.id: m.as_dict() for m in grid_metrics(session, settings, now)}
    fc = coverage_layers.choropleth_geojson(session, settings, now, key)
    assert fc["type"] == "FeatureCollection" and fc["metric"] == key
    assert {f["id"] for f in fc["features"]} == set(metrics)
    for f in fc["features"]:
        p = f["properties"]
        assert p["value"] == EXPECTED[key](metrics[f["id"]]), (key, p["code"])
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    classes = {c["code"]: c for c in fc["classes"]}
    assert all(f["properties"]["class"] in classes for f in fc["features"])
    assert all(f["properties"]["color"] == classes[f["properties"]["class"]]["color"] for f in fc["features"])
    # Worst first: class ranks never go down the list.
    ranks = [f["properties"]["rank"] for f in fc["features"]]
    assert ranks == sorted(ranks)
    assert [f["properties"]["position"] for f in fc["features"]] == list(range(1, len(fc["features"]) + 1))


def test_leader_classes_follow_the_settings(session, settings, now):
    rows = coverage_layers.ranking(session, settings, now, "households_per_leader")
    lo, hi = settings.households_per_grid_min, settings.households_per_grid_max
    for r in rows:
        v = r["value"]
        expected = "no_leader" if v is None else "over" if v > hi else "under" if v < lo else "ok"
        assert r["class"] == expected, r
    # Within a class the worse end first: more households per leader first among the over-loaded.
    over = [r["value"] for r in rows if r["class"] == "over"]
    assert over == sorted(over, reverse=True)
    tight = settings.model_copy(update={"households_per_grid_max": 100})
    assert any(r["class"] == "over" for r in coverage_layers.ranking(session, tight, now, "households_per_leader"))


def test_share_classes_and_unknown_metric(session, settings, now):
    rows = coverage_layers.ranking(session, settings, now, "contact_on_time")
    for r in rows:
        v = r["value"]
        expected = ("none" if v is None else "all" if v >= 1 else "most" if v >= coverage_layers.SHARE_WARN
                    else "low")
        assert r["class"] == expected
    shares = [r["value"] for r in rows if r["class"] == "low"]
    assert shares == sorted(shares)
    with pytest.raises(InvalidInput) as exc:
        coverage_layers.choropleth_geojson(session, settings, now, "nonsense")
    assert exc.value.code == "unknown_metric"


def test_households_by_class_counts_each_household_once(session, settings, now):
    rows = {r["code"]: r for r in coverage_layers.households_by_class(session, settings, now)}
    total = session.execute(text("SELECT sum(households) FROM building")).scalar_one()
    rated = session.execute(text(
        "SELECT coalesce(sum(b.households), 0) FROM building b JOIN grid g ON g.id = b.grid_id WHERE EXISTS ("
        " SELECT 1 FROM risk_assignment ra WHERE (ra.grid_id = g.id OR ra.community_id = g.community_id)"
        " AND ra.valid_from <= :now AND (ra.valid_to IS NULL OR ra.valid_to > :now))"), {"now": now}).scalar_one()
    assert sum(r["households"] for r in rows.values()) == rated <= total
    assert set(rows) >= {"sealed", "controlled", "precaution", "high", "medium", "low"}

    # Seal one grid by assignment: its households leave their community's class for 'sealed'.
    grid = session.execute(text(
        "SELECT g.id, g.households FROM grid g WHERE g.households > 0"
        " AND NOT EXISTS (SELECT 1 FROM risk_assignment ra WHERE ra.grid_id = g.id)"
        " AND EXISTS (SELECT 1 FROM risk_assignment ra WHERE ra.community_id = g.community_id"
        "   AND ra.valid_from <= :now AND (ra.valid_to IS NULL OR ra.valid_to > :now))"
        " ORDER BY g.id LIMIT 1"), {"now": now}).one()
    session.execute(text(
        "INSERT INTO risk_assignment (grid_id, risk_class_id, valid_from, reason, author)"
        " SELECT :g, id, :at, 'test', 'test' FROM risk_class WHERE code = 'sealed'"),
        {"g": grid.id, "at": now - timedelta(hours=1)})
    after = {r["code"]: r for r in coverage_layers.households_by_class(session, settings, now)}
    assert after["sealed"]["households"] == rows["sealed"]["households"] + grid.households
    assert sum(r["households"] for r in after.values()) == sum(r["households"] for r in rows.values())


def test_wall_figures_equal_the_services(session, settings, now):
    w = coverage_layers.wall_figures(session, settings, now)
    metrics = grid_metrics(session, settings, now)
    assert w.overdue_contacts == sum(len(m.contacts.overdue) for m in metrics)
    assert w.uncovered_slots == sum(len(m.checkpoints.gaps) for m in metrics)
    assert w.grids_with_gaps == len({g["grid_id"] for g in staffing_gaps(session, settings, now).gaps})
    today = now.astimezone(coverage_layers.local_tz(settings)).date()
    status = report_status(session, settings, today, now)
    assert w.reports_missing == status.totals.missing
    assert w.communities == status.totals.communities
    assert len(w.contacts_per_day) == coverage_layers.TREND_DAYS
    assert w.contacts_per_day[-1]["day"] == today.isoformat()
    since = now - timedelta(days=coverage_layers.TREND_DAYS + 1)
    logged = session.execute(text("SELECT count(*) FROM contact_log WHERE contacted_at > :s AND contacted_at <= :n"),
                             {"s": since, "n": now}).scalar_one()
    assert 0 < sum(d["count"] for d in w.contacts_per_day) <= logged
    assert w.as_dict()["report_date"] == today.isoformat()


def test_grid_sheet_geojson(session):
    grid_id = session.execute(text("SELECT min(id) FROM grid")).scalar_one()
    fc = coverage_layers.grid_sheet_geojson(session, grid_id)
    buildings = session.execute(text("SELECT count(*) FROM building WHERE grid_id = :g"), {"g": grid_id}).scalar_one()
    kinds = [f["properties"]["kind"] for f in fc["features"]]
    assert kinds.count("grid") == 1 and kinds.count("building") == buildings
    west, south, east, north = fc["bbox"]
    assert west < east and south < north
    # Counts only: no person's name anywhere in the features.
    assert all(set(f["properties"]) <= {"kind", "id", "name", "code", "floors", "households", "residents",
                                        "key_persons"} for f in fc["features"])


# --- logging a contact -------------------------------------------------------------------------


def _due_person(session, settings, now, grid_id):
    """A vulnerable person of the grid not contacted on time, with no contact in the window."""
    leader = _user(session, "gridleader")
    due = [s for s in contacts.grid_contact_status(session, leader, settings, grid_id, now)
           if s.status == contacts.DUE and s.contacts_in_window == 0]
    assert due, "the demo grid should have someone overdue"
    return due[0]


def test_log_contact_moves_the_on_time_share(session, settings, now):
    leader = _user(session, "gridleader")
    grid_id = leader.area_id
    person = _due_person(session, settings, now, grid_id)
    (before,) = grid_metrics(session, settings, now, [grid_id])

    first = contacts.log_contact(session, leader, person.key_person_id, "visit", "normal", "门口交谈", now)
    assert first.grid_id == grid_id and first.status.status == contacts.DUE
    assert first.status.contacts_in_window == 1
    assert first.staff_id is not None  # recorded under the grid leader's staff row
    later = now + timedelta(minutes=5)
    second = contacts.log_contact(session, leader, person.key_person_id, "phone", "normal", "", later)
    assert second.status.status == contacts.ON_TIME

    (after,) = grid_metrics(session, settings, later, [grid_id])
    assert after.contacts.on_time == before.contacts.on_time + 1
    assert after.contacts.share_on_time > before.contacts.share_on_time
    assert person.key_person_id not in {o.key_person_id for o in after.contacts.overdue}
    row = session.execute(text("SELECT method, outcome, note FROM contact_log WHERE id = :id"),
                          {"id": first.id}).one()
    assert tuple(row) == ("visit", "normal", "门口交谈")


def test_log_contact_refused_outside_the_area(session, settings, now):
    volunteer = _user(session, "volunteer")
    inside = _due_person(session, settings, now, volunteer.area_id)
    other = session.execute(text(
        "SELECT kp.id FROM key_person kp JOIN household h ON h.id = kp.household_id"
        " JOIN building b ON b.id = h.building_id WHERE b.grid_id <> :g ORDER BY kp.id LIMIT 1"),
        {"g": volunteer.area_id}).scalar_one()
    count = session.execute(text("SELECT count(*) FROM contact_log")).scalar_one()
    with pytest.raises(AccessDenied):
        contacts.log_contact(session, volunteer, other, "visit", "normal", "", now)
    # A commander does no field work; an auditor changes nothing.
    for name in ("commander", "auditor"):
        with pytest.raises(AccessDenied):
            contacts.log_contact(session, _user(session, name), inside.key_person_id, "visit", "normal", "", now)
    assert session.execute(text("SELECT count(*) FROM contact_log")).scalar_one() == count

    # Inside the grid the volunteer may log one.
    done = contacts.log_contact(session, volunteer, inside.key_person_id, "wechat", "needs_help", "", now)
    assert done.status.contacts_in_window == 1
    assert done.status.masked  # a volunteer never sees the name in clear


@pytest.mark.parametrize(("method", "outcome", "note", "code"), [
    ("fax", "normal", "", "bad_method"),
    ("visit", "  ", "", "outcome_required"),
    ("visit", "x" * 201, "", "outcome_too_long"),
    ("visit", "normal", "x" * 2001, "note_too_long"),
])
def test_log_contact_bad_input_writes_nothing(session, settings, now, method, outcome, note, code):
    leader = _user(session, "gridleader")
    person = _due_person(session, settings, now, leader.area_id)
    count = session.execute(text("SELECT count(*) FROM contact_log")).scalar_one()
    with pytest.raises(InvalidInput) as exc:
        contacts.log_contact(session, leader, person.key_person_id, method, outcome, note, now)
    assert exc.value.code == code
    assert session.execute(text("SELECT count(*) FROM contact_log")).scalar_one() == count


def test_contact_status_masks_for_those_above(session, settings, now):
    leader = _user(session, "gridleader")
    commander = _user(session, "commander")
    clear = {s.key_person_id: s for s in contacts.grid_contact_status(session, leader, settings, leader.area_id, now)}
    masked = contacts.grid_contact_status(session, commander, settings, leader.area_id, now)
    assert len(masked) == len(clear) > 0
    names = dict(session.execute(text("SELECT id, name FROM key_person WHERE id = ANY(:ids)"),
                                 {"ids": list(clear)}).all())
    for s in masked:
        assert s.masked and s.categories == []
        assert s.name != names[s.key_person_id] and s.name[0] == names[s.key_person_id][0]
        assert s.status == clear[s.key_person_id].status
    assert all(not s.masked and s.name == names[s.key_person_id] for s in clear.values())
    # Due first, then on time, then those who need no regular contact.
    order = [s.status for s in masked]
    assert order == sorted(order, key=[contacts.DUE, contacts.ON_TIME, contacts.NOT_REQUIRED].index)
    # A user of another grid may not open this one.
    other_grid = session.execute(text("SELECT id FROM grid WHERE id <> :g ORDER BY id LIMIT 1"),
                                 {"g": leader.area_id}).scalar_one()
    stranger = make_principal(session, user_id=-1, username="t_gl", role="grid_leader", area_level="grid",
                              area_id=other_grid)
    with pytest.raises(AccessDenied):
        contacts.grid_contact_status(session, stranger, settings, leader.area_id, now)


# --- the route the command map's choropleth loads ------------------------------------------------


def test_choropleth_route(database_url):
    from gridmap.config import Settings
    from gridmap.web import create_app
    from tests.web.conftest import login_client

    app = create_app(Settings(database_url=database_url, tile_url=""))
    anonymous = app.server.test_client()
    assert anonymous.get("/api/coverage/contact_on_time.geojson").status_code == 401
    client = login_client(app.server.test_client())
    response = client.get("/api/coverage/contact_on_time.geojson?v=3")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    assert "no-store" in response.headers["Cache-Control"]
    body = response.get_json()
    assert body["metric"] == "contact_on_time" and body["features"]
    assert {"value", "class", "color", "text", "rank"} <= set(body["features"][0]["properties"])
    missing = client.get("/api/coverage/nonsense.geojson")
    assert missing.status_code == 404 and missing.get_json()["code"] == "unknown_metric"


def test_choropleth_sends_values_for_the_grid_layer_features(session, settings, now):
    """Issue 8: the command map's choropleth styles the grid layer's own features by values; every
    grid of that layer has its class, printed value and position (worst first), as the ranking."""
    from gridmap.services import layers
    from gridmap.web.coverage_components import choropleth_values

    metric = next(m for m in coverage_layers.metric_catalogue(settings) if m["key"] == "households_per_leader")
    rows = coverage_layers.ranking(session, settings, now, metric["key"])
    hideout = choropleth_values(metric, rows)
    grid_ids = {str(f["properties"]["id"]) for f in layers.layer_geojson(session, "grid")["features"]}
    assert set(hideout["values"]) == grid_ids
    assert [hideout["values"][str(r["grid_id"])] for r in rows] == [
        [r["class"], r["text"], n] for n, r in enumerate(rows, start=1)]
    assert {v[0] for v in hideout["values"].values()} <= set(hideout["colors"])
    assert hideout["colors"] == {c["code"]: c["color"] for c in metric["classes"]}
