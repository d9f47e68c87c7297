"""totals and key counts rebuilt after a TRUNCATE

The totals per building and grid (0003, 0011) and the key counts per building and grid (0008,
0010) follow every INSERT, UPDATE and DELETE through statement-level triggers with transition
tables; a TRUNCATE has no transition table and left them as they were: after
``TRUNCATE key_person CASCADE`` the grids still counted their key persons, and every figure read
from the counts (the impact preview, the metrics, the kept summaries of 0013-0015, which do follow
a TRUNCATE but recompute from these counts) was wrong until the next load. An AFTER TRUNCATE
trigger on each summed table now rebuilds what sums it from what is left (a TRUNCATE ... CASCADE
fires the trigger of every table it empties):

- key_person_category_link, building_key_count: the per-building counts from the links, then the
  per-grid counts from those;
- grid_key_count: the per-grid counts from the per-building ones;
- household: the households and residents of every building (only rows that change are written,
  and their triggers carry the change to the grids);
- building: the households, residents and buildings of every grid.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25
"""
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The per-grid counts summed again from the per-building ones (both rebuilds end with it).
RESUM_GRIDS = """
  DELETE FROM grid_key_count;
  INSERT INTO grid_key_count (grid_id, category_id, n)
  SELECT k.grid_id, k.category_id, sum(k.n) FROM building_key_count k JOIN grid g ON g.id = k.grid_id
  GROUP BY 1, 2 HAVING sum(k.n) > 0;
"""

FUNCTIONS = f"""
CREATE FUNCTION gridmap_grid_key_counts_rebuild() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{RESUM_GRIDS}  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_key_counts_rebuild() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM building_key_count;
  INSERT INTO building_key_count (building_id, grid_id, category_id, n)
  SELECT l.building_id, b.grid_id, l.category_id, count(*)
  FROM key_person_category_link l JOIN building b ON b.id = l.building_id
  GROUP BY 1, 2, 3;
  -- (the per-grid counts followed those statements through their own triggers, from whatever
  -- they held; rebuilt here so that they hold exactly the sums){RESUM_GRIDS}  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_building_totals_rebuild() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE building b SET households = t.n, residents = t.r
  FROM (SELECT b2.id, count(h.id) AS n, coalesce(sum(h.residents), 0) AS r
        FROM building b2 LEFT JOIN household h ON h.building_id = b2.id GROUP BY b2.id) t
  WHERE t.id = b.id AND (b.households, b.residents) IS DISTINCT FROM (t.n, t.r);
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_grid_totals_rebuild() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE grid g SET households = t.n, residents = t.r, buildings = t.b
  FROM (SELECT g2.id, coalesce(sum(b.households), 0) AS n, coalesce(sum(b.residents), 0) AS r,
               count(b.id) AS b
        FROM grid g2 LEFT JOIN building b ON b.grid_id = g2.id GROUP BY g2.id) t
  WHERE t.id = g.id AND (g.households, g.residents, g.buildings) IS DISTINCT FROM (t.n, t.r, t.b);
  RETURN NULL;
END $$;
"""

# table: the function its TRUNCATE runs
REBUILDS = {
    "key_person_category_link": "gridmap_key_counts_rebuild",
    "building_key_count": "gridmap_key_counts_rebuild",
    "grid_key_count": "gridmap_grid_key_counts_rebuild",
    "household": "gridmap_building_totals_rebuild",
    "building": "gridmap_grid_totals_rebuild",
}


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for table, func in REBUILDS.items():
        op.execute(f"CREATE TRIGGER {table}_rebuild_truncate AFTER TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION {func}()")


def downgrade() -> None:
    for table in REBUILDS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_rebuild_truncate ON {table}")
    for func in sorted(set(REBUILDS.values())):
        op.execute(f"DROP FUNCTION IF EXISTS {func}()")
