"""service coverage kept per grid and kind, repaired from a log of what changed

Households within walking distance of a point of each kind, per grid, cost seconds for a city
(4 M households, issue 8), while the metrics of all grids must answer in 2 s. So the figures are
kept in ``grid_service_coverage (grid_id, kind, households_within)``, for the distance and kinds
recorded in ``service_coverage_state`` (one row).

The kept figures never drift because nothing adds to or subtracts from them: every statement that
can change a figure appends what it touched to ``service_coverage_dirty`` (statement-level triggers
with transition tables, inserts only, so writers never wait on each other):

- service_point inserted, deleted, or moved / re-kinded: the point's kind and geometry (old and
  new): every grid with a household within reach of it is recomputed for that kind;
- household inserted, deleted, moved or re-housed: the grid(s) of its building, all kinds;
- building moved to another grid or deleted: its grid(s), all kinds;
- TRUNCATE of any of them: everything.

The reader (gridmap.services.coverage) recomputes the named grids with the very query of the full
computation, replaces their rows and deletes the log rows it handled; with no state row, another
distance or other kinds it recomputes everything.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# SECURITY DEFINER: a role that may write households but not the log still leaves its mark.
FUNCTIONS = """
CREATE FUNCTION gridmap_coverage_dirty_points() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO service_coverage_dirty (kind, geom) SELECT kind, geom FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO service_coverage_dirty (kind, geom) SELECT kind, geom FROM old_rows;
  ELSE
    INSERT INTO service_coverage_dirty (kind, geom)
    SELECT x.kind, x.geom
    FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    CROSS JOIN LATERAL (VALUES (o.kind, o.geom), (nr.kind, nr.geom)) AS x(kind, geom)
    WHERE o.kind IS DISTINCT FROM nr.kind OR NOT ST_Equals(o.geom, nr.geom);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_coverage_dirty_households() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO service_coverage_dirty (grid_id)
    SELECT DISTINCT b.grid_id FROM new_rows nr JOIN building b ON b.id = nr.building_id;
  ELSIF TG_OP = 'DELETE' THEN
    -- A building deleted with its households is logged by the building's own trigger.
    INSERT INTO service_coverage_dirty (grid_id)
    SELECT DISTINCT b.grid_id FROM old_rows o JOIN building b ON b.id = o.building_id;
  ELSE
    INSERT INTO service_coverage_dirty (grid_id)
    SELECT DISTINCT b.grid_id
    FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    JOIN building b ON b.id IN (o.building_id, nr.building_id)
    WHERE o.building_id <> nr.building_id OR NOT ST_Equals(o.geom, nr.geom);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_coverage_dirty_buildings() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO service_coverage_dirty (grid_id) SELECT DISTINCT grid_id FROM old_rows;
  ELSE
    INSERT INTO service_coverage_dirty (grid_id)
    SELECT DISTINCT x.grid_id
    FROM old_rows o JOIN new_rows nr ON nr.id = o.id
    CROSS JOIN LATERAL (VALUES (o.grid_id), (nr.grid_id)) AS x(grid_id)
    WHERE o.grid_id <> nr.grid_id;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION gridmap_coverage_dirty_all() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public AS $$
BEGIN
  INSERT INTO service_coverage_dirty (everything) VALUES (true);
  RETURN NULL;
END $$;
"""

# name: (table, the statement creating it)
TRIGGERS = {
    "service_point_coverage_insert": (
        "service_point",
        "CREATE TRIGGER service_point_coverage_insert AFTER INSERT ON service_point REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_points()",
    ),
    "service_point_coverage_update": (
        "service_point",
        "CREATE TRIGGER service_point_coverage_update AFTER UPDATE ON service_point REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_points()",
    ),
    "service_point_coverage_delete": (
        "service_point",
        "CREATE TRIGGER service_point_coverage_delete AFTER DELETE ON service_point REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_points()",
    ),
    "household_coverage_insert": (
        "household",
        "CREATE TRIGGER household_coverage_insert AFTER INSERT ON household REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_households()",
    ),
    "household_coverage_update": (
        "household",
        "CREATE TRIGGER household_coverage_update AFTER UPDATE ON household REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_households()",
    ),
    "household_coverage_delete": (
        "household",
        "CREATE TRIGGER household_coverage_delete AFTER DELETE ON household REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_households()",
    ),
    "building_coverage_update": (
        "building",
        "CREATE TRIGGER building_coverage_update AFTER UPDATE ON building REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_buildings()",
    ),
    "building_coverage_delete": (
        "building",
        "CREATE TRIGGER building_coverage_delete AFTER DELETE ON building REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_buildings()",
    ),
    "service_point_coverage_truncate": (
        "service_point",
        "CREATE TRIGGER service_point_coverage_truncate AFTER TRUNCATE ON service_point "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_all()",
    ),
    "household_coverage_truncate": (
        "household",
        "CREATE TRIGGER household_coverage_truncate AFTER TRUNCATE ON household "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_all()",
    ),
    "building_coverage_truncate": (
        "building",
        "CREATE TRIGGER building_coverage_truncate AFTER TRUNCATE ON building "
        "FOR EACH STATEMENT EXECUTE FUNCTION gridmap_coverage_dirty_all()",
    ),
}


def upgrade() -> None:
    op.create_table(
        "grid_service_coverage",
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grid.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("households_within", sa.Integer(), nullable=False),
        sa.CheckConstraint("households_within >= 0", name="grid_service_coverage_nonnegative"),
    )
    op.create_table(
        "service_coverage_state",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("kinds", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("id = 1", name="service_coverage_state_one_row"),
    )
    op.create_table(
        "service_coverage_dirty",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("kind", sa.String(32)),
        sa.Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False)),
        sa.Column("grid_id", sa.Integer()),
        sa.Column("everything", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.execute(FUNCTIONS)
    for _table, statement in TRIGGERS.values():
        op.execute(statement)
    # Nothing kept yet: the first read computes everything (no state row).


def downgrade() -> None:
    for name, (table, _statement) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for fn in ("points", "households", "buildings", "all"):
        op.execute(f"DROP FUNCTION IF EXISTS gridmap_coverage_dirty_{fn}()")
    op.drop_table("service_coverage_dirty")
    op.drop_table("service_coverage_state")
    op.drop_table("grid_service_coverage")
