"""One settings object for the whole product.

Every number taken from the domain (DOMAIN.md and the policy texts in shared/seeds) is a setting
here, with the policy's number as its default. Environment variables use the prefix ``GRIDMAP_``
(for example ``GRIDMAP_DATABASE_URL``); a ``.env`` file in the working directory is read too, which
is where ``scripts/setup-db.sh`` records a URL it had to create.
"""

from __future__ import annotations

from datetime import time
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
    # The "week" of that rule: a rolling window ending now, so nobody waits for Monday to be late.
    vulnerable_contact_window_days: int = 7
    home_observation_days: int = 14
    # Categories followed in home observation for ``home_observation_days`` from observation_start.
    home_observation_categories: tuple[str, ...] = ("home_isolation", "risk_area_arrival")

    # --- checkpoints (001, 003: 全天候有人值守) ---------------------------------------------
    duty_hours_per_day: int = 24
    checkpoint_shifts_per_day: int = 3
    checkpoint_staff_per_shift: int = 2
    # How far ahead the rosters are checked: every shift slot in the next this-many hours.
    checkpoint_roster_horizon_hours: int = 24

    # --- staffing per grid (issue 5) -------------------------------------------------------
    # Volunteers a grid keeps before any count as spare and may be proposed to a neighbour.
    volunteers_kept_per_grid: int = 0
    # Two grids are neighbours when they share at least this much border (corners do not count);
    # borders closer than the tolerance count as shared (coordinates carry rounding error).
    neighbour_min_border_m: float = 10.0
    neighbour_border_tolerance_m: float = 0.5

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

    # --- tasking (issue 6; HOT Tasking Manager: locks that expire) -----------------------------
    # A staff member who takes an item holds it this long; then anyone may take it.
    task_lock_minutes: int = 120
    # A task is given out on the map; more items than this means a wrong selection, not a campaign.
    task_max_items: int = 20_000
    # Who may validate (验收) finished items, by staff role; only staff of the item's community.
    task_validator_roles: tuple[str, ...] = ("community_worker",)

    # --- daily and zero reports (003: 日报告、零报告) ------------------------------------------
    # Local time by which every community's report for the day is due; after it a missing one alarms.
    report_deadline: time = time(10, 0)

    # --- services (004) -------------------------------------------------------------------
    service_walk_distance_m: float = 1000.0
    # The kinds whose walking-distance coverage is reported per grid.
    coverage_service_kinds: tuple[str, ...] = ("testing_point", "supply_point", "vaccination_point")
    # Metrics of all grids must answer within this (issue 5, a district) ... and within the city
    # figure (issue 8) once there are at least ``metrics_city_grids`` grids.
    metrics_target_ms: float = 1000.0
    metrics_target_city_ms: float = 2000.0
    metrics_city_grids: int = 1000
    # The metrics' grouped passes over a city's rows: sort and hash in memory rather than on disk,
    # and no JIT (its compile time exceeds what it saves on these queries).
    metrics_work_mem: str = "64MB"
    metrics_jit: bool = False

    # --- the wall display (issue 5) ----------------------------------------------------------------
    # Seconds each view of /wall stays before the next; 0 keeps one view (no rotation).
    wall_rotation_seconds: int = 0
    # How often the map and the wall look at the clock for reports gone missing at the deadline
    # (nothing is written then, so the data version does not move).
    report_alarm_refresh_seconds: int = 60

    # --- the map at city scale (issue 8) ----------------------------------------------------------
    # Polygon layers are generalised for the zoom they are drawn at: Douglas-Peucker keeping each
    # polygon's topology, with a tolerance of this many screen pixels, vertices snapped to a quarter of it.
    map_simplify_px: float = 0.5
    # The zooms a generalised layer is cut for: a map at zoom z gets the band at or below z (below the
    # first, the first); from ``map_full_detail_zoom`` on the geometry goes as stored.
    map_generalise_zooms: tuple[int, ...] = (10, 12, 14)
    map_full_detail_zoom: int = 16
    # Layers sent only for the map's viewport (a bbox), and only from this zoom on; below it they are
    # empty and the map says "zoom in". At zoom 16 a 1600x1000 screen holds ~7 km² of the city: in its
    # densest part ~7,400 buildings and more than 10,000 key households (so those from zoom 17 on).
    map_viewport_min_zoom: dict[str, float] = Field(
        default_factory=lambda: {"building": 16.0, "gate": 16.0, "key_household": 17.0, "compound": 15.0,
                                 "service_point": 14.0, "key_household_grid": 14.0}
    )
    # Layers that stand in for a detail layer while zoomed out, and the zoom from which they are
    # empty (the detail layer takes over): key households counted per grid until their own zoom
    # (from zoom 14 on, for the viewport: at 13 a city-centre screen holds ~8,500 grids, their badges
    # overlap; the counts are kept per grid since 0015, 31 ms for a zoom-14 city-centre screen).
    map_viewport_max_zoom: dict[str, float] = Field(default_factory=lambda: {"key_household_grid": 17.0})
    # At most this many features in one viewport answer (a safety bound: the minimum zooms keep a
    # viewport under it in the demo city).
    map_viewport_max_features: int = 10_000
    # A browser may reuse a layer this long before revalidating it (a revalidation costs one tiny query).
    map_layer_max_age_s: int = 60
    # Risk classes also change with the clock (assignments valid from / to a future time): the
    # layers' ETag changes at least this often even when no write moved the data version.
    map_layer_etag_seconds: int = 300
    # The opening zoom band is chosen for a map about this wide (px) showing the whole district,
    # before the browser reports its own view.
    map_fit_width_px: int = 1200
    # Layer answers kept in each worker by their ETag (gridmap.web.layer_cache), up to this many
    # megabytes; 0: none kept. The city's opening view is ~0.5 MB gzip (and its raw bytes for the
    # clients that do not take gzip).
    map_layer_cache_mb: int = 64
    # /api/changes says which worker process answered (X-Gridmap-Worker: its pid). For tests of
    # several workers only: a pid tells users about the server.
    expose_worker_id: bool = False

    # --- upkeep (``gridmap db tidy``, from cron) ------------------------------------------------
    # Rows of change_log kept: open screens compare only the newest id, so the rest is history.
    change_log_keep: int = 10_000

    # --- input limits -------------------------------------------------------------------------
    max_upload_bytes: int = 50 * 1024 * 1024
    max_polygon_vertices: int = 10_000
    # A drawn controlled area: a commander draws tens of vertices; thousands mean a wrong file.
    max_area_vertices: int = 2_000
    max_import_rows: int = 1_000_000

    # --- access, sessions, audit (issue 7) ------------------------------------------------------
    # Signs the session cookie. Empty: a random key kept in ``secret_file`` (created 0600 on first
    # use), so that every worker of one installation signs alike.
    secret_key: str = ""
    secret_file: str = ".gridmap-secret"
    # A log-in lasts this long, then the user logs in again.
    session_hours: int = 12
    session_cookie_name: str = "gridmap_session"
    # Send the cookie over HTTPS only (set when the app is served behind TLS).
    session_cookie_secure: bool = False
    # Proxies in front of the app (nginx: 1) whose X-Forwarded-For/-Proto/-Host are
    # trusted (werkzeug ProxyFix). 0: served directly, those headers are ignored (anyone can send them).
    proxy_hops: int = 0
    password_min_length: int = 8
    # After this many wrong passwords in a row the account waits this many minutes.
    login_max_failures: int = 5
    login_lockout_minutes: int = 15


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
