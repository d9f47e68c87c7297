"""``gridmap backup`` / ``gridmap restore``: a round trip that compares every table, row by row."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from gridmap.cli import main
from gridmap.config import Settings
from gridmap.services.backup import BackupError, backup, find_tool, restore, table_checksums
from tests.conftest import _admin_execute

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def empty_database(database_url):
    """A database of its own, empty (no extension either: the dump brings PostGIS)."""
    name = f"{make_url(database_url).database}_restore"
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _schema_objects(url: str) -> dict:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return {
                "policies": sorted(conn.execute(text("SELECT tablename || '.' || policyname FROM pg_policies")).scalars()),
                "triggers": sorted(conn.execute(text(
                    "SELECT c.relname || '.' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal")).scalars()),
                "rls": sorted(conn.execute(text(
                    "SELECT relname FROM pg_class WHERE relrowsecurity AND relnamespace = 'public'::regnamespace"
                )).scalars()),
                "views": sorted(conn.execute(text(
                    "SELECT viewname FROM pg_views WHERE schemaname = 'public'")).scalars()),
                "revision": conn.execute(text("SELECT version_num FROM alembic_version")).scalar(),
            }
    finally:
        engine.dispose()


def test_round_trip_restores_every_table_exactly(database_url, empty_database, tmp_path):
    dump = tmp_path / "gridmap.dump"
    # The command line, as an operator would run it.
    assert main(["backup", str(dump)], settings=Settings(database_url=database_url)) == 0
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600  # it holds personal data
    assert dump.read_bytes()[:5] == b"PGDMP"
    assert main(["restore", str(dump)], settings=Settings(database_url=empty_database)) == 0

    source, copy = table_checksums(database_url), table_checksums(empty_database)
    assert set(source) == set(copy)
    assert {t for t, (n, _) in source.items() if n} >= {"household", "key_person", "audit_log", "app_user"}
    different = {t: (source[t], copy[t]) for t in source if source[t] != copy[t]}
    assert not different
    assert _schema_objects(empty_database) == _schema_objects(database_url)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "backup-roundtrip.json").write_text(json.dumps({
        "tables": len(source), "rows": sum(n for n, _ in source.values()), "dump_bytes": dump.stat().st_size,
        "identical": not different,
    }, indent=2) + "\n")


def test_restore_refuses_a_database_in_use_unless_replace(database_url, empty_database, tmp_path):
    dump = tmp_path / "gridmap.dump"
    backup(database_url, dump)
    restore(empty_database, dump)
    with pytest.raises(BackupError) as err:
        restore(empty_database, dump)
    assert err.value.code == "database_not_empty"
    # Replace: the same content again, in one transaction.
    restore(empty_database, dump, replace=True)
    assert table_checksums(empty_database) == table_checksums(database_url)


def test_a_failed_restore_changes_nothing(database_url, empty_database, tmp_path):
    dump = tmp_path / "gridmap.dump"
    backup(database_url, dump)
    restore(empty_database, dump)
    before = table_checksums(empty_database)
    broken = tmp_path / "broken.dump"
    broken.write_bytes(dump.read_bytes()[: len(dump.read_bytes()) // 2])  # cut off halfway
    with pytest.raises(BackupError) as err:
        restore(empty_database, broken, replace=True)
    assert err.value.code == "pg_restore_failed"
    assert table_checksums(empty_database) == before


def test_clear_errors(tmp_path, database_url):
    with pytest.raises(BackupError) as err:
        find_tool("pg_dump_missing", root=tmp_path)  # neither under the root nor on PATH
    assert err.value.code == "tool_missing" and "postgresql-client" in err.value.message
    with pytest.raises(BackupError) as err:
        restore(database_url, tmp_path / "nothing.dump")
    assert err.value.code == "file_missing"
    with pytest.raises(BackupError) as err:
        backup(database_url, tmp_path / "no" / "such" / "folder.dump")
    assert err.value.code == "bad_path"
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    with pytest.raises(BackupError) as err:
        backup(dead, tmp_path / "x.dump")
    assert err.value.code == "pg_dump_failed" and "127.0.0.1" in err.value.message
    assert not (tmp_path / "x.dump").exists() and not list(tmp_path.glob(".*partial"))
    # From the shell: one line, exit status 2.
    assert main(["restore", str(tmp_path / "nothing.dump")], settings=Settings(database_url=database_url)) == 2
