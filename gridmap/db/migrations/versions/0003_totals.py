"""totals per building and per grid, kept by statement-level triggers

Households and residents are summed per building, and buildings per grid, so that the impact of
a drawn area sums a few hundred building rows instead of joining tens of thousands of households.
The triggers use transition tables: one UPDATE per statement, so COPY of 50,000 households costs
one grouped update, not 50,000.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FUNCTIONS = """
CREATE FUNCTION gridmap_household_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE building b SET households = b.households + d.n, residents = b.residents + d.r
    FROM (SELECT building_id, count(*) AS n, coalesce(sum(residents), 0) AS r
          FROM new_rows GROUP BY building_id) d
    WHERE b.id = d.building_id;
  END IF;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE building b SET households = b.households - d.n, residents = b.residents - d.r
    FROM (SELECT building_id, count(*) AS n, coalesce(sum(residents), 0) AS r
          FROM old_rows GROUP BY building_id) d
    WHERE b.id = d.building_id;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_building_totals() RETURNS trigger LANGUAGE plpgsql AS $$
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

TRIGGERS = [
    ("household", "gridmap_household_totals", "INSERT", "NEW TABLE AS new_rows"),
    ("household", "gridmap_household_totals", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("household", "gridmap_household_totals", "DELETE", "OLD TABLE AS old_rows"),
    ("building", "gridmap_building_totals", "INSERT", "NEW TABLE AS new_rows"),
    ("building", "gridmap_building_totals", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("building", "gridmap_building_totals", "DELETE", "OLD TABLE AS old_rows"),
]


def upgrade() -> None:
    for table in ("building", "grid"):
        op.add_column(table, sa.Column("households", sa.Integer(), server_default="0", nullable=False))
        op.add_column(table, sa.Column("residents", sa.Integer(), server_default="0", nullable=False))
    op.execute(FUNCTIONS)
    for table, func, event, refs in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {table}_totals_{event.lower()} AFTER {event} ON {table} "
            f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION {func}()"
        )
    # Existing rows: compute once.
    op.execute(
        "UPDATE building b SET households = t.n, residents = t.r FROM "
        "(SELECT building_id, count(*) n, coalesce(sum(residents), 0) r FROM household GROUP BY building_id) t "
        "WHERE b.id = t.building_id"
    )
    op.execute(
        "UPDATE grid g SET households = t.n, residents = t.r FROM "
        "(SELECT grid_id, sum(households) n, sum(residents) r FROM building GROUP BY grid_id) t "
        "WHERE g.id = t.grid_id"
    )


def downgrade() -> None:
    for table, _func, event, _refs in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_totals_{event.lower()} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS gridmap_household_totals()")
    op.execute("DROP FUNCTION IF EXISTS gridmap_building_totals()")
    for table in ("building", "grid"):
        op.drop_column(table, "residents")
        op.drop_column(table, "households")
