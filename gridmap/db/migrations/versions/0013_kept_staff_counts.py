"""staff counted per grid and role, repaired from a log of what changed

包片联户 puts a staff member in every grid they take directly, or through a building or a
household of it. Finding those grids for a city (issue 8: ~1.3 M assignments, ~960 k of them
household-level, joined through 4 M households) took ~2 s of the 2 s the metrics of all grids may
take. So the counts are kept in ``grid_staff_count (grid_id, role, n)`` with the pattern of 0012:
nothing adds to or subtracts from a kept figure; every statement that can change one appends the
grid(s) it touched to ``staff_count_dirty`` (statement-level triggers with transition tables,
inserts only, so writers never wait on each other), and the reader recomputes those grids with
the very query of the full computation (gridmap.services.coverage), so the figures cannot drift:

- staff_assignment inserted, deleted or updated: the grids of its old and new targets (a grid, a
  building's grid, a household's building's grid);
- staff whose role or active flag changed: the grids of their assignments (a deleted staff member's
  assignments go by cascade and are logged by the assignment trigger);
- household moved to another building: both grids, when it has assignments; household deleted:
  its building's grid (its assignments went by cascade, when the household was already gone);
- building moved to another grid: both grids; building deleted: its grid;
- TRUNCATE of any of them: everything.

No state row yet: the first read computes everything.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The grids of assignment rows ``r``: direct, through a building, through a household's building.
_GRIDS_OF = """
    SELECT r.grid_id FROM {rows} r WHERE r.grid_id IS NOT NULL
    UNION SELECT b.grid_id FROM {rows} r JOIN building b ON b.id = r.building_id
    UNION SELECT b.grid_id FROM {rows} r JOIN household h ON h.id = r.household_id JOIN building b ON b.id = h.building_id
"""

# SECURITY DEFINER: a role that may write assignments but not the log still leaves its mark.
FUNCTIONS = f"""
CREATE FUNCTION gridmap_staff_dirty_assignments() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO staff_count_dirty (grid_id) {_GRIDS_OF.format(rows="new_rows")};
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    INSERT INTO staff_count_dirty (grid_id) {_GRIDS_OF.format(rows="old_rows")};
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_staff_dirty_staff() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  INSERT INTO staff_count_dirty (grid_id)
  WITH changed AS (
    SELECT nr.id FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    WHERE o.role IS DISTINCT FROM nr.role OR o.active IS DISTINCT FROM nr.active),
  a AS (SELECT sa.* FROM staff_assignment sa WHERE sa.staff_id IN (SELECT id FROM changed))
  {_GRIDS_OF.format(rows="a")};
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_staff_dirty_households() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO staff_count_dirty (grid_id)
    SELECT DISTINCT b.grid_id FROM old_rows o JOIN building b ON b.id = o.building_id;
  ELSE
    INSERT INTO staff_count_dirty (grid_id)
    SELECT DISTINCT b.grid_id
    FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    JOIN building b ON b.id IN (o.building_id, nr.building_id)
    WHERE o.building_id <> nr.building_id
      AND EXISTS (SELECT 1 FROM staff_assignment sa WHERE sa.household_id = nr.id);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_staff_dirty_buildings() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO staff_count_dirty (grid_id) SELECT DISTINCT grid_id FROM old_rows;
  ELSE
    INSERT INTO staff_count_dirty (grid_id)
    SELECT DISTINCT x.grid_id
    FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    CROSS JOIN LATERAL (VALUES (o.grid_id), (nr.grid_id)) AS x(grid_id)
    WHERE o.grid_id <> nr.grid_id;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_staff_dirty_all() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  INSERT INTO staff_count_dirty (everything) VALUES (true);
  RETURN NULL;
END $$;
"""


def _trigger(name: str, table: str, event: str, func: str) -> tuple[str, str]:
    refs = {"INSERT": "REFERENCING NEW TABLE AS new_rows",
            "DELETE": "REFERENCING OLD TABLE AS old_rows",
            "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
            "TRUNCATE": ""}[event]
    return table, (f"CREATE TRIGGER {name} AFTER {event} ON {table} {refs} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {func}()")


# name: (table, the statement creating it)
TRIGGERS = {
    **{f"staff_assignment_staff_count_{e.lower()}": _trigger(
        f"staff_assignment_staff_count_{e.lower()}", "staff_assignment", e, "gridmap_staff_dirty_assignments")
       for e in ("INSERT", "UPDATE", "DELETE")},
    "staff_staff_count_update": _trigger("staff_staff_count_update", "staff", "UPDATE", "gridmap_staff_dirty_staff"),
    **{f"household_staff_count_{e.lower()}": _trigger(
        f"household_staff_count_{e.lower()}", "household", e, "gridmap_staff_dirty_households")
       for e in ("UPDATE", "DELETE")},
    **{f"building_staff_count_{e.lower()}": _trigger(
        f"building_staff_count_{e.lower()}", "building", e, "gridmap_staff_dirty_buildings")
       for e in ("UPDATE", "DELETE")},
    **{f"{t}_staff_count_truncate": _trigger(f"{t}_staff_count_truncate", t, "TRUNCATE", "gridmap_staff_dirty_all")
       for t in ("staff_assignment", "staff", "household", "building")},
}


def upgrade() -> None:
    op.create_table(
        "grid_staff_count",
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n > 0", name="grid_staff_count_positive"),
    )
    op.create_table(
        "staff_count_state",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        # NULL until the first full computation (the row exists first as the refreshers' lock).
        sa.Column("computed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("id = 1", name="staff_count_state_one_row"),
    )
    op.create_table(
        "staff_count_dirty",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("grid_id", sa.Integer()),
        sa.Column("everything", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(FUNCTIONS)
    for _table, statement in TRIGGERS.values():
        op.execute(statement)


def downgrade() -> None:
    for name, (table, _statement) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for fn in ("assignments", "staff", "households", "buildings", "all"):
        op.execute(f"DROP FUNCTION IF EXISTS gridmap_staff_dirty_{fn}()")
    op.drop_table("staff_count_dirty")
    op.drop_table("staff_count_state")
    op.drop_table("grid_staff_count")
