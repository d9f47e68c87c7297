"""buildings counted per grid; key-person counts per building found by grid

The impact of a large drawn area (issue 8: a sub-district of ~5 km radius, ~1,300 whole grids)
spent most of its time counting the buildings of each whole grid and opening every building of
the whole grids to find those with cases. Now

- ``grid.buildings`` is kept by the building totals trigger of 0003 (same transition tables), so a
  whole grid gives its buildings as one value;
- ``building_key_count (grid_id, category_id)`` is indexed, so the buildings with cases of the
  whole grids are read straight from the case categories' rows of those grids.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# 0003's function, with the count of buildings added.
BUILDING_TOTALS = """
CREATE OR REPLACE FUNCTION gridmap_building_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE grid g SET households = g.households + d.n, residents = g.residents + d.r,
                      buildings = g.buildings + d.b
    FROM (SELECT grid_id, sum(households) AS n, sum(residents) AS r, count(*) AS b
          FROM new_rows GROUP BY grid_id) d
    WHERE g.id = d.grid_id;
  ELSIF TG_OP = 'DELETE' THEN
    UPDATE grid g SET households = g.households - d.n, residents = g.residents - d.r,
                      buildings = g.buildings - d.b
    FROM (SELECT grid_id, sum(households) AS n, sum(residents) AS r, count(*) AS b
          FROM old_rows GROUP BY grid_id) d
    WHERE g.id = d.grid_id;
  ELSE  -- UPDATE: the net change per grid, and only grids whose totals move
    UPDATE grid g SET households = g.households + d.n, residents = g.residents + d.r,
                      buildings = g.buildings + d.b
    FROM (SELECT grid_id, sum(n) AS n, sum(r) AS r, sum(b) AS b
          FROM (SELECT grid_id, households AS n, residents AS r, 1 AS b FROM new_rows
                UNION ALL
                SELECT grid_id, -households, -residents, -1 FROM old_rows) x
          GROUP BY grid_id
          HAVING sum(n) <> 0 OR sum(r) <> 0 OR sum(b) <> 0) d
    WHERE g.id = d.grid_id;
  END IF;
  RETURN NULL;
END $$;
"""

# 0003's function as it was.
BUILDING_TOTALS_0003 = """
CREATE OR REPLACE FUNCTION gridmap_building_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE grid g SET households = g.households + d.n, residents = g.residents + d.r
    FROM (SELECT grid_id, sum(households) AS n, sum(residents) AS r
          FROM new_rows GROUP BY grid_id) d
    WHERE g.id = d.grid_id AND (d.n <> 0 OR d.r <> 0);
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE grid g SET households = g.households - d.n, residents = g.residents - d.r
    FROM (SELECT grid_id, sum(households) AS n, sum(residents) AS r
          FROM old_rows GROUP BY grid_id) d
    WHERE g.id = d.grid_id AND (d.n <> 0 OR d.r <> 0);
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.add_column("grid", sa.Column("buildings", sa.Integer(), server_default="0", nullable=False))
    op.execute(BUILDING_TOTALS)
    op.execute(
        "UPDATE grid g SET buildings = t.b FROM (SELECT grid_id, count(*) b FROM building GROUP BY grid_id) t "
        "WHERE g.id = t.grid_id"
    )
    op.create_index("ix_building_key_count_grid_category", "building_key_count", ["grid_id", "category_id"])


def downgrade() -> None:
    op.drop_index("ix_building_key_count_grid_category", table_name="building_key_count")
    op.execute(BUILDING_TOTALS_0003)
    op.drop_column("grid", "buildings")
