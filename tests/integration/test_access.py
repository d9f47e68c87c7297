"""The security suite, through the services: every role × area × table, bad inputs, and lost updates.

For each principal (the demo users and one of every role bound to every area of the small demo
district) and each table holding personal data, the rows the services hand out are compared with
the rows expected from the principal's area, computed here independently, and every personal value
with the stored one: in clear where the rules say so, masked otherwise. Bad inputs each expect
their error code and change no row. The figures (cases tried, rows checked, bad inputs) are written
to test-artifacts/security-summary.json together with those of test_rls.py (SQL with SET ROLE).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.domain import access as rules
from gridmap.domain.errors import GridmapError
from gridmap.services import access, auth, layers
from gridmap.services.access import AccessDenied, KeyPersonConflict, Principal, make_principal
from gridmap.services.backup import restore
from gridmap.services.exporting import export_layer, load_layer
from gridmap.services.importing import import_layer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SUMMARY = ARTIFACTS / "security-summary.json"

# --- the summary -----------------------------------------------------------------------------------------

COUNTS: Counter = Counter()


def count(kind: str, n: int = 1) -> None:
    """Add ``n`` to a figure of the security summary (kept per module and worker, summed in the file)."""
    COUNTS[kind] += n


def write_summary(module: str, counts: Counter) -> None:
    """Merge this worker's figures for ``module`` into SUMMARY (under a lock: xdist workers share it)."""
    if not counts:
        return
    ARTIFACTS.mkdir(exist_ok=True)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"single-{os.getppid()}-{os.getpid()}"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(ARTIFACTS / ".security-summary.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}
        except ValueError:
            data = {}
        if data.get("run") != run:
            data = {"run": run, "parts": {}}
        data["parts"][f"{module}@{worker}"] = dict(counts)
        totals: Counter = Counter()
        for part in data["parts"].values():
            totals.update(part)
        data["totals"] = dict(sorted(totals.items()))
        data["written_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        SUMMARY.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    write_summary("test_access", COUNTS)
    print(f"\nsecurity suite (services): {dict(COUNTS)}")


# --- principals ------------------------------------------------------------------------------------------


def _places(session: Session) -> list[dict]:
    return [dict(r) for r in session.execute(text(
        "SELECT g.id AS grid, g.community_id AS community, c.subdistrict_id AS subdistrict, s.district_id AS district "
        "FROM grid g JOIN community c ON c.id = g.community_id JOIN subdistrict s ON s.id = c.subdistrict_id "
        "ORDER BY g.id")).mappings()]


def _principals(session: Session) -> list[Principal]:
    """The demo users, then one principal of every role at every area level it may be bound to."""
    out = []
    for user in auth.list_users(session):
        out.append(access.load_principal(session, user.id))
    places = _places(session)
    levels = {level: sorted({p[level] for p in places}) for level in rules.AREA_LEVELS}
    n = 0
    for role, allowed in rules.ROLE_LEVELS.items():
        for level in allowed:
            for area_id in levels[level]:
                n += 1
                out.append(make_principal(session, user_id=-n, username=f"t_{role}_{level}_{area_id}", role=role,
                                          area_level=level, area_id=area_id))
    return out


@pytest.fixture(scope="module")
def principals(engine) -> list[Principal]:
    with Session(engine) as session:
        return _principals(session)


def _grids_of(session: Session, p: Principal) -> set[int]:
    """The grids of the principal's area, from its binding alone (not from Principal.grid_ids)."""
    return {pl["grid"] for pl in _places(session) if pl[p.area_level] == p.area_id}


def _expect_clear(p: Principal, grid: int, community: int) -> bool:
    if p.role == "grid_leader":
        return p.area_level == "grid" and grid == p.area_id
    if p.role == "community_worker":
        return p.area_level == "community" and community == p.area_id
    return False


def _label(p: Principal) -> str:
    return f"{p.role}@{p.area_level}{p.area_id}"


# --- role × area × table through the services --------------------------------------------------------------

_TRUTH_SQL = """
SELECT kp.id, kp.name, kp.phone, kp.id_number, kp.note, b.grid_id, g.community_id
FROM key_person kp JOIN household h ON h.id = kp.household_id JOIN building b ON b.id = h.building_id
JOIN grid g ON g.id = b.grid_id
"""


def _check_person(p: Principal, got: dict, truth: dict) -> None:
    clear = _expect_clear(p, truth["grid_id"], truth["community_id"])
    assert got["masked"] is (not clear), (_label(p), got["id"])
    for column in ("name", "phone", "id_number"):
        expected = truth[column] if clear else rules.mask_value(rules.PERSONAL_COLUMNS["key_person"][column],
                                                                 truth[column])
        assert got[column] == expected, (_label(p), got["id"], column)
    if not clear:
        assert got["note"] is None and got["observation_start"] is None and got["categories"] is None


def test_key_persons_listed_by_role_and_area(session, principals):
    truth = {r["id"]: dict(r) for r in session.execute(text(_TRUTH_SQL)).mappings()}
    assert len(truth) > 100
    rows_checked = 0
    for p in principals:
        grids = _grids_of(session, p)
        got = access.list_key_persons(session, p)
        assert {r["id"] for r in got} == {i for i, t in truth.items() if t["grid_id"] in grids}, _label(p)
        for row in got:
            _check_person(p, row, truth[row["id"]])
        rows_checked += len(got)
        count("service_cases")
    count("service_rows_checked", rows_checked)
    # Someone sees names in clear, someone sees only masks: the check is not vacuous.
    leader = next(p for p in principals if p.username == "gridleader")
    assert any(not r["masked"] for r in access.list_key_persons(session, leader))


def _frame_truth(session: Session, layer: str) -> dict[int, dict]:
    if layer == "household":
        sql = ("SELECT h.id, h.head_name, h.phone, b.grid_id, g.community_id FROM household h "
               "JOIN building b ON b.id = h.building_id JOIN grid g ON g.id = b.grid_id")
    elif layer == "staff":
        sql = "SELECT s.id, s.name, s.phone, NULL::int AS grid_id, s.community_id FROM staff s"
    else:
        sql = _TRUTH_SQL
    return {r["id"]: dict(r) for r in session.execute(text(sql)).mappings()}


@pytest.fixture(scope="module")
def frames(engine) -> dict:
    with Session(engine) as session:
        return {layer: load_layer(session, layer) for layer in ("key_person", "household", "staff")}


@pytest.mark.parametrize("layer", ["key_person", "household", "staff"])
def test_exports_by_role_and_area(session, principals, frames, layer):
    truth = _frame_truth(session, layer)
    communities_of = {pl["grid"]: pl["community"] for pl in _places(session)}
    rows_checked = 0
    for p in principals:
        grids = _grids_of(session, p)
        communities = {communities_of[g] for g in grids}
        frame = access.restrict_frame(session, p, layer, frames[layer].copy())
        if layer == "staff":
            expected_ids = {i for i, t in truth.items() if t["community_id"] in communities}
        else:
            expected_ids = {i for i, t in truth.items() if t["grid_id"] in grids}
        assert set(frame["id"]) == expected_ids, (_label(p), layer)
        personal = rules.PERSONAL_COLUMNS[layer]
        for row in frame.to_dict("records"):
            t = truth[row["id"]]
            if layer == "staff":
                clear = p.role not in rules.STAFF_CONTACT_HIDDEN_ROLES
            else:
                clear = _expect_clear(p, t["grid_id"], t["community_id"])
            for column, kind in personal.items():
                if column not in t:
                    continue
                want = t[column] if clear else rules.mask_value(kind, t[column])
                assert row[column] == want or (row[column] != row[column] and want is None), (_label(p), row["id"])
        rows_checked += len(frame)
        count("service_cases")
    count("service_rows_checked", rows_checked)


def test_key_household_layer_and_details_by_area(session, principals):
    per_grid = dict(session.execute(text(
        "SELECT b.grid_id, count(DISTINCT h.id) FROM household h JOIN building b ON b.id = h.building_id "
        "WHERE EXISTS (SELECT 1 FROM key_person kp WHERE kp.household_id = h.id) GROUP BY b.grid_id")).all())
    outside = {}
    for p in principals:
        grids = _grids_of(session, p)
        fc = layers.layer_geojson(session, "key_household", principal=p)
        assert len(fc["features"]) == sum(n for g, n in per_grid.items() if g in grids), _label(p)
        # No name, phone or ID number in the layer, whoever asks.
        assert all(set(f["properties"]) <= {"id", "code", "name", "persons", "categories", "vulnerable", "case"}
                   for f in fc["features"])
        count("service_cases")
        if p.area_level == "grid" and not outside:
            outside = {"principal": p, "grid": next(g for g in per_grid if g not in grids)}
    other = session.execute(text(
        "SELECT h.id FROM household h JOIN building b ON b.id = h.building_id WHERE b.grid_id = :g AND EXISTS "
        "(SELECT 1 FROM key_person kp WHERE kp.household_id = h.id) LIMIT 1"), {"g": outside["grid"]}).scalar_one()
    with pytest.raises(GridmapError) as err:
        layers.feature_details(session, "key_household", other, principal=outside["principal"])
    assert err.value.code == "not_found"
    count("service_cases")


def test_get_and_reveal_one_key_person(session, principals):
    by_label = {p.username: p for p in principals}
    commander, leader = by_label["commander"], by_label["gridleader"]
    person = session.execute(text(
        _TRUTH_SQL + " WHERE b.grid_id = :g ORDER BY kp.id LIMIT 1"), {"g": leader.area_id}).mappings().one()
    assert access.get_key_person(session, leader, person["id"])["phone"] == person["phone"]
    seen = access.get_key_person(session, commander, person["id"])
    assert seen["masked"] and seen["phone"] == rules.mask_phone(person["phone"])
    before = session.execute(text("SELECT count(*) FROM audit_log WHERE action = 'REVEAL'")).scalar_one()
    value = access.reveal_key_person(session, commander, person["id"], "phone", "送药联系 / medicine delivery")
    assert value == person["phone"]
    entry = session.execute(text(
        "SELECT actor, actor_role, table_name, row_id, detail FROM audit_log WHERE action = 'REVEAL' "
        "ORDER BY id DESC LIMIT 1")).mappings().one()
    assert session.execute(text("SELECT count(*) FROM audit_log WHERE action = 'REVEAL'")).scalar_one() == before + 1
    assert entry["actor"] == "commander" and entry["actor_role"] == "district_commander"
    assert entry["row_id"] == person["id"] and entry["detail"]["field"] == "phone"
    count("service_cases", 3)


def test_export_file_is_masked_and_neutralised(session, principals, tmp_path):
    by_label = {p.username: p for p in principals}
    # A name a spreadsheet would run, in the commander's and the grid leader's view.
    person = session.execute(text(
        _TRUTH_SQL + " WHERE b.grid_id = :g ORDER BY kp.id LIMIT 1"), {"g": by_label["gridleader"].area_id}
    ).mappings().one()
    session.execute(text("UPDATE key_person SET name = '=HYPERLINK(\"http://x\")', phone = '13812341234' "
                         "WHERE id = :id"), {"id": person["id"]})
    name = '=HYPERLINK("http://x")'
    for who, shown_name, shown_phone in (("gridleader", "'" + name, "13812341234"),
                                         ("commander", "'" + rules.mask_name(name), "138****1234")):
        path = tmp_path / f"{who}.xlsx"
        n = export_layer(session, "key_person", path, principal=by_label[who])
        rows = [[c.value for c in r] for r in openpyxl.load_workbook(path).active.iter_rows(min_row=2)]
        assert len(rows) == n == len(access.list_key_persons(session, by_label[who]))
        # The formula is inert text, masked for the commander, in clear for the grid leader.
        assert any(shown_name in r and shown_phone in r for r in rows), who
        assert not any(name in r for r in rows)
        count("service_cases")
    with pytest.raises(AccessDenied):
        export_layer(session, "key_person", tmp_path / "v.csv", principal=by_label["volunteer"])
    count("service_cases")
    assert session.execute(text("SELECT count(*) FROM audit_log WHERE action = 'EXPORT'")).scalar_one() >= 2


# --- bad inputs: the expected error, and nothing changed ------------------------------------------------------

WATCHED = ("key_person", "key_person_category_link", "household", "staff", "service_point", "grid", "community",
           "controlled_area")


def _fingerprint(session: Session) -> dict[str, tuple]:
    out = {}
    for table in WATCHED:
        out[table] = session.execute(text(
            f'SELECT count(*), md5(coalesce(string_agg(md5(t::text), \'\' ORDER BY t.id), \'\')) FROM "{table}" t'
            if table != "key_person_category_link" else
            "SELECT count(*), md5(coalesce(string_agg(key_person_id || ':' || category_id, ',' "
            "ORDER BY key_person_id, category_id), '')) FROM key_person_category_link"
        )).one()
    out["app_user"] = session.execute(text(
        "SELECT count(*), md5(coalesce(string_agg(username || role || area_level || area_id || password_hash, ',' "
        "ORDER BY id), '')) FROM app_user")).one()
    out["audit_log"] = session.execute(text(
        "SELECT md5(coalesce(string_agg(md5(a::text), '' ORDER BY id), '')) FROM audit_log a")).one()
    return out


def _person_in(session, grid_id: int) -> dict:
    return dict(session.execute(text(
        "SELECT kp.id, kp.version FROM key_person kp JOIN household h ON h.id = kp.household_id "
        "JOIN building b ON b.id = h.building_id WHERE b.grid_id = :g ORDER BY kp.id LIMIT 1"), {"g": grid_id}
    ).mappings().one())


def _big_polygon_file(tmp_path: Path, session) -> Path:
    centre = shapely.from_wkb(bytes(session.execute(text(
        "SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM grid ORDER BY id LIMIT 1")).scalar_one()))
    ring = shapely.Point(centre.x, centre.y).buffer(0.0005, quad_segs=64)
    path = tmp_path / "zone.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": shapely.geometry.mapping(ring),
        "properties": {"kind": "delivery_zone", "name": "大区域"}}]}), encoding="utf-8")
    return path


def _bad_inputs():
    """(name, call(session, by_username, settings, tmp_path), expected code); every call must change nothing."""

    def edit(who, changes, base=None, grid="gridleader"):
        def call(s, p, st, tmp):
            person = _person_in(s, p[grid].area_id)
            access.update_key_person(s, p[who], person["id"], person["version"] if base is None else base, changes)
        return call

    def reveal(who, field, reason):
        def call(s, p, st, tmp):
            access.reveal_key_person(s, p[who], _person_in(s, p["gridleader"].area_id)["id"], field, reason)
        return call

    def login(name, password):
        def call(s, p, st, tmp):
            auth.authenticate(s, st, name, password, now=datetime.now(UTC))
        return call

    def user(**kw):
        fields = {"username": "newuser", "password": "long-enough-1", "role": "grid_leader", "area_level": "grid",
                  "area_id": 1, **kw}

        def call(s, p, st, tmp):
            auth.create_user(s, st, **fields)
        return call

    def sql(statement):
        def call(s, p, st, tmp):
            with s.begin_nested():
                s.execute(text(statement))
        return call

    def write_file(name: str, body: bytes):
        def make(tmp):
            path = tmp / name
            path.write_bytes(body)
            return path
        return make

    def imported(layer, make_file, **settings_kw):
        def call(s, p, st, tmp):
            import_layer(s, layer, make_file(tmp), settings=st.model_copy(update=settings_kw))
        return call

    def outside_person(s, p, st, tmp):
        other = next(pr for pr in p.values() if pr.role == "grid_leader" and pr.area_id != p["gridleader"].area_id)
        access.get_key_person(s, p["gridleader"], _person_in(s, other.area_id)["id"])

    def restore_junk(s, p, st, tmp):
        junk = tmp / "junk.dump"
        junk.write_bytes(b"SELECT 1; DROP TABLE key_person;")
        restore(st.database_url, junk, replace=True)

    csv_staff = "name,role,community_code\n张三,grid_leader,C1\n".encode()
    return [
        ("stale key person version", edit("gridleader", {"note": "x"}, base=0), "stale_edit"),
        ("commander edits a key person", edit("commander", {"note": "x"}), "access_denied"),
        ("auditor edits a key person", edit("auditor", {"note": "x"}), "access_denied"),
        ("volunteer edits a key person", edit("volunteer", {"note": "x"}), "access_denied"),
        ("grid leader edits another grid", edit("t_grid_leader_grid_2", {"note": "x"}), "access_denied"),
        ("unknown field household_id", edit("gridleader", {"household_id": 1}), "bad_field"),
        ("field version", edit("gridleader", {"version": 99}), "bad_field"),
        ("injection in a phone", edit("gridleader", {"phone": "13812341234'; DROP TABLE key_person; --"}),
         "bad_phone"),
        ("17-digit ID number", edit("gridleader", {"id_number": "50010319900101123"}), "bad_id_number"),
        ("empty name", edit("gridleader", {"name": "  "}), "bad_name"),
        ("65-character name", edit("gridleader", {"name": "张" * 65}), "bad_name"),
        ("birth year not a number", edit("gridleader", {"birth_year": "19x0"}), "bad_birth_year"),
        ("birth year 1800", edit("gridleader", {"birth_year": 1800}), "bad_birth_year"),
        ("month 13", edit("gridleader", {"observation_start": "2022-13-01"}), "bad_date"),
        ("gender X", edit("gridleader", {"gender": "X"}), "bad_gender"),
        ("reveal without a reason", reveal("commander", "phone", "  "), "reason_required"),
        ("grid leader reveals", reveal("gridleader", "phone", "why"), "access_denied"),
        ("auditor reveals", reveal("auditor", "phone", "why"), "access_denied"),
        ("reveal a non-personal field", reveal("commander", "household_id", "why"), "bad_field"),
        ("read a key person of another grid", outside_person, "access_denied"),
        ("login injection", login("' OR '1'='1", "x"), "login_failed"),
        ("login unknown user", login("nobody", "demo-commander"), "login_failed"),
        ("login empty password", login("commander", ""), "login_failed"),
        ("user name with markup", user(username="<script>"), "bad_username"),
        ("role root", user(role="root"), "bad_role"),
        ("grid leader bound to a district", user(area_level="district"), "bad_area"),
        ("user bound to no such grid", user(area_id=999_999), "not_found"),
        ("short password", user(password="short"), "weak_password"),
        ("SQL role injection", user(sql_role='x"; DROP ROLE postgres; --'), "bad_sql_role"),
        ("SQL role of the system", user(sql_role="pg_read_all_data"), "bad_sql_role"),
        ("existing username", user(username="commander"), "user_exists"),
        ("area given as injection", lambda s, p, st, tmp: auth.resolve_area(s, "grid", "1; DROP TABLE grid"),
         "not_found"),
        ("area level not a table", lambda s, p, st, tmp: auth.resolve_area(s, "grid; DROP TABLE x", "1"),
         "bad_area"),
        ("import file over max_upload_bytes", imported("staff", write_file("s.csv", csv_staff), max_upload_bytes=10),
         "file_too_large"),
        ("import polygon over max_polygon_vertices",
         lambda s, p, st, tmp: import_layer(s, "service_point", _big_polygon_file(tmp, s),
                                            settings=st.model_copy(update={"max_polygon_vertices": 50})),
         "rows_rejected"),
        ("import executable disguised as CSV", imported("staff", write_file("s.exe", b"MZ\x90\x00")),
         "unknown_format"),
        ("import unknown layer", imported("app_user", write_file("u.csv", b"username\nx\n")), "unknown_layer"),
        ("export unknown layer",
         lambda s, p, st, tmp: export_layer(s, "app_user", tmp / "u.csv", principal=p["commander"]),
         "unknown_layer"),
        ("restore a file that is not a dump", restore_junk, "not_a_dump"),
        ("audit_log UPDATE", sql("UPDATE audit_log SET actor = 'nobody'"), "InsufficientPrivilege"),
        ("audit_log DELETE", sql("DELETE FROM audit_log"), "InsufficientPrivilege"),
        ("audit_log TRUNCATE", sql("TRUNCATE audit_log"), "InsufficientPrivilege"),
    ]


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize(("call", "code"), [(c, code) for _, c, code in BAD_INPUTS],
                         ids=[name for name, _, _ in BAD_INPUTS])
def test_bad_input_is_refused_and_changes_nothing(session, settings, principals, tmp_path, call, code):
    by_name = {p.username: p for p in principals}
    before = _fingerprint(session)
    with pytest.raises(Exception) as err:  # any error: its code is checked below
        call(session, by_name, settings, tmp_path)
    error = err.value
    got = error.code if isinstance(error, GridmapError) else type(getattr(error, "orig", error)).__name__
    assert got == code, f"{err.value}"
    if isinstance(error, GridmapError):
        assert error.message and "Traceback" not in error.message
    after = _fingerprint(session)
    if code == "login_failed":
        # A failed log-in is written to the audit trail, by design; nothing else moves.
        before.pop("audit_log"), after.pop("audit_log")
    assert after == before
    count("bad_inputs")


def test_locked_after_repeated_wrong_passwords(session, settings):
    st = settings.model_copy(update={"login_max_failures": 3, "login_lockout_minutes": 5})
    now = datetime.now(UTC)
    for _ in range(3):
        with pytest.raises(auth.LoginFailed):
            auth.authenticate(session, st, "volunteer", "wrong-password", now=now)
    with pytest.raises(auth.AccountLocked):
        auth.authenticate(session, st, "volunteer", "demo-volunteer", now=now)  # even the right one, for now
    assert auth.authenticate(session, st, "volunteer", "demo-volunteer", now=now.replace(year=now.year + 1))
    count("bad_inputs", 2)


# --- sessions ----------------------------------------------------------------------------------------------


def test_sessions_expire_and_end(session, settings):
    now = datetime.now(UTC)
    user = auth.authenticate(session, settings, "community", "demo-community", now=now)
    token = auth.start_session(session, settings, user, now=now)
    p = auth.principal_for_token(session, token, now=now)
    assert p.username == "community" and p.role == "community_worker" and p.area_level == "community"
    assert auth.principal_for_token(session, token + "x", now=now) is None
    later = now + timedelta(hours=settings.session_hours, minutes=1)
    assert auth.principal_for_token(session, token, now=later) is None  # expired
    auth.end_session(session, token, now=now)
    assert auth.principal_for_token(session, token, now=now) is None  # logged out
    stored = session.execute(text("SELECT token_hash FROM user_session ORDER BY created_at DESC LIMIT 1")).scalar()
    assert token not in stored and len(stored) == 64


def test_new_password_ends_sessions_and_replaces_the_hash(session, settings):
    now = datetime.now(UTC)
    user = auth.authenticate(session, settings, "subdistrict", "demo-subdistrict", now=now)
    token = auth.start_session(session, settings, user, now=now)
    auth.set_password(session, settings, "subdistrict", "a-new-password-1")
    assert auth.principal_for_token(session, token, now=now) is None
    with pytest.raises(auth.LoginFailed):
        auth.authenticate(session, settings, "subdistrict", "demo-subdistrict", now=now)
    assert auth.authenticate(session, settings, "subdistrict", "a-new-password-1", now=now)
    stored = session.execute(text("SELECT password_hash FROM app_user WHERE username = 'subdistrict'")).scalar()
    assert stored.startswith("$argon2id$") and "a-new-password-1" not in stored


# --- concurrent edits: the lost update -------------------------------------------------------------------


@contextlib.contextmanager
def _committed_person(engine, grid_id: int):
    """A key person committed for real (two sessions must see each other's commits); removed after."""
    with Session(engine) as s:
        household = s.execute(text(
            "SELECT h.id FROM household h JOIN building b ON b.id = h.building_id WHERE b.grid_id = :g "
            "ORDER BY h.id LIMIT 1"), {"g": grid_id}).scalar_one()
        pid = s.execute(text(
            "INSERT INTO key_person (household_id, name, phone, version, geom) "
            "SELECT :h, '并发测试', '13800000000', 1, geom FROM household WHERE id = :h RETURNING id"),
            {"h": household}).scalar_one()
        s.commit()
    try:
        yield pid
    finally:
        with Session(engine) as s:
            s.execute(text("DELETE FROM key_person WHERE id = :id"), {"id": pid})
            s.commit()


def test_lost_update_is_refused_with_the_newer_change(engine, principals):
    by_name = {p.username: p for p in principals}
    leader, worker = by_name["gridleader"], by_name["community"]
    with _committed_person(engine, leader.area_id) as pid, Session(engine) as a, Session(engine) as b:
        # Both open version 1.
        seen_a = access.get_key_person(a, leader, pid)
        seen_b = access.get_key_person(b, worker, pid)
        a.rollback(), b.rollback()
        assert seen_a["version"] == seen_b["version"] == 1
        # A saves first.
        access.update_key_person(a, leader, pid, seen_a["version"], {"phone": "13911112222"})
        a.commit()
        # B saves from the version it saw: refused, told who changed what, nothing of B's written.
        with pytest.raises(KeyPersonConflict) as err:
            access.update_key_person(b, worker, pid, seen_b["version"], {"note": "B 的备注"})
        b.rollback()
        assert err.value.code == "stale_edit"
        assert "gridleader" in err.value.message and "phone" in err.value.message
        assert err.value.current["version"] == 2 and err.value.current["phone"] == "13911112222"
        assert err.value.change["actor"] == "gridleader"
        row = a.execute(text("SELECT phone, note, version FROM key_person WHERE id = :id"), {"id": pid}).one()
        assert tuple(row) == ("13911112222", None, 2)
        # B redoes the edit on the newer version.
        access.update_key_person(b, worker, pid, 2, {"note": "B 的备注"})
        b.commit()
        row = a.execute(text("SELECT phone, note, version FROM key_person WHERE id = :id"), {"id": pid}).one()
        assert tuple(row) == ("13911112222", "B 的备注", 3)
    count("concurrency_cases")


def test_concurrent_saves_of_one_version_let_exactly_one_win(engine, principals):
    """Two transactions save version 1 at the same moment: the second waits for the first's row lock,
    then finds the version moved on (no lost update between concurrent transactions either)."""
    import threading

    by_name = {p.username: p for p in principals}
    leader, worker = by_name["gridleader"], by_name["community"]
    outcomes: dict[str, str] = {}
    with _committed_person(engine, leader.area_id) as pid, Session(engine) as a:
        access.update_key_person(a, leader, pid, 1, {"note": "A"})  # holds the row lock, not yet committed

        def second():
            with Session(engine) as b:
                try:
                    access.update_key_person(b, worker, pid, 1, {"note": "B"})
                    b.commit()
                    outcomes["b"] = "saved"
                except KeyPersonConflict:
                    outcomes["b"] = "conflict"

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # B waits on A's row lock
        a.commit()
        thread.join(timeout=30)
        assert outcomes == {"b": "conflict"}
        assert a.execute(text("SELECT note, version FROM key_person WHERE id = :id"), {"id": pid}).one() == ("A", 2)
    count("concurrency_cases")
