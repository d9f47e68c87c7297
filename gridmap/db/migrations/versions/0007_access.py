"""access: users and sessions, the append-only audit trail, row-level security on personal data

* ``app_user`` (bound to one area by ``area_level`` + ``area_id``), ``user_session`` (token hashes,
  so any worker serves any request) — models in gridmap.db.models_auth.
* ``audit_log``: append-only. A trigger raises on UPDATE, DELETE and TRUNCATE, and UPDATE, DELETE,
  TRUNCATE are revoked from PUBLIC and from the role running this migration. Statement-level
  triggers with transition tables on the main tables write one row per changed row: who
  (``current_setting('gridmap.actor')``, which the services set per transaction, else
  ``db:<session_user>``), when, table, row id, and the row as jsonb (INSERT: after; DELETE: before;
  UPDATE: only the columns that changed, before and after). A bulk load may set
  ``SET LOCAL gridmap.audit_off = 'on'`` for its own transaction (the demo loader does, and writes
  one BULK_LOAD row instead); TRUNCATE is logged regardless.
* PostgreSQL roles: a group per app role (``gridmap_grid_leader`` ...), each a member of
  ``gridmap_sql`` which may read the non-personal tables. A user who may use SQL directly gets a
  login role of their own (``gridmap user add --sql-role``) in their role's group; the view
  ``user_area`` maps it to the user's area. Cluster-wide roles are created only when missing, and
  only when the migrating role may create roles (otherwise a NOTICE; the policies still hold: a
  role that is not mapped sees no personal row).
* Row-level security (ENABLE, not FORCE: the table owner, i.e. the app, is not restricted and does
  its own filtering in the services) on ``key_person``, ``key_person_category_link``,
  ``contact_log`` (rows of the grids where the role sees personal data) and ``household`` (rows of
  the role's area; the columns ``head_name`` and ``phone`` are granted only to grid leaders and
  community workers). ``key_person_masked`` shows commanders the key persons of their area with
  masked name, phone and ID number (138****1234), the same masks as gridmap.domain.access.

Written by hand, with literals, so this revision stays what it was.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

APP_ROLES = ("district_commander", "subdistrict_staff", "community_worker", "grid_leader", "volunteer", "auditor")
BASE_ROLE = "gridmap_sql"
GROUP_ROLES = tuple(f"gridmap_{r}" for r in APP_ROLES)
PERSONAL_GROUPS = ("gridmap_grid_leader", "gridmap_community_worker")

# Tables whose every write is audited (those of 0005/0006 only when they exist), and the keys of
# their rows that are never copied into the log.
AUDITED: dict[str, tuple[str, ...]] = {
    "controlled_area": (),
    "key_person": (),
    "household": (),
    "staff": (),
    "staff_assignment": (),
    "risk_assignment": (),
    "checkpoint": (),
    "service_point": (),
    "contact_log": (),
    "duty_shift": (),
    "task": (),
    "task_item": (),
    "daily_report": (),
    # Users: a password hash never enters the log; counting failed log-ins is not a change of the user.
    "app_user": ("password_hash", "failed_logins", "locked_until"),
}

# Non-personal tables every SQL role may read (those that exist).
READABLE = (
    "district", "subdistrict", "community", "grid", "compound", "gate", "building", "staff",
    "staff_assignment", "risk_class", "risk_assignment", "controlled_area", "checkpoint", "service_point",
    "key_person_category", "duty_shift", "task_type", "task", "task_item", "task_history", "daily_report",
    "spatial_ref_sys",
)
HOUSEHOLD_PUBLIC_COLUMNS = ("id", "building_id", "unit", "room", "residents", "geom")

FUNCTIONS = r"""
CREATE FUNCTION gridmap_audit_actor() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('gridmap.actor', true), ''), 'db:' || session_user)
$$;

CREATE FUNCTION gridmap_audit_rows() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  dropped text[] := CASE WHEN TG_NARGS > 0 THEN TG_ARGV ELSE '{}'::text[] END;
  who text := gridmap_audit_actor();
  who_role text := nullif(current_setting('gridmap.actor_role', true), '');
BEGIN
  IF coalesce(current_setting('gridmap.audit_off', true), '') = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    INSERT INTO audit_log (actor, actor_role, action, table_name, row_id, after)
    SELECT who, who_role, 'INSERT', TG_TABLE_NAME, (j ->> 'id')::bigint, j
    FROM (SELECT to_jsonb(n) - dropped AS j FROM new_rows n) x;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO audit_log (actor, actor_role, action, table_name, row_id, before, after)
    SELECT who, who_role, 'UPDATE', TG_TABLE_NAME, o.id,
           (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(o.j) e
             WHERE n.j -> e.key IS DISTINCT FROM e.value),
           (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(n.j) e
             WHERE o.j -> e.key IS DISTINCT FROM e.value)
    FROM (SELECT (to_jsonb(r) ->> 'id')::bigint AS id, to_jsonb(r) - dropped AS j FROM old_rows r) o
    JOIN (SELECT (to_jsonb(r) ->> 'id')::bigint AS id, to_jsonb(r) - dropped AS j FROM new_rows r) n
      ON n.id = o.id
    WHERE o.j IS DISTINCT FROM n.j;
  ELSE
    INSERT INTO audit_log (actor, actor_role, action, table_name, row_id, before)
    SELECT who, who_role, 'DELETE', TG_TABLE_NAME, (j ->> 'id')::bigint, j
    FROM (SELECT to_jsonb(o) - dropped AS j FROM old_rows o) x;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_audit_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit_log (actor, actor_role, action, table_name)
  VALUES (gridmap_audit_actor(), nullif(current_setting('gridmap.actor_role', true), ''), 'TRUNCATE', TG_TABLE_NAME);
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;

-- The masks of gridmap.domain.access, for SQL users.
CREATE FUNCTION gridmap_mask_phone(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL OR v = '' THEN v
              WHEN length(btrim(v)) >= 11
                THEN left(btrim(v), 3) || repeat('*', length(btrim(v)) - 7) || right(btrim(v), 4)
              WHEN length(btrim(v)) > 4 THEN repeat('*', length(btrim(v)) - 2) || right(btrim(v), 2)
              ELSE repeat('*', length(btrim(v))) END
$$;
CREATE FUNCTION gridmap_mask_id_number(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL OR v = '' THEN v
              WHEN length(btrim(v)) > 8
                THEN left(btrim(v), 4) || repeat('*', length(btrim(v)) - 8) || right(btrim(v), 4)
              ELSE repeat('*', length(btrim(v))) END
$$;
CREATE FUNCTION gridmap_mask_name(v text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v IS NULL OR v = '' THEN v
              ELSE left(btrim(v), 1) || repeat('*', greatest(length(btrim(v)) - 1, 1)) END
$$;

-- Which SQL role sees which area: the users that have a login role of their own.
CREATE VIEW user_area AS
  SELECT db_role, role, area_level, area_id FROM app_user WHERE db_role IS NOT NULL AND active;

-- The grids of ``who``'s area; with ``personal``, only those where ``who`` sees personal data
-- (a grid leader's grid, a community worker's community). SECURITY DEFINER so that SQL roles need
-- no access to app_user; ``who`` is the caller's current_user, passed in by the policies.
CREATE FUNCTION gridmap_user_grids(who name, personal boolean) RETURNS integer[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT coalesce(array_agg(DISTINCT g.id), '{}'::integer[])
  FROM user_area ua
  JOIN grid g ON CASE ua.area_level
        WHEN 'grid' THEN g.id = ua.area_id
        WHEN 'community' THEN g.community_id = ua.area_id
        WHEN 'subdistrict' THEN g.community_id IN (SELECT c.id FROM community c WHERE c.subdistrict_id = ua.area_id)
        WHEN 'district' THEN g.community_id IN (
            SELECT c.id FROM community c JOIN subdistrict s ON s.id = c.subdistrict_id
            WHERE s.district_id = ua.area_id)
        ELSE false END
  WHERE ua.db_role = who::text
    AND (NOT personal
         OR (ua.role = 'grid_leader' AND ua.area_level = 'grid')
         OR (ua.role = 'community_worker' AND ua.area_level = 'community'))
$$;
REVOKE ALL ON FUNCTION gridmap_user_grids(name, boolean) FROM PUBLIC;

CREATE VIEW key_person_masked WITH (security_barrier) AS
  SELECT kp.id, kp.household_id, b.grid_id, g.community_id, kp.gender, kp.birth_year,
         CASE WHEN p.personal THEN kp.name ELSE gridmap_mask_name(kp.name) END AS name,
         CASE WHEN p.personal THEN kp.phone ELSE gridmap_mask_phone(kp.phone) END AS phone,
         CASE WHEN p.personal THEN kp.id_number ELSE gridmap_mask_id_number(kp.id_number) END AS id_number,
         p.personal AS in_clear
  FROM key_person kp
  JOIN household h ON h.id = kp.household_id
  JOIN building b ON b.id = h.building_id
  JOIN grid g ON g.id = b.grid_id
  CROSS JOIN LATERAL (
      SELECT b.grid_id = ANY ((SELECT gridmap_user_grids(current_user, true))::integer[]) AS personal) p
  WHERE b.grid_id = ANY ((SELECT gridmap_user_grids(current_user, false))::integer[]);
"""

# Row-level security: (table, policy name, USING). Policies are FOR SELECT TO PUBLIC: every role
# that is subject to RLS (not the owner, not a superuser) gets rows only through them.
_PERSONAL_GRIDS = "(SELECT gridmap_user_grids(current_user, true))::integer[]"
_AREA_GRIDS = "(SELECT gridmap_user_grids(current_user, false))::integer[]"
POLICIES = (
    (
        "key_person",
        "key_person_personal_area",
        "household_id IN (SELECT h.id FROM household h JOIN building b ON b.id = h.building_id"
        f" WHERE b.grid_id = ANY ({_PERSONAL_GRIDS}))",
    ),
    ("key_person_category_link", "key_person_category_link_visible", "key_person_id IN (SELECT id FROM key_person)"),
    ("contact_log", "contact_log_visible", "key_person_id IN (SELECT id FROM key_person)"),
    (
        "household",
        "household_area",
        f"building_id IN (SELECT b.id FROM building b WHERE b.grid_id = ANY ({_AREA_GRIDS}))",
    ),
)


def _exists(table: str) -> bool:
    return op.get_bind().execute(sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{table}"}).scalar()


def _create_tables() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("area_level", sa.String(length=16), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("db_role", sa.String(length=63), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN (" + ", ".join(f"'{r}'" for r in APP_ROLES) + ")", name="app_user_role"
        ),
        sa.CheckConstraint(
            "area_level IN ('district', 'subdistrict', 'community', 'grid')", name="app_user_area_level"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
        sa.UniqueConstraint("db_role"),
    )
    op.create_table(
        "user_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("remote_addr", sa.String(length=64), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_user_session_user_id", "user_session", ["user_id"])
    op.create_index("ix_user_session_expires_at", "user_session", ["expires_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("txid", sa.BigInteger(), server_default=sa.text("txid_current()"), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("db_user", sa.String(length=63), server_default=sa.text("current_user"), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_table_name", "audit_log", ["table_name", "row_id"])


def _audit_triggers() -> None:
    op.execute(
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION gridmap_audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_audit_log_append_only()"
    )
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC")
    op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM CURRENT_USER")
    for table, dropped in AUDITED.items():
        if not _exists(table):
            continue
        args = ", ".join(f"'{d}'" for d in dropped)
        for event, refs in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            op.execute(
                f"CREATE TRIGGER {table}_audit_{event.lower()} AFTER {event} ON {table} "
                f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION gridmap_audit_rows({args})"
            )
        op.execute(
            f"CREATE TRIGGER {table}_audit_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_audit_truncate()"
        )


# Cluster-wide roles: created when missing and when we may; a concurrent migration of another
# database (parallel test workers) creating the same role is not an error.
ROLES_SQL = """
DO $$
DECLARE
  r text;
  may_create boolean := (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user);
BEGIN
  FOREACH r IN ARRAY ARRAY[%(roles)s] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      IF NOT may_create THEN
        RAISE NOTICE 'gridmap: cannot create role %% (no CREATEROLE); SQL access by role is off', r;
        CONTINUE;
      END IF;
      BEGIN
        EXECUTE format('CREATE ROLE %%I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
      END;
    END IF;
    IF r <> '%(base)s' AND may_create AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%(base)s') THEN
      BEGIN
        EXECUTE format('GRANT %%I TO %%I', '%(base)s', r);
      EXCEPTION WHEN duplicate_object OR unique_violation OR internal_error THEN NULL;
      END;
    END IF;
  END LOOP;
END $$;
"""


def _grant(privilege: str, target: str, role: str) -> None:
    # Only to roles that exist (they may not, when the migrating role could not create them).
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"EXECUTE 'GRANT {privilege} ON {target} TO {role}'; END IF; END $$"
    )


def _grants() -> None:
    roles = ", ".join(f"'{r}'" for r in (BASE_ROLE, *GROUP_ROLES))
    op.execute(ROLES_SQL % {"roles": roles, "base": BASE_ROLE})
    op.execute(
        f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{BASE_ROLE}') THEN "
        f"EXECUTE 'GRANT USAGE ON SCHEMA public TO {BASE_ROLE}'; END IF; END $$"
    )
    for table in READABLE:
        if _exists(table):
            _grant("SELECT", table, BASE_ROLE)
    for table in ("key_person", "key_person_category_link", "contact_log", "key_person_masked"):
        if _exists(table):
            _grant("SELECT", table, BASE_ROLE)
    _grant(f"SELECT ({', '.join(HOUSEHOLD_PUBLIC_COLUMNS)})", "household", BASE_ROLE)
    for group in PERSONAL_GROUPS:
        _grant("SELECT", "household", group)
    _grant("EXECUTE", "FUNCTION gridmap_user_grids(name, boolean)", BASE_ROLE)


def upgrade() -> None:
    _create_tables()
    op.execute(FUNCTIONS)
    _audit_triggers()
    for table, name, using in POLICIES:
        if not _exists(table):
            continue
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {name} ON {table} FOR SELECT TO PUBLIC USING ({using})")
    _grants()


def downgrade() -> None:
    # The cluster-wide roles stay: other databases of the cluster may use them.
    for table, name, _using in POLICIES:
        if _exists(table):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for role in (BASE_ROLE, *GROUP_ROLES):
        op.execute(
            f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
            f"EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}'; "
            f"EXECUTE 'REVOKE USAGE ON SCHEMA public FROM {role}'; END IF; END $$"
        )
    for table in AUDITED:
        if _exists(table):
            for event in ("insert", "update", "delete", "truncate"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_audit_{event} ON {table}")
    op.execute("DROP VIEW IF EXISTS key_person_masked")
    op.execute("DROP FUNCTION IF EXISTS gridmap_user_grids(name, boolean)")
    op.execute("DROP VIEW IF EXISTS user_area")
    for fn in ("gridmap_mask_phone(text)", "gridmap_mask_id_number(text)", "gridmap_mask_name(text)",
               "gridmap_audit_rows()", "gridmap_audit_truncate()"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION IF EXISTS gridmap_audit_log_append_only()")
    op.execute("DROP FUNCTION IF EXISTS gridmap_audit_actor()")
    op.drop_table("user_session")
    op.drop_table("app_user")
