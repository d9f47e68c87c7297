"""One settings object for the whole product.

Every number taken from the domain (DOMAIN.md and the policy texts in shared/seeds) is a setting
here, with the policy's number as its default. Environment variables use the prefix ``GRIDMAP_``
(for example ``GRIDMAP_DATABASE_URL``); a ``.env`` file in the working directory is read too, which
is where ``scripts/setup-db.sh`` records a URL it had to create.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap"
DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gridmap_test"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDMAP_", env_file=".env", extra="ignore")

    # --- infrastructure -------------------------------------------------------------------
    database_url: str = DEFAULT_DATABASE_URL
    test_database_url: str = DEFAULT_TEST_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8050
    # Basemap tiles. Empty means no basemap: the map draws its own layers on a plain background,
    # which is how it runs on a machine with no internet.
    tile_url: str = ""
    tile_attribution: str = ""
    default_language: str = "zh"
    # Local time of the command room: shift slots, report dates and deadlines are local.
    timezone: str = "Asia/Shanghai"
    metric_crs: str = Field(
        "EPSG:32648",
        description="Metric CRS for lengths and areas (UTM 48N covers Chongqing).",
    )

    # --- geography (DOMAIN.md: 'The geography') --------------------------------------------
    households_per_grid_min: int = 300
    households_per_grid_max: int = 500
    # Nesting tolerance: a child polygon may stick out of its parent, or leave a gap, by at most
    # this many square metres before it counts as a violation (coordinates carry rounding error).
    nesting_tolerance_m2: float = 1.0

    # --- key populations (004 §8, 003) ----------------------------------------------------
    vulnerable_contacts_per_week: int = 2
    home_observation_days: int = 14

    # --- checkpoints (001, 003: 全天候有人值守) ---------------------------------------------
    duty_hours_per_day: int = 24
    checkpoint_shifts_per_day: int = 3
    checkpoint_staff_per_shift: int = 2

    # --- controlled areas (000, issue 4) ----------------------------------------------------
    building_inside_share: float = 0.5
    households_per_drop_zone: int = 500
    households_per_delivery_volunteer: int = 30
    overcontrol_households_ratio: float = 20.0
    overcontrol_community_share: float = 0.5
    # A community counts as sealed whole (一封了之) when this share of its households is inside.
    whole_community_share: float = 0.95
    # A gate this close to a controlled area (metres) is on its boundary and must be controlled.
    gate_boundary_distance_m: float = 5.0

    # --- services (004) -------------------------------------------------------------------
    service_walk_distance_m: float = 1000.0

    # --- input limits -------------------------------------------------------------------------
    max_upload_bytes: int = 50 * 1024 * 1024
    max_polygon_vertices: int = 10_000
    # A drawn controlled area: a commander draws tens of vertices; thousands mean a wrong file.
    max_area_vertices: int = 2_000
    max_import_rows: int = 1_000_000


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
