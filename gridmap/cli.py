"""``gridmap``: the same services as the web app, from the shell.

A user's mistake (bad file, unknown layer, database down) prints one line and exits with status 2;
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from gridmap.config import Settings, get_settings
from gridmap.domain.errors import GridmapError


def _progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.migrate import current_revision, upgrade

    upgrade(settings.database_url)
    print(f"database at revision {current_revision(settings.database_url)}")
    return 0


def cmd_db_tidy(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.upkeep import tidy

    with session_scope(settings.database_url) as session:
        done = tidy(session, settings)
    print(json.dumps(done.as_dict(), ensure_ascii=False, indent=2))
    return 0


def cmd_demo_load(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.demo import is_empty, load_demo

    started = time.perf_counter()
    with session_scope(settings.database_url) as session:
        if args.if_empty and not is_empty(session):
            # access (issue 7): a district loaded before there were users gets its demo users.
            from gridmap.services.auth import create_demo_users

            create_demo_users(session, settings)
            print("demo district already loaded; nothing to do (demo users checked)")
            return 0
        written = load_demo(
            session,
            settings=settings,
            now=datetime.now(UTC),
            scale=args.scale,
            seed=args.seed,
            replace=args.replace,
            progress=_progress,
        )
        _progress("committing")
    total = sum(written.values())
    print(f"loaded {total} rows in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{k} {v}" for k, v in written.items()))
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.stats import compute_stats

    with session_scope(settings.database_url) as session:
        stats = compute_stats(session, settings)
    if args.json:
        print(json.dumps(stats.as_dict(), ensure_ascii=False, indent=2))
    else:
        for name, n in stats.counts.items():
            print(f"{name:28s} {n:>10,}")
        print(f"{'nesting violations':28s} {stats.nesting_violations:>10,}")
        for name, n in stats.violations.items():
            if n:
                print(f"  {name:26s} {n:>10,}")
    return 0 if stats.nesting_violations == 0 else 1


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.importing import ImportRejected, import_layer

    try:
        with session_scope(settings.database_url) as session:
            report = import_layer(session, args.layer, Path(args.file), settings=settings, gcj02=args.gcj02)
    except ImportRejected as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for issue in exc.report.errors:
            field = f" [{issue.field}]" if issue.field else ""
            print(f"  row {issue.row}{field}: {issue.code}: {issue.message}", file=sys.stderr)
        return 2
    for issue in report.repairs:
        print(f"  repaired row {issue.row}: {issue.message}")
    print(f"imported {report.rows_written} of {report.rows_read} rows into {args.layer}")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.exporting import export_layer

    with session_scope(settings.database_url) as session:
        n = export_layer(session, args.layer, Path(args.file))
    print(f"exported {n} rows of {args.layer} to {args.file}")
    return 0


def cmd_impact(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.io.area import read_area_file
    from gridmap.services.impact import check_inside_district, compute_impact

    area = read_area_file(
        Path(args.area_file), max_bytes=settings.max_upload_bytes, max_vertices=settings.max_area_vertices,
        gcj02=args.gcj02,
    )
    with session_scope(settings.database_url) as session:
        check_inside_district(session, area)
        impact = compute_impact(session, area, args.area_class, settings)
        session.rollback()  # a preview writes nothing
    data = impact.as_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return 0
    for key in ("buildings", "households", "residents", "gates", "checkpoints_needed", "duty_staff_needed",
                "drop_zones_needed", "delivery_volunteers_needed", "case_buildings"):
        print(f"{key:28s} {data[key]:>8}")
    for code, n in sorted(data["key_persons"].items()):
        print(f"  key_persons.{code:24s} {n:>6}")
    print(f"grids: {', '.join(g['code'] for g in data['grids']) or '-'}")
    for w in data["warnings"]:
        print(f"WARNING {w['code']}: {w['message_zh']} / {w['message_en']}")
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.bench import SCALE_RADII, bench_impact, check_targets
    from gridmap.services.coverage_bench import bench_coverage

    radii = SCALE_RADII[args.scale or "demo"]
    with session_scope(settings.database_url) as session:
        result = {
            "impact": bench_impact(session, settings, count=args.polygons, repeat=args.repeat, radii=radii),
            "coverage": bench_coverage(session, settings, datetime.now(UTC)),
        }
        if args.scale:  # scale (issue 8): the naive path, the whole map in chromium, one worker's memory
            from gridmap.services.bench_city import bench_city

            result["city"] = bench_city(session, settings, scale=args.scale, app=WEB_APP, count=args.polygons,
                                        radii=radii)
        session.rollback()
    result["targets"] = check_targets(result, args.scale or "demo")
    if args.json or not args.scale:  # scale (issue 8): JSON as before, or one figure a line
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        _print_figures(result)
    return 0


# scale (issue 8): the web app as a "module:factory" reference, for benchmarks that start a worker.
WEB_APP = "gridmap.web:create_app"


def _print_figures(figures: dict, prefix: str = "") -> None:  # scale (issue 8)
    for key, value in figures.items():
        if isinstance(value, dict):
            _print_figures(value, f"{prefix}{key}.")
        else:
            print(f"{prefix}{key} {value}")


def _local_date(value: str | None, settings: Settings):
    """A YYYY-MM-DD argument, or today in the command room's time zone."""
    from datetime import date

    from gridmap.domain.errors import InvalidInput
    from gridmap.domain.reports import local_date, zone

    if not value:
        return local_date(datetime.now(UTC), zone(settings.timezone))
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"日期格式应为 YYYY-MM-DD / a date must be YYYY-MM-DD, not {value!r}", code="bad_date") from exc


def _local_datetime(value: str, settings: Settings) -> datetime:
    """An ISO time; without an offset it is local time of the command room."""
    from gridmap.domain.errors import InvalidInput
    from gridmap.domain.reports import zone

    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"时间格式应为 YYYY-MM-DDTHH:MM / a time must be ISO 8601, not {value!r}",
                           code="bad_time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=zone(settings.timezone))


def _id_list(value: str) -> list[int]:
    from gridmap.domain.errors import InvalidInput

    try:
        return [int(v) for v in value.replace(" ", "").split(",") if v]
    except ValueError as exc:
        raise InvalidInput(f"编号须为逗号分隔的整数 / ids must be comma-separated integers: {value!r}",
                           code="bad_selection") from exc


def _acting_as(session, username: str | None):
    """``--as USER``: the principal the command acts as, checked like that user in the web app, and
    named in the audit trail; None (no option): the operator at the shell, unchecked."""
    if not username:
        return None
    from gridmap.services import audit
    from gridmap.services.access import AccessDenied, load_principal
    from gridmap.services.auth import get_user

    principal = load_principal(session, get_user(session, username).id)
    if principal is None:
        raise AccessDenied(f"用户 {username} 已停用 / user {username} is not active")
    audit.set_actor(session, principal)
    return principal


def cmd_report_status(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.domain.reports import STATUS_NAMES_ZH
    from gridmap.services.reports import report_status

    day = _local_date(args.date, settings)
    with session_scope(settings.database_url) as session:
        status = report_status(session, settings, day, datetime.now(UTC))
    if args.json:
        print(json.dumps(status.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        for c in status.communities:
            who = f"{c.responsible_name or '-'} {c.responsible_phone or ''}".strip()
            print(f"{c.community_code:14s} {c.community_name:12s} {c.status:8s} {STATUS_NAMES_ZH[c.status]:4s} "
                  f"{who} / {c.community_phone or '-'}")
        t = status.totals
        print(f"{day}: filed {t.filed}, zero {t.zero}, missing {t.missing}, pending {t.pending} "
              f"of {t.communities}; new cases {t.new_cases}")
    return 1 if args.fail_on_missing and status.totals.missing else 0


def cmd_report_file(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.domain.reports import ReportInput
    from gridmap.services.reports import community_id_by_code, file_report

    day = _local_date(args.date, settings)
    with session_scope(settings.database_url) as session:
        principal = _acting_as(session, args.as_user)
        report = file_report(
            session, settings,
            ReportInput(
                community_id=community_id_by_code(session, args.community), report_date=day,
                kind="emergency" if args.emergency else "normal", new_cases=args.new_cases,
                under_observation=args.under_observation, contacts_done=args.contacts_done,
                tasks_done=args.tasks_done, supply_problems=args.supply, staffing_problems=args.staffing,
                free_text=args.text, filed_by=args.by, responsible_name=args.responsible, responsible_phone=args.phone,
            ),
            datetime.now(UTC),
            principal=principal,
        )
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        print(f"filed {report.kind} report for {report.community_name} {report.report_date} (version {report.version})")
    return 0


def cmd_report_zero(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.reports import community_id_by_code, file_zero_report

    day = _local_date(args.date, settings)
    with session_scope(settings.database_url) as session:
        report = file_zero_report(
            session, settings, community_id=community_id_by_code(session, args.community), report_date=day,
            filed_by=args.by, now=datetime.now(UTC), responsible_name=args.responsible, responsible_phone=args.phone,
            principal=_acting_as(session, args.as_user),
        )
    print(f"filed zero report for {report.community_name} {report.report_date} (version {report.version})")
    return 0


def cmd_report_export(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.reports import export_report_xlsx

    day = _local_date(args.date, settings)
    with session_scope(settings.database_url) as session:
        n = export_report_xlsx(session, settings, day, Path(args.file), datetime.now(UTC),
                               principal=_acting_as(session, args.as_user))
    print(f"exported the {day} summary of {n} communities to {args.file}")
    return 0


def cmd_task_list(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.tasks import list_tasks

    with session_scope(settings.database_url) as session:
        tasks = list_tasks(session, datetime.now(UTC), include_closed=args.all)
    if args.json:
        print(json.dumps([t.as_dict() for t in tasks], ensure_ascii=False, indent=2, default=str))
        return 0
    for t in tasks:
        counts = " ".join(f"{k} {v}" for k, v in t.counts.items() if v)
        print(f"{t.id:>5} {t.type_code:16s} {t.status:6s} items {t.items:>5} ({counts or '-'}) "
              f"overdue {t.overdue}  {t.title}")
    return 0


def cmd_task_create(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.domain.reports import zone
    from gridmap.domain.tasks import Selection
    from gridmap.io.area import read_area_file
    from gridmap.services.tasks import create_task, grid_id_by_code

    now = datetime.now(UTC)
    due = _local_datetime(args.due, settings) if args.due else None
    area = None
    if args.area:
        area = read_area_file(Path(args.area), max_bytes=settings.max_upload_bytes,
                              max_vertices=settings.max_area_vertices, gcj02=args.gcj02)
    with session_scope(settings.database_url) as session:
        principal = _acting_as(session, args.as_user)
        if area is not None:
            selection = Selection.drawn_area(area)
        elif args.grid:
            selection = Selection.grid(grid_id_by_code(session, args.grid))
        elif args.controlled_area is not None:
            selection = Selection.controlled_area(args.controlled_area)
        elif args.buildings:
            selection = Selection.buildings(_id_list(args.buildings))
        else:
            selection = Selection.key_persons(_id_list(args.key_persons))
        author = args.by or (principal and (principal.display_name or principal.username)) or "命令行 / cli"
        task = create_task(session, settings, type_code=args.type, selection=selection, created_by=author,
                           now=now, title=args.title, due_at=due, principal=principal)
    if args.json:
        print(json.dumps(task.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        local_due = task.due_at.astimezone(zone(settings.timezone))
        print(f"created task {task.id} ({task.type_code}) with {task.items} items, due {local_due:%Y-%m-%d %H:%M}")
    return 0


def cmd_task_contact_rounds(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.tasks import generate_contact_rounds

    week = _local_date(args.week, settings)
    with session_scope(settings.database_url) as session:
        result = generate_contact_rounds(session, settings, datetime.now(UTC), week,
                                         principal=_acting_as(session, args.as_user))
    print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    return 0


def cmd_task_overdue(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.domain.reports import zone
    from gridmap.services.tasks import overdue_items

    tz = zone(settings.timezone)
    with session_scope(settings.database_url) as session:
        items = overdue_items(session, datetime.now(UTC))
    if args.json:
        print(json.dumps([i.as_dict() for i in items], ensure_ascii=False, indent=2, default=str))
        return 0
    for i in items:
        print(f"{i.id:>7} task {i.task_id:<5} {i.type_code:16s} {i.building_name} {i.household_room or ''} "
              f"due {i.due_at.astimezone(tz):%Y-%m-%d %H:%M} {i.assigned_name or '-'} {i.assigned_phone or ''}")
    print(f"{len(items)} overdue items")
    return 0


def _grid_ids_for(session, codes: list[str] | None) -> list[int] | None:
    from sqlalchemy import text

    from gridmap.domain.errors import NotFound

    if not codes:
        return None
    found = dict(session.execute(text("SELECT code, id FROM grid WHERE code = ANY(:codes)"), {"codes": codes}).all())
    missing = [c for c in codes if c not in found]
    if missing:
        raise NotFound(f"没有此网格 / no grid with code {', '.join(missing)}")
    return [found[c] for c in codes]


def cmd_coverage(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.coverage import grid_metrics

    now = datetime.now(UTC)
    with session_scope(settings.database_url) as session:
        metrics = grid_metrics(session, settings, now, _grid_ids_for(session, args.grid))
        session.rollback()  # reads only
    if args.json:
        print(json.dumps([m.as_dict() for m in metrics], ensure_ascii=False, indent=2))
        return 0
    kinds = settings.coverage_service_kinds
    print(f"service coverage: share of households within {settings.service_walk_distance_m:g} m "
          f"(straight-line) of a {', '.join(kinds)}")
    print(f"{'grid':18s} {'hh':>5s} {'hh/leader':>10s} {'leader':>9s} {'delivery':>14s} {'contacts':>9s} "
          f"{'duty gaps':>9s} " + " ".join(f"{k.split('_')[0][:7]:>7s}" for k in kinds) + f" {'observed':>8s}")
    for m in metrics:
        per = "-" if m.leaders.households_per_leader is None else f"{m.leaders.households_per_leader:g}"
        delivery = (m.delivery.status if m.delivery.status == "not_controlled"
                    else f"{m.delivery.volunteers}/{m.delivery.volunteers_needed} {m.delivery.status}")
        contacts = f"{m.contacts.on_time}/{m.contacts.vulnerable}"
        shares = " ".join(
            f"{'-' if m.services.kinds[k].share is None else f'{100 * m.services.kinds[k].share:.0f}%':>7s}" for k in kinds
        )
        print(f"{m.code:18s} {m.households:>5d} {per:>10s} {m.leaders.status:>9s} {delivery:>14s} {contacts:>9s} "
              f"{len(m.checkpoints.gaps):>9d} {shares} {m.home_observation.count:>8d}")
    return 0


def cmd_coverage_gaps(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.coverage import staffing_gaps

    with session_scope(settings.database_url) as session:
        gaps = staffing_gaps(session, settings, datetime.now(UTC))
        session.rollback()  # reads only
    data = gaps.as_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    for gap in data["gaps"]:
        print(f"GAP {gap['reason']}: {gap['message_zh']} / {gap['message_en']}")
    for move in data["moves"]:
        print(f"MOVE {move['volunteers']} volunteer(s) {move['from_code']} -> {move['to_code']}")
    if not data["gaps"]:
        print("no staffing gaps")
    return 0


def cmd_coverage_load(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.coverage import service_load

    with session_scope(settings.database_url) as session:
        points = service_load(session, settings, args.kind)
        session.rollback()  # reads only
    if args.json:
        print(json.dumps(points, ensure_ascii=False, indent=2))
        return 0
    print(f"households per {args.kind} (nearest point, straight-line; within {settings.service_walk_distance_m:g} m)")
    for p in points:
        load = "-" if p["load"] is None else f"{p['load']:.2f}"
        print(f"{p['id']:>6d} {p['name'][:24]:24s} {p['households']:>7d} {p['households_within']:>7d} "
              f"cap {p['capacity'] if p['capacity'] is not None else '-':>6} load {load:>6s} {p['status']}")
    return 0


# --- access (issue 7): users, backup and restore ------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码 / password: ")
    if getpass.getpass("再输一次 / again: ") != first:
        from gridmap.domain.errors import InvalidInput

        raise InvalidInput("两次输入的密码不一致 / the passwords differ", code="password_mismatch")
    return first


def _area_arg(value: str) -> tuple[str, str]:
    level, _, ref = value.partition(":")
    if not ref:
        from gridmap.domain.errors import InvalidInput

        raise InvalidInput("区域写作 层级:编码或编号 / an area is LEVEL:CODE_OR_ID, e.g. grid:G0101", code="bad_area")
    return level.strip(), ref.strip()


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.domain.access import default_sql_role
    from gridmap.services.auth import create_user, resolve_area

    level, ref = _area_arg(args.area)
    password = _read_password(args)
    sql_role = None
    if args.sql_role:
        sql_role = default_sql_role(args.username) if args.sql_role is True else args.sql_role
    with session_scope(settings.database_url) as session:
        user = create_user(
            session, settings, username=args.username, password=password, role=args.role, area_level=level,
            area_id=resolve_area(session, level, ref), display_name=args.name or "", sql_role=sql_role,
            actor=f"cli:{_os_user()}",
        )
    extra = f", SQL role {user.db_role}" if user.db_role else ""
    print(f"added {user.username} ({user.role}) bound to {user.area_level} {user.area_name}{extra}")
    return 0


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.auth import list_users

    with session_scope(settings.database_url) as session:
        users = list_users(session)
    if args.json:
        print(json.dumps([u.as_dict() for u in users], ensure_ascii=False, indent=2))
        return 0
    for u in users:
        state = "" if u.active else " (inactive)"
        print(f"{u.username:20s} {u.role:20s} {u.area_level:12s} {u.area_name:16s} {u.db_role or '-'}{state}")
    return 0


def cmd_user_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.auth import set_password

    password = _read_password(args)
    with session_scope(settings.database_url) as session:
        set_password(session, settings, args.username, password, actor=f"cli:{_os_user()}")
    print(f"password of {args.username} changed; their open sessions have ended")
    return 0


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (containers)
        return str(os.getuid())


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.services.backup import backup

    result = backup(settings.database_url, Path(args.file))
    print(f"backed up to {result.path} ({result.bytes:,} bytes, {result.seconds:.1f} s)")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.services.backup import restore

    result = restore(settings.database_url, Path(args.file), replace=args.replace)
    print(f"restored {result.path} ({result.seconds:.1f} s)")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.web import create_app

    app = create_app(settings)
    print(f"serving on http://{args.host}:{args.port}", file=sys.stderr)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gridmap", description="网格化防控指挥图 / grid command map")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="run the migrations").set_defaults(func=cmd_db_upgrade)
    db.add_parser("tidy", help="repair the kept figures from their logs and prune the change log "
                               "(for a timer, e.g. every 5 minutes)").set_defaults(func=cmd_db_tidy)

    demo = sub.add_parser("demo", help="the synthetic demo district").add_subparsers(dest="demo_command", required=True)
    load = demo.add_parser("load", help="generate and load the demo district")
    load.add_argument("--seed", type=int, default=1)
    load.add_argument("--scale", default="demo", help="demo (default), small, or city (~10,000 grids, minutes)")
    load.add_argument("--if-empty", action="store_true", help="do nothing when a district is loaded")
    load.add_argument("--replace", action="store_true", help="replace the district that is loaded")
    load.set_defaults(func=cmd_demo_load)

    stats = sub.add_parser("stats", help="count every layer and check the nesting")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)

    imp = sub.add_parser("import", help="import a layer from a file (all or nothing)")
    imp.add_argument("layer")
    imp.add_argument("file")
    imp.add_argument("--gcj02", action="store_true", help="the file's coordinates are GCJ-02 (Chinese map sources)")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export a layer to .geojson, .gpkg, .xlsx or .csv")
    exp.add_argument("layer")
    exp.add_argument("file")
    exp.set_defaults(func=cmd_export)

    impact = sub.add_parser("impact", help="what an area would control: buildings, people, gates, staff, warnings")
    impact.add_argument("area_file")
    impact.add_argument("--class", dest="area_class", default="sealed",
                        help="sealed (default), controlled, precaution, or a tier: high, medium, low")
    impact.add_argument("--gcj02", action="store_true", help="the file's coordinates are GCJ-02")
    impact.add_argument("--json", action="store_true")
    impact.set_defaults(func=cmd_impact)

    bench = sub.add_parser("bench", help="benchmarks that print figures (JSON)")
    bench.add_argument("--polygons", type=int, default=50)
    bench.add_argument("--repeat", type=int, default=3)
    # scale (issue 8): which database/size is measured (a label), and the extra measurements.
    bench.add_argument("--scale", choices=("demo", "city"),
                       help="label the database measured and add the naive path, the map in chromium, worker memory")
    bench.add_argument("--json", action="store_true", help="JSON (the default without --scale)")
    bench.set_defaults(func=cmd_bench)

    report = sub.add_parser("report", help="daily and zero reports (日报告、零报告)").add_subparsers(
        dest="report_command", required=True)
    rstatus = report.add_parser("status", help="who has filed, zero-reported or is missing for a day")
    rstatus.add_argument("--date", help="YYYY-MM-DD (default: today, local time)")
    rstatus.add_argument("--json", action="store_true")
    rstatus.add_argument("--fail-on-missing", action="store_true", help="exit 1 when a report is missing (cron)")
    rstatus.set_defaults(func=cmd_report_status)
    rfile = report.add_parser("file", help="file a day's report (a second filing is an amendment)")
    rfile.add_argument("--community", required=True, help="community code")
    rfile.add_argument("--date", help="YYYY-MM-DD (default: today, local time)")
    for name in ("new-cases", "under-observation", "contacts-done", "tasks-done"):
        rfile.add_argument(f"--{name}", type=int, default=0)
    rfile.add_argument("--supply", default="", help="物资保障问题 / supply problems")
    rfile.add_argument("--staffing", default="", help="人员力量问题 / staffing problems")
    rfile.add_argument("--text", default="", help="free text")
    rfile.add_argument("--emergency", action="store_true", help="an emergency report (any time, any number)")
    rfile.add_argument("--json", action="store_true")
    rzero = report.add_parser("zero", help="file a zero report (nothing new today)")
    rzero.add_argument("--community", required=True, help="community code")
    rzero.add_argument("--date", help="YYYY-MM-DD (default: today, local time)")
    for p in (rfile, rzero):
        p.add_argument("--by", required=True, help="填报人 / who files")
        p.add_argument("--responsible", default="", help="负责人 / responsible person")
        p.add_argument("--phone", default="", help="负责人电话 / their phone")
    rfile.set_defaults(func=cmd_report_file)
    rzero.set_defaults(func=cmd_report_zero)
    rexport = report.add_parser("export", help="the day's summary sheet (.xlsx) in the offices' layout")
    rexport.add_argument("--date", help="YYYY-MM-DD (default: today, local time)")
    rexport.add_argument("file")
    for p in (rfile, rzero, rexport):
        _as_user_option(p)
    rexport.set_defaults(func=cmd_report_export)

    task = sub.add_parser("task", help="tasks given out on the map").add_subparsers(dest="task_command", required=True)
    tlist = task.add_parser("list", help="tasks with their items counted by state")
    tlist.add_argument("--all", action="store_true", help="closed tasks too")
    tlist.add_argument("--json", action="store_true")
    tlist.set_defaults(func=cmd_task_list)
    tcreate = task.add_parser("create", help="create a task from a selection, split into items")
    tcreate.add_argument("--type", required=True, help="task type code, e.g. door_knock, disinfection")
    where = tcreate.add_mutually_exclusive_group(required=True)
    where.add_argument("--grid", help="grid code")
    where.add_argument("--area", help="an area file (GeoJSON, GeoPackage, Shapefile)")
    where.add_argument("--controlled-area", type=int, help="area_key of a controlled area (its latest version)")
    where.add_argument("--buildings", help="building ids, comma-separated")
    where.add_argument("--key-persons", help="key person ids, comma-separated")
    tcreate.add_argument("--gcj02", action="store_true", help="the area file's coordinates are GCJ-02")
    tcreate.add_argument("--title")
    tcreate.add_argument("--due", help="due time, ISO 8601 (local time when no offset)")
    tcreate.add_argument("--by", help="who gives out the task (default: the --as user, else 命令行 / cli)")
    tcreate.add_argument("--json", action="store_true")
    tcreate.set_defaults(func=cmd_task_create)
    trounds = task.add_parser("contact-rounds", help="this week's contacts with vulnerable people (idempotent)")
    trounds.add_argument("--week", help="a day of the week, YYYY-MM-DD (default: today)")
    trounds.set_defaults(func=cmd_task_contact_rounds)
    for p in (tcreate, trounds):
        _as_user_option(p)
    toverdue = task.add_parser("overdue", help="items past their due time and not done")
    toverdue.add_argument("--json", action="store_true")
    toverdue.set_defaults(func=cmd_task_overdue)

    coverage = sub.add_parser("coverage", help="coverage and staffing per grid (JSON with --json)")
    coverage.add_argument("--grid", action="append", metavar="CODE", help="only this grid (repeatable)")
    coverage.add_argument("--json", action="store_true")
    coverage.set_defaults(func=cmd_coverage)
    coverage_sub = coverage.add_subparsers(dest="coverage_command")
    coverage_gaps = coverage_sub.add_parser("gaps", help="grids below the staffing norms and volunteers to move to them")
    coverage_gaps.add_argument("--json", action="store_true")
    coverage_gaps.set_defaults(func=cmd_coverage_gaps)
    coverage_load = coverage_sub.add_parser("load", help="households per service point (nearest) against its capacity")
    coverage_load.add_argument("kind", help="testing_point, supply_point, vaccination_point, ...")
    coverage_load.add_argument("--json", action="store_true")
    coverage_load.set_defaults(func=cmd_coverage_load)

    # access (issue 7)
    user = sub.add_parser("user", help="users, roles and their areas").add_subparsers(dest="user_command", required=True)
    uadd = user.add_parser("add", help="add a user bound to one area")
    uadd.add_argument("username")
    uadd.add_argument("--role", required=True,
                      help="district_commander, subdistrict_staff, community_worker, grid_leader, volunteer, auditor")
    uadd.add_argument("--area", required=True, help="LEVEL:CODE_OR_ID, e.g. district:500103 or grid:<grid code>")
    uadd.add_argument("--name", help="display name")
    uadd.add_argument("--sql-role", nargs="?", const=True, default=None,
                      help="also a PostgreSQL login role (default name gm_<username>) with row-level security")
    ulist = user.add_parser("list", help="every user with role and area")
    ulist.add_argument("--json", action="store_true")
    upass = user.add_parser("passwd", help="set a user's password (ends their sessions)")
    upass.add_argument("username")
    for p in (uadd, upass):
        p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (no prompt)")
    uadd.set_defaults(func=cmd_user_add)
    ulist.set_defaults(func=cmd_user_list)
    upass.set_defaults(func=cmd_user_passwd)
    bkp = sub.add_parser("backup", help="dump the database to FILE (pg_dump custom format)")
    bkp.add_argument("file")
    bkp.set_defaults(func=cmd_backup)
    rst = sub.add_parser("restore", help="restore FILE into the configured database (all or nothing)")
    rst.add_argument("file")
    rst.add_argument("--replace", action="store_true", help="overwrite a database that is not empty")
    rst.set_defaults(func=cmd_restore)

    serve = sub.add_parser("serve", help="serve the web app")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument("--debug", action="store_true")
    serve.set_defaults(func=cmd_serve)
    return parser


def _as_user_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as", dest="as_user", metavar="USER",
                        help="act as this user: their role and area are checked, the audit trail names them")


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    from gridmap.db.session import DatabaseUnavailable

    settings = settings or get_settings()
    args = build_parser(settings).parse_args(argv)
    try:
        return args.func(args, settings)
    except (GridmapError, DatabaseUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:
        print(f"error: 数据库不可用 / database unavailable: {str(exc.orig).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
