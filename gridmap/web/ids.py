"""Component ids, in one place so pages and callbacks never disagree on a string.

Ids are plain strings; pages prefix theirs with the page name (``map-...``).
"""

from __future__ import annotations

# --- app shell (layout.py) ---------------------------------------------------------------------
ROOT = "app-root"
LANG_STORE = "lang-store"  # "zh" or "en", kept in the browser's localStorage
LANG_ZH = "lang-zh-button"
LANG_EN = "lang-en-button"
HEADER_TITLE = "header-title"
HEADER_SUBTITLE = "header-subtitle"
HEADER_NOTE = "header-demo-note"
NAV = "header-nav"

# --- command map (pages/map.py) ----------------------------------------------------------------
MAP = "map-leaflet"
MAP_LAYERS_CONTROL = "map-layers-control"
MAP_LEGEND = "map-legend"
MAP_LEGEND_BOX = "map-legend-box"
MAP_PANEL = "map-panel"
MAP_SELECTED = "map-selected"  # store: {"layer": ..., "id": ...} of the clicked feature
MAP_ERROR = "map-error"
# pattern-matching id type of links in the side panel that open another feature:
# {"type": OPEN_FEATURE, "layer": <layer>, "id": <feature id>}
OPEN_FEATURE = "map-open-feature"


def map_layer(layer: str) -> str:
    """The id of the dl.GeoJSON drawing ``layer`` (a name of services.layers.LAYERS)."""
    return f"map-layer-{layer.replace('_', '-')}"


# --- area editor (pages/areas.py) --------------------------------------------------------------
AREA_MAP = "areas-map"
AREA_MAP_WRAP = "areas-map-wrap"
AREA_EDIT_GROUP = "areas-edit-group"  # dl.FeatureGroup holding the editable polygons
# dl.EditControl; assets/gridmap.js (gridmap.areas) sets its ``geojson`` to the editor's polygons
# as a FeatureCollection with "event" (what changed) and "seq" on every draw, edit, drag or load.
AREA_EDIT = "areas-edit-control"
AREA_LOAD = "areas-load"  # store: {"geojson": FeatureCollection, "fit": bool, "seq": n} to put into the editor
AREA_BASE = "areas-base"  # store: the version being edited ({"area_key", "version", ...}); None for a new area
AREA_PREVIEW_STATE = "areas-preview-state"  # store: what the save button needs to know of the last preview
AREA_CONFLICT = "areas-conflict"  # store: the other's version after a refused save
AREA_REFRESH = "areas-refresh"  # store: a counter bumped after each save; the list and the areas layer refetch
AREA_MODE = "areas-mode"  # the tool: draw | add_compound | add_building | add_grid | cut
# store: what assets/gridmap.js needs from the server: class colours, Leaflet.draw's strings per language
AREA_CLIENT = "areas-client"
AREA_MODE_HINT = "areas-mode-hint"
AREA_LIST = "areas-list"
AREA_NEW = "areas-new"
AREA_EDITING = "areas-editing"  # heading: which area and version is being edited
AREA_NAME = "areas-name"
AREA_CLASS = "areas-class"
AREA_AUTHOR = "areas-author"  # "操作人 / Operator", kept in localStorage until log-in exists
AREA_PREVIEW = "areas-preview"
AREA_STATS = "areas-stats"  # the preview's numbers; data-buildings / data-households carry them too
AREA_WARNINGS = "areas-warnings"
AREA_REASON = "areas-reason"
AREA_REASON_FIELD = "areas-reason-field"
AREA_SAVE = "areas-save"
AREA_SAVE_HINT = "areas-save-hint"
AREA_MESSAGE = "areas-message"
AREA_CONFLICT_BOX = "areas-conflict-box"
AREA_CONFLICT_TEXT = "areas-conflict-text"
AREA_RELOAD = "areas-reload-latest"
AREA_REBASE = "areas-rebase"
AREA_VERSIONS_BOX = "areas-versions-box"
AREA_VERSIONS = "areas-versions"
AREA_COMPARE_OLD = "areas-compare-old"
AREA_COMPARE_NEW = "areas-compare-new"
AREA_COMPARE_SUMMARY = "areas-compare-summary"
AREA_COMPARE_CLEAR = "areas-compare-clear"
AREA_COMPARE_LAYER = "areas-compare-layer"
AREA_LIFT_REASON = "areas-lift-reason"
AREA_LIFT = "areas-lift"
# pattern-matching id types: {"type": AREA_OPEN, "key": <area_key>} opens an area from the list,
# {"type": AREA_REVERT, "version": <n>} reverts the open area to version n.
AREA_OPEN = "areas-open"
AREA_REVERT = "areas-revert"


def area_layer(layer: str) -> str:
    """The id of the dl.GeoJSON drawing ``layer`` under the area editor."""
    return f"areas-layer-{layer.replace('_', '-')}"
