"""gridmap_local_area_m2(geometry): area in square metres in a local equirectangular frame

Used by the nesting checks. Affine on purpose: a sliver whose corners lie on one straight lon/lat
edge has zero area here, as it should, whereas on geography (geodesic edges) or after
ST_Transform to UTM (curved grid lines) it shows as several square metres of false gap. Within a
city the scale error is under 0.5 %.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION gridmap_local_area_m2(g geometry) RETURNS double precision
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
          SELECT CASE WHEN ST_IsEmpty(g) THEN 0.0 ELSE
            ST_Area(g) * power(6371008.8 * pi() / 180.0, 2) * cos(radians(ST_Y(ST_Centroid(g))))
          END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS gridmap_local_area_m2(geometry)")
