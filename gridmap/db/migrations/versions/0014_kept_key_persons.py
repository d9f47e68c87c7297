"""key persons counted per grid, repaired from a log of what changed; observation index

The metrics of all grids (issue 8) need the distinct key persons of each grid. Per category they
are kept since 0010 (``grid_key_count``), but a person may be in several categories, or in none,
so the distinct count walked every category link (~0.8 M at city scale) on every read, and looked
through key_person for the persons without a category: ~0.7-1 s of the 2 s allowed. So the count
per grid is kept in ``grid_key_person_count (grid_id, n)`` with the pattern of 0012/0013: nothing
adds to or subtracts from a kept figure; every statement that can change one appends the grid(s)
it touched to ``key_person_count_dirty`` (statement-level triggers with transition tables, inserts
only), and the reader recomputes those grids with the very query of the full computation
(gridmap.services.coverage), so the figures cannot drift:

- key_person inserted or deleted: the grid of its household's building; updated with another
  household: both grids (a person deleted with its household by cascade: the household trigger);
- household moved to another building: both grids, when it has key persons; household deleted:
  its building's grid (its key persons went by cascade, when the household was already gone);
- building moved to another grid: both grids; building deleted: its grid;
- TRUNCATE of any of them: everything.

No state row yet: the first read computes everything (the loaders compute it in their
transaction, gridmap.services.coverage.refresh_kept_figures).

Home observation asks for the persons whose observation started in the last 14 days: ~47 k of
0.7 M key persons have a start at all, so a partial index on ``observation_start`` (only those
rows) replaces a scan of the whole table (~0.3 s at city scale).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The grids of key_person rows ``r``: through their household's building.
_GRIDS_OF = """
    SELECT DISTINCT b.grid_id FROM {rows} r JOIN household h ON h.id = r.household_id
    JOIN building b ON b.id = h.building_id
"""

# SECURITY DEFINER: a role that may write key persons but not the log still leaves its mark.
FUNCTIONS = f"""
CREATE FUNCTION gridmap_key_person_dirty_persons() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO key_person_count_dirty (grid_id) {_GRIDS_OF.format(rows="new_rows")};
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO key_person_count_dirty (grid_id) {_GRIDS_OF.format(rows="old_rows")};
  ELSE
    INSERT INTO key_person_count_dirty (grid_id)
    WITH moved AS (
      SELECT o.household_id AS old_household, nr.household_id AS new_household
      FROM old_rows o JOIN new_rows nr ON nr.id = o.id WHERE o.household_id <> nr.household_id)
    SELECT DISTINCT b.grid_id
    FROM moved m JOIN household h ON h.id IN (m.old_household, m.new_household)
    JOIN building b ON b.id = h.building_id;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_key_person_dirty_households() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO key_person_count_dirty (grid_id)
    SELECT DISTINCT b.grid_id FROM old_rows o JOIN building b ON b.id = o.building_id;
  ELSE
    INSERT INTO key_person_count_dirty (grid_id)
    SELECT DISTINCT b.grid_id
    FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    JOIN building b ON b.id IN (o.building_id, nr.building_id)
    WHERE o.building_id <> nr.building_id
      AND EXISTS (SELECT 1 FROM key_person kp WHERE kp.household_id = nr.id);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_key_person_dirty_buildings() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO key_person_count_dirty (grid_id) SELECT DISTINCT grid_id FROM old_rows;
  ELSE
    INSERT INTO key_person_count_dirty (grid_id)
    SELECT DISTINCT x.grid_id
    FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    CROSS JOIN LATERAL (VALUES (o.grid_id), (nr.grid_id)) AS x(grid_id)
    WHERE o.grid_id <> nr.grid_id;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_key_person_dirty_all() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  INSERT INTO key_person_count_dirty (everything) VALUES (true);
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
    **{f"key_person_person_count_{e.lower()}": _trigger(
        f"key_person_person_count_{e.lower()}", "key_person", e, "gridmap_key_person_dirty_persons")
       for e in ("INSERT", "UPDATE", "DELETE")},
    **{f"household_person_count_{e.lower()}": _trigger(
        f"household_person_count_{e.lower()}", "household", e, "gridmap_key_person_dirty_households")
       for e in ("UPDATE", "DELETE")},
    **{f"building_person_count_{e.lower()}": _trigger(
        f"building_person_count_{e.lower()}", "building", e, "gridmap_key_person_dirty_buildings")
       for e in ("UPDATE", "DELETE")},
    **{f"{t}_person_count_truncate": _trigger(f"{t}_person_count_truncate", t, "TRUNCATE",
                                               "gridmap_key_person_dirty_all")
       for t in ("key_person", "household", "building")},
}


def upgrade() -> None:
    op.create_table(
        "grid_key_person_count",
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n > 0", name="grid_key_person_count_positive"),
    )
    op.create_table(
        "key_person_count_state",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        # NULL until the first full computation (the row exists first as the refreshers' lock).
        sa.Column("computed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("id = 1", name="key_person_count_state_one_row"),
    )
    op.create_table(
        "key_person_count_dirty",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("grid_id", sa.Integer()),
        sa.Column("everything", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(FUNCTIONS)
    for _table, statement in TRIGGERS.values():
        op.execute(statement)
    op.create_index("ix_key_person_observation_start", "key_person", ["observation_start"],
                    postgresql_where=sa.text("observation_start IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_key_person_observation_start", "key_person")
    for name, (table, _statement) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for fn in ("persons", "households", "buildings", "all"):
        op.execute(f"DROP FUNCTION IF EXISTS gridmap_key_person_dirty_{fn}()")
    op.drop_table("key_person_count_dirty")
    op.drop_table("key_person_count_state")
    op.drop_table("grid_key_person_count")
