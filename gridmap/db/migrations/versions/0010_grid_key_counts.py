"""key persons counted per grid and category, kept from the per-building counts

With grid totals of households, residents and key persons, an area that covers whole grids counts
each of them as one row, and only the buildings of the grids its boundary cuts are tested one by
one (issue 8: a sub-district sums a few hundred grid rows instead of tens of thousands of
buildings).

- ``building_key_count`` carries the building's ``grid_id``; a building moved to another grid
  carries its counts along;
- ``grid_key_count (grid_id, category_id, n)`` follows ``building_key_count`` through a
  statement-level trigger (transition tables: one grouped upsert per statement).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE OR REPLACE FUNCTION gridmap_key_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE building_key_count k SET n = k.n - d.n
    FROM (SELECT building_id, category_id, count(*) AS n FROM old_rows GROUP BY 1, 2) d
    WHERE k.building_id = d.building_id AND k.category_id = d.category_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO building_key_count AS k (building_id, grid_id, category_id, n)
    SELECT d.building_id, b.grid_id, d.category_id, d.n
    FROM (SELECT building_id, category_id, count(*) AS n FROM new_rows GROUP BY 1, 2) d
    JOIN building b ON b.id = d.building_id
    ON CONFLICT (building_id, category_id) DO UPDATE SET n = k.n + EXCLUDED.n;
  END IF;
  DELETE FROM building_key_count WHERE n = 0;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_grid_key_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE grid_key_count g SET n = g.n - d.n
    FROM (SELECT grid_id, category_id, sum(n) AS n FROM old_rows GROUP BY 1, 2) d
    WHERE g.grid_id = d.grid_id AND g.category_id = d.category_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO grid_key_count AS g (grid_id, category_id, n)
    SELECT nr.grid_id, nr.category_id, sum(nr.n) FROM new_rows nr JOIN grid ON grid.id = nr.grid_id
    GROUP BY 1, 2
    ON CONFLICT (grid_id, category_id) DO UPDATE SET n = g.n + EXCLUDED.n;
  END IF;
  DELETE FROM grid_key_count WHERE n = 0;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_building_grid_moves() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE building_key_count k SET grid_id = nr.grid_id
  FROM new_rows nr JOIN old_rows o ON o.id = nr.id
  WHERE k.building_id = nr.id AND nr.grid_id IS DISTINCT FROM o.grid_id;
  RETURN NULL;
END $$;
"""

# The 0008 version, for the downgrade.
KEY_COUNTS_0008 = """
CREATE OR REPLACE FUNCTION gridmap_key_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE building_key_count k SET n = k.n - d.n
    FROM (SELECT building_id, category_id, count(*) AS n FROM old_rows GROUP BY 1, 2) d
    WHERE k.building_id = d.building_id AND k.category_id = d.category_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO building_key_count AS k (building_id, category_id, n)
    SELECT building_id, category_id, count(*) FROM new_rows GROUP BY 1, 2
    ON CONFLICT (building_id, category_id) DO UPDATE SET n = k.n + EXCLUDED.n;
  END IF;
  DELETE FROM building_key_count WHERE n = 0;
  RETURN NULL;
END $$;
"""

TRIGGERS = {
    "building_key_count_grid_insert": (
        "building_key_count",
        "AFTER INSERT ON building_key_count REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_grid_key_counts()",
    ),
    "building_key_count_grid_update": (
        "building_key_count",
        "AFTER UPDATE ON building_key_count REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_grid_key_counts()",
    ),
    "building_key_count_grid_delete": (
        "building_key_count",
        "AFTER DELETE ON building_key_count REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_grid_key_counts()",
    ),
    "building_grid_moves": (
        "building",
        "AFTER UPDATE ON building REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_building_grid_moves()",
    ),
}


def upgrade() -> None:
    # The grid of each counted building rides along, so a cascade (a building deleted with its
    # counts) still finds the grid total to lower.
    op.add_column("building_key_count", sa.Column("grid_id", sa.Integer(), nullable=True))
    op.execute("UPDATE building_key_count k SET grid_id = b.grid_id FROM building b WHERE b.id = k.building_id")
    op.alter_column("building_key_count", "grid_id", nullable=False)
    op.create_table(
        "grid_key_count",
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("category_id", sa.Integer(), sa.ForeignKey("key_person_category.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.CheckConstraint("n >= 0", name="grid_key_count_nonnegative"),
    )
    op.execute(
        "INSERT INTO grid_key_count (grid_id, category_id, n) "
        "SELECT grid_id, category_id, sum(n) FROM building_key_count GROUP BY 1, 2"
    )
    op.create_index("ix_building_key_count_category", "building_key_count", ["category_id"])
    op.execute(FUNCTIONS)
    for name, (_table, body) in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    for name, (table, _body) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gridmap_grid_key_counts()")
    op.execute("DROP FUNCTION IF EXISTS gridmap_building_grid_moves()")
    op.drop_index("ix_building_key_count_category", "building_key_count")
    op.drop_table("grid_key_count")
    op.execute(KEY_COUNTS_0008)
    op.drop_column("building_key_count", "grid_id")
