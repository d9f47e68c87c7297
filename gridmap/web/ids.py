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
