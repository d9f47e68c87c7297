"""``gridmap backup FILE`` and ``gridmap restore FILE``: the configured database, with pg_dump and
pg_restore in PostgreSQL's custom format (-Fc: compressed, restorable table by table).

A dump holds personal data (key persons, households): the file is created readable by its owner
only (0600). A restore runs in one transaction (``--single-transaction --exit-on-error``): it
either restores everything or changes nothing. Objects are restored as owned by the restoring role
(``--no-owner``), which is what the app connects as, so row-level security treats it as the owner.
The group roles of migration 0007 are cluster-wide, not in a dump: they are created first when the
restoring role may, so the dump's GRANTs find them.

The tools are looked for under /usr/lib/postgresql/<version>/bin (newest first, Debian's layout)
and then on PATH; when neither has them the error says which package to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from gridmap.domain import access as rules
from gridmap.domain.errors import GridmapError

# The first bytes of a custom-format dump.
DUMP_MAGIC = b"PGDMP"


class BackupError(GridmapError):
    code = "backup_failed"


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    seconds: float

    def as_dict(self) -> dict:
        return {"path": str(self.path), "bytes": self.bytes, "seconds": round(self.seconds, 2)}


def find_tool(name: str, root: Path = Path("/usr/lib/postgresql")) -> str:
    """The path of pg_dump / pg_restore; BackupError(code='tool_missing') when there is none."""
    versions = sorted(
        (p for p in root.glob(f"*/bin/{name}") if p.parent.parent.name.isdigit()),
        key=lambda p: int(p.parent.parent.name),
        reverse=True,
    )
    if versions:
        return str(versions[0])
    found = shutil.which(name)
    if found:
        return found
    raise BackupError(
        f"找不到 {name}，请安装 PostgreSQL 客户端 / {name} not found: install the PostgreSQL client tools "
        "(Debian: apt-get install postgresql-client-15)",
        code="tool_missing",
    )


def libpq_env(url: str) -> dict[str, str]:
    """The environment that points libpq tools at ``url`` (the password never on a command line)."""
    u = make_url(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username), ("PGPASSWORD", u.password),
                       ("PGDATABASE", u.database)):
        if value is not None:
            env[key] = str(value)
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError as exc:
        raise BackupError(f"找不到 {args[0]} / {args[0]} not found", code="tool_missing") from exc
    if done.returncode != 0:
        lines = [line for line in (done.stderr or "").strip().splitlines() if line.strip()]
        detail = "; ".join(lines[-3:]) or f"exit status {done.returncode}"
        raise BackupError(f"{what}失败 / {what} failed: {detail}", code=f"{args[0].rsplit('/', 1)[-1]}_failed")


def backup(url: str, path: Path) -> BackupResult:
    """Dump the database at ``url`` to ``path`` (custom format, file mode 0600, written atomically)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise BackupError(f"目录不存在 / no such folder: {path.parent}", code="bad_path")
    tool = find_tool("pg_dump")
    started = time.perf_counter()
    tmp = path.with_name(f".{path.name}.partial")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        _run([tool, "--format=custom", "--no-password", f"--file={tmp}"], libpq_env(url), "备份 / backup")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(path=path, bytes=path.stat().st_size, seconds=time.perf_counter() - started)


def _ensure_group_roles(url: str) -> None:
    """The cluster-wide group roles the dump grants to (a new cluster lacks them)."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as conn:
            may = conn.execute(
                text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
            ).scalar()
            for role in (rules.SQL_BASE_ROLE, *rules.SQL_GROUP_ROLES.values()):
                exists = conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :r)"),
                                      {"r": role}).scalar()
                if not exists and may:
                    # Names from gridmap.domain.access (fixed), not user input.
                    conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
                    if role != rules.SQL_BASE_ROLE:
                        conn.execute(text(f'GRANT "{rules.SQL_BASE_ROLE}" TO "{role}"'))
    finally:
        engine.dispose()


def _has_tables(url: str) -> bool:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' "
                     "AND tablename <> 'spatial_ref_sys')")
            ).scalar()
    finally:
        engine.dispose()


def check_dump(path: Path) -> None:
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"文件不存在 / no such file: {path}", code="file_missing")
    with path.open("rb") as f:
        if f.read(len(DUMP_MAGIC)) != DUMP_MAGIC:
            raise BackupError(
                f"不是 gridmap backup 生成的备份文件 / {path.name} is not a backup made by gridmap backup "
                "(pg_dump custom format)",
                code="not_a_dump",
            )


def restore(url: str, path: Path, *, replace: bool = False) -> BackupResult:
    """Restore ``path`` into the database at ``url``, all or nothing.

    A database that already holds tables is refused unless ``replace`` (its objects are dropped
    first, inside the same transaction, so a failed restore leaves it as it was).
    """
    path = Path(path)
    check_dump(path)
    tool = find_tool("pg_restore")
    try:
        has_tables = _has_tables(url)
    except Exception as exc:
        raise BackupError(f"无法连接数据库 / cannot connect to the database: {str(exc).splitlines()[0]}",
                          code="database_unavailable") from exc
    if has_tables and not replace:
        raise BackupError(
            "目标数据库已有数据；确认覆盖请加 --replace / the database is not empty: add --replace to overwrite it",
            code="database_not_empty",
        )
    _ensure_group_roles(url)
    started = time.perf_counter()
    args = [tool, "--no-password", "--single-transaction", "--exit-on-error", "--no-owner",
            f"--dbname={make_url(url).database}"]
    if has_tables:
        args += ["--clean", "--if-exists"]
    _run([*args, str(path)], libpq_env(url), "恢复 / restore")
    return BackupResult(path=path, bytes=path.stat().st_size, seconds=time.perf_counter() - started)


def table_checksums(url: str) -> dict[str, tuple[int, str]]:
    """Every table of the public schema: (rows, md5 of its rows in a fixed order), to compare two
    databases (a source and its restored copy)."""
    engine = create_engine(url, poolclass=pool.NullPool)
    out: dict[str, tuple[int, str]] = {}
    try:
        with engine.connect() as conn:
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            ).scalars().all()
            for table in tables:
                # Table names read from pg_tables, quoted; the rows' text forms are hashed in order.
                quoted = '"' + table.replace('"', '""') + '"'
                count, digest = conn.execute(
                    text(f"SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
                         f"FROM (SELECT md5(t::text) AS h FROM {quoted} t) x")
                ).one()
                out[table] = (count, digest)
    finally:
        engine.dispose()
    return out
