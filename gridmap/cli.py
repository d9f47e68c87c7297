"""``gridmap``: the same services as the web app, from the shell.

A user's mistake (bad file, unknown layer, database down) prints one line and exits with status 2;
never a traceback.
"""

from __future__ import annotations

import argparse
import json
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


def cmd_demo_load(args: argparse.Namespace, settings: Settings) -> int:
    from gridmap.db.session import session_scope
    from gridmap.services.demo import is_empty, load_demo

    started = time.perf_counter()
    with session_scope(settings.database_url) as session:
        if args.if_empty and not is_empty(session):
            print("demo district already loaded; nothing to do")
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
    from gridmap.services.bench import bench_impact

    with session_scope(settings.database_url) as session:
        result = {"impact": bench_impact(session, settings, count=args.polygons, repeat=args.repeat)}
        session.rollback()
    print(json.dumps(result, ensure_ascii=False, indent=2))
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

    demo = sub.add_parser("demo", help="the synthetic demo district").add_subparsers(dest="demo_command", required=True)
    load = demo.add_parser("load", help="generate and load the demo district")
    load.add_argument("--seed", type=int, default=1)
    load.add_argument("--scale", default="demo", help="demo (default) or small")
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
    bench.set_defaults(func=cmd_bench)

    serve = sub.add_parser("serve", help="serve the web app")
    serve.add_argument("--host", default=settings.host)
    serve.add_argument("--port", type=int, default=settings.port)
    serve.add_argument("--debug", action="store_true")
    serve.set_defaults(func=cmd_serve)
    return parser


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
