"""Users, passwords and sessions.

Passwords are hashed with argon2id (argon2-cffi); a hash made with older parameters is replaced at
the next good log-in. A session is a random token: the browser keeps it in a signed cookie, the
table ``user_session`` keeps its SHA-256 and when it ends, so every worker process serves every
request and a log-out ends the session everywhere. Wrong passwords are counted per user; after
``login_max_failures`` in a row the account waits ``login_lockout_minutes``.

A user may also get a PostgreSQL login role of their own (``sql_role``), member of the group of
their app role (gridmap_grid_leader ...): row-level security then shows them in SQL what the app
shows them (migration 0007).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridmap.config import Settings
from gridmap.domain import access as rules
from gridmap.domain.errors import GridmapError, InvalidInput, NotFound
from gridmap.services import audit
from gridmap.services.access import Principal, area_name, load_principal

_HASHER = PasswordHasher()
# Verified against when the user does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("gridmap: no such user")


class LoginFailed(GridmapError):
    code = "login_failed"


class AccountLocked(GridmapError):
    code = "account_locked"


class UserError(GridmapError):
    code = "user_error"


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    area_level: str
    area_id: int
    area_name: str
    db_role: str | None
    active: bool
    created_at: datetime | None = None

    def as_dict(self) -> dict:
        d = self.__dict__.copy()
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d


_USER_COLUMNS = "id, username, display_name, role, area_level, area_id, db_role, active, created_at"


def _user(session: Session, row) -> User:
    return User(**row._mapping, area_name=area_name(session, row.area_level, row.area_id) or "?")


def get_user(session: Session, username: str) -> User:
    row = session.execute(
        text(f"SELECT {_USER_COLUMNS} FROM app_user WHERE username = :u"), {"u": username}
    ).one_or_none()
    if row is None:
        raise NotFound(f"没有用户 {username} / no such user")
    return _user(session, row)


def list_users(session: Session) -> list[User]:
    rows = session.execute(text(f"SELECT {_USER_COLUMNS} FROM app_user ORDER BY username")).all()
    return [_user(session, r) for r in rows]


# --- areas ------------------------------------------------------------------------------------------


def resolve_area(session: Session, level: str, ref: str | int) -> int:
    """The id of the ``level`` row whose id or code is ``ref``."""
    if level not in rules.AREA_LEVELS:
        raise InvalidInput(
            f"区域层级应为 / the area level is one of {', '.join(rules.AREA_LEVELS)}, not {level!r}", code="bad_area"
        )
    ref = str(ref).strip()
    # ``level`` is one of the four table names above, never free text.
    row = session.execute(
        text(f"SELECT id FROM {level} WHERE code = :ref OR (:ref ~ '^[0-9]{{1,9}}$' AND id = CAST(:ref AS integer)) "
             "ORDER BY (code = :ref) DESC LIMIT 1"),
        {"ref": ref},
    ).scalar()
    if row is None:
        raise NotFound(f"没有这个{level}：{ref} / no {level} {ref!r}")
    return row


def _check_user_fields(session: Session, settings: Settings, *, username: str, password: str | None, role: str,
                       area_level: str, area_id: int) -> None:
    if not rules.valid_username(username):
        raise InvalidInput(
            "用户名为3到64个字母、数字或 . _ - / a username is 3-64 letters, digits, '.', '_' or '-'",
            code="bad_username",
        )
    if password is not None:
        check_password_strength(password, settings)
    if role not in rules.ROLES:
        raise InvalidInput(f"未知角色 / unknown role {role!r}; one of {', '.join(rules.ROLES)}", code="bad_role")
    if not rules.level_allowed(role, area_level):
        raise InvalidInput(
            f"角色 {role} 只能绑定到 / a {role} is bound to a {' or '.join(rules.ROLE_LEVELS[role])}, "
            f"not a {area_level}",
            code="bad_area",
        )
    if area_name(session, area_level, area_id) is None:
        raise NotFound(f"没有这个区域 / no {area_level} {area_id}")


def check_password_strength(password: str, settings: Settings) -> None:
    if len(password or "") < settings.password_min_length:
        raise InvalidInput(
            f"密码至少 {settings.password_min_length} 位 / a password has at least {settings.password_min_length} "
            "characters",
            code="weak_password",
        )


def create_user(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    role: str,
    area_level: str,
    area_id: int,
    display_name: str = "",
    sql_role: str | None = None,
    actor: str = "",
) -> User:
    """A new user bound to one area; with ``sql_role``, also a PostgreSQL login role (same password)."""
    _check_user_fields(session, settings, username=username, password=password, role=role,
                       area_level=area_level, area_id=area_id)
    if sql_role is not None and not rules.valid_sql_role(sql_role):
        raise InvalidInput(
            "数据库角色名为小写字母、数字、下划线，不以 pg_ 或 gridmap_ 开头 / a SQL role is lower-case letters, "
            "digits and '_', not starting with pg_ or gridmap_",
            code="bad_sql_role",
        )
    if actor:
        audit.set_actor(session, actor)
    try:
        with session.begin_nested():
            session.execute(
                text(
                    "INSERT INTO app_user (username, display_name, password_hash, role, area_level, area_id, db_role,"
                    " active, failed_logins, password_changed_at)"
                    " VALUES (:u, :d, :h, :r, :l, :a, :db, true, 0, now())"
                ),
                {"u": username, "d": display_name[:64], "h": hash_password(password), "r": role, "l": area_level,
                 "a": area_id, "db": sql_role},
            )
    except IntegrityError as exc:
        raise UserError(f"用户名或数据库角色已存在 / the username or SQL role is taken: {username}",
                        code="user_exists") from exc
    if sql_role is not None:
        create_sql_role(session, sql_role, password, role)
    return get_user(session, username)


def create_sql_role(session: Session, sql_role: str, password: str, app_role: str) -> None:
    """A PostgreSQL login role in the group of ``app_role`` (needs CREATEROLE)."""
    import psycopg.sql as psql

    if not rules.valid_sql_role(sql_role):
        raise InvalidInput(f"数据库角色名不合法 / bad SQL role name {sql_role!r}", code="bad_sql_role")
    group = rules.SQL_GROUP_ROLES[app_role]
    if not session.execute(text("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :g)"), {"g": group}).scalar():
        raise UserError(
            f"数据库中没有组角色 {group}（迁移时无 CREATEROLE 权限）/ the group role {group} is missing: "
            "run the migrations as a role that may create roles",
            code="no_group_role",
        )
    exists = session.execute(text("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :r)"), {"r": sql_role}).scalar()
    # Role names and passwords cannot be bound parameters in CREATE ROLE: psycopg quotes them, and
    # the statements go straight to the driver (no SQLAlchemy parsing of ':' in a password).
    verb = psql.SQL("ALTER" if exists else "CREATE")
    statements = (
        psql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(verb, psql.Identifier(sql_role), psql.Literal(password)),
        psql.SQL("GRANT {} TO {}").format(psql.Identifier(group), psql.Identifier(sql_role)),
    )
    raw = session.connection().connection.driver_connection
    try:
        with session.begin_nested(), raw.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    except psycopg.Error as exc:
        detail = str(exc).strip().splitlines()[0]
        raise UserError(f"无法创建数据库角色 / cannot create the SQL role {sql_role}: {detail}",
                        code="sql_role_failed") from exc


def set_password(session: Session, settings: Settings, username: str, password: str, *, actor: str = "") -> None:
    check_password_strength(password, settings)
    user = get_user(session, username)
    if actor:
        audit.set_actor(session, actor)
    session.execute(
        text("UPDATE app_user SET password_hash = :h, password_changed_at = now(), failed_logins = 0, "
             "locked_until = NULL WHERE id = :id"),
        {"h": hash_password(password), "id": user.id},
    )
    if user.db_role:
        create_sql_role(session, user.db_role, password, user.role)
    # Every open session of the user ends with the old password.
    session.execute(text("UPDATE user_session SET ended_at = now() WHERE user_id = :id AND ended_at IS NULL"),
                    {"id": user.id})


def set_active(session: Session, username: str, active: bool, *, actor: str = "") -> None:
    user = get_user(session, username)
    if actor:
        audit.set_actor(session, actor)
    session.execute(text("UPDATE app_user SET active = :a WHERE id = :id"), {"a": active, "id": user.id})
    if not active:
        session.execute(text("UPDATE user_session SET ended_at = now() WHERE user_id = :id AND ended_at IS NULL"),
                        {"id": user.id})


# --- logging in and out -----------------------------------------------------------------------------

_FAILED = "用户名或密码错误 / wrong username or password"


def authenticate(
    session: Session, settings: Settings, username: str, password: str, *, now: datetime, remote_addr: str = ""
) -> User:
    """The user, when ``password`` is theirs; :class:`LoginFailed` (one message for a wrong name or a
    wrong password) or :class:`AccountLocked` otherwise.

    Failures are counted and audited in the caller's transaction: the caller commits it on failure
    too (catch the error inside the transaction), or the count never grows.
    """
    username = (username or "").strip()
    row = None
    if rules.valid_username(username):
        row = session.execute(
            text("SELECT id, password_hash, active, failed_logins, locked_until FROM app_user WHERE username = :u "
                 "FOR UPDATE"),
            {"u": username},
        ).one_or_none()
    if row is None or not row.active:
        verify_password(_DUMMY_HASH, password or "")
        audit.record(session, username[:64] or "?", "LOGIN_FAILED", "app_user", detail={"remote_addr": remote_addr})
        raise LoginFailed(_FAILED)
    if row.locked_until is not None and row.locked_until > now:
        audit.record(session, username, "LOGIN_FAILED", "app_user", row.id,
                     detail={"remote_addr": remote_addr, "locked": True})
        raise AccountLocked(
            f"密码错误次数过多，请于 {row.locked_until:%H:%M} 后再试 / too many wrong passwords; "
            f"try again after {row.locked_until:%H:%M} UTC"
        )
    if not verify_password(row.password_hash, password or ""):
        failures = row.failed_logins + 1
        locked = now + timedelta(minutes=settings.login_lockout_minutes) if failures >= settings.login_max_failures else None
        session.execute(
            text("UPDATE app_user SET failed_logins = :n, locked_until = :until WHERE id = :id"),
            {"n": 0 if locked else failures, "until": locked, "id": row.id},
        )
        audit.record(session, username, "LOGIN_FAILED", "app_user", row.id,
                     detail={"remote_addr": remote_addr, "failures": failures, "locked": locked is not None})
        raise LoginFailed(_FAILED)
    if _HASHER.check_needs_rehash(row.password_hash):
        session.execute(text("UPDATE app_user SET password_hash = :h WHERE id = :id"),
                        {"h": hash_password(password), "id": row.id})
    if row.failed_logins or row.locked_until:
        session.execute(text("UPDATE app_user SET failed_logins = 0, locked_until = NULL WHERE id = :id"),
                        {"id": row.id})
    return get_user(session, username)


def start_session(
    session: Session, settings: Settings, user: User, *, now: datetime, user_agent: str = "", remote_addr: str = ""
) -> str:
    """A new session for ``user``; returns the token for the cookie (stored only as its hash)."""
    token = secrets.token_urlsafe(32)
    session.execute(
        text("INSERT INTO user_session (token_hash, user_id, created_at, expires_at, user_agent, remote_addr) "
             "VALUES (:h, :u, :now, :exp, :ua, :ip)"),
        {"h": _token_hash(token), "u": user.id, "now": now, "exp": now + timedelta(hours=settings.session_hours),
         "ua": (user_agent or "")[:200], "ip": (remote_addr or "")[:64]},
    )
    # Sessions long over are of no use to anyone.
    session.execute(text("DELETE FROM user_session WHERE expires_at < :old"), {"old": now - timedelta(days=30)})
    audit.record(session, user.username, "LOGIN", "app_user", user.id, detail={"remote_addr": remote_addr},
                 role=user.role)
    return token


def principal_for_token(session: Session, token: str | None, *, now: datetime) -> Principal | None:
    """The principal of a live session, or None (no such token, ended, expired, user deactivated)."""
    if not token:
        return None
    user_id = session.execute(
        text("SELECT user_id FROM user_session WHERE token_hash = :h AND ended_at IS NULL AND expires_at > :now"),
        {"h": _token_hash(token), "now": now},
    ).scalar()
    return load_principal(session, user_id) if user_id is not None else None


def end_session(session: Session, token: str | None, *, now: datetime) -> None:
    if not token:
        return
    user = session.execute(
        text("UPDATE user_session SET ended_at = :now WHERE token_hash = :h AND ended_at IS NULL "
             "RETURNING (SELECT username FROM app_user WHERE id = user_id), user_id, "
             "(SELECT role FROM app_user WHERE id = user_id)"),
        {"h": _token_hash(token), "now": now},
    ).one_or_none()
    if user is not None:
        audit.record(session, user[0], "LOGOUT", "app_user", user[1], role=user[2])


# --- demo users ---------------------------------------------------------------------------------------

# (username, password, role, level, display name). The passwords are public (README): demo only.
DEMO_USERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("commander", "demo-commander", "district_commander", "district", "区指挥部值班员"),
    ("subdistrict", "demo-subdistrict", "subdistrict_staff", "subdistrict", "街道防控办"),
    ("community", "demo-community", "community_worker", "community", "社区工作者"),
    ("gridleader", "demo-gridleader", "grid_leader", "grid", "网格员"),
    ("volunteer", "demo-volunteer", "volunteer", "grid", "志愿者"),
    ("auditor", "demo-auditor", "auditor", "district", "审计员"),
)


def demo_areas(session: Session) -> dict[str, int]:
    """The demo users' areas: the district, its first subdistrict, that one's first community and
    that one's first grid."""
    row = session.execute(
        text(
            "SELECT s.district_id, s.id AS subdistrict_id, c.id AS community_id, g.id AS grid_id "
            "FROM grid g JOIN community c ON c.id = g.community_id JOIN subdistrict s ON s.id = c.subdistrict_id "
            "ORDER BY s.id, c.id, g.id LIMIT 1"
        )
    ).one_or_none()
    if row is None:
        raise GridmapError("还没有辖区数据 / no district loaded", code="no_district")
    return {"district": row.district_id, "subdistrict": row.subdistrict_id, "community": row.community_id,
            "grid": row.grid_id}


def create_demo_users(session: Session, settings: Settings | None = None) -> list[dict]:
    """The demo users, one per role, bound to the demo areas; existing ones are re-bound, their
    passwords kept. Returns what was made (for the README's table and the CLI)."""
    areas = demo_areas(session)
    made = []
    for username, password, role, level, display in DEMO_USERS:
        exists = session.execute(text("SELECT id FROM app_user WHERE username = :u"), {"u": username}).scalar()
        if exists is None:
            session.execute(
                text(
                    "INSERT INTO app_user (username, display_name, password_hash, role, area_level, area_id, active,"
                    " failed_logins, password_changed_at) VALUES (:u, :d, :h, :r, :l, :a, true, 0, now())"
                ),
                {"u": username, "d": display, "h": hash_password(password), "r": role, "l": level, "a": areas[level]},
            )
        else:
            session.execute(
                text("UPDATE app_user SET role = :r, area_level = :l, area_id = :a WHERE id = :id "
                     "AND (role, area_level, area_id) IS DISTINCT FROM (:r, :l, :a)"),
                {"r": role, "l": level, "a": areas[level], "id": exists},
            )
        made.append({"username": username, "password": password, "role": role, "area_level": level,
                     "area_id": areas[level]})
    return made
