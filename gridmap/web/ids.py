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
MAP_VIEW_CONFIG = "map-view-config"  # store: how each layer's URL follows the view (pages/map.py)
MAP_ZOOM_HINT = "map-zoom-hint"  # "zoom in to see buildings", shown below the detail layers' zoom
# pattern-matching id type of links in the side panel that open another feature:
# {"type": OPEN_FEATURE, "layer": <layer>, "id": <feature id>}
OPEN_FEATURE = "map-open-feature"


def map_layer(layer: str) -> str:
    """The id of the dl.GeoJSON drawing ``layer`` (a name of services.layers.LAYERS)."""
    return f"map-layer-{layer.replace('_', '-')}"


# --- area editor (pages/areas.py) --------------------------------------------------------------
AREA_MAP = "areas-map"
AREA_VIEW_CONFIG = "areas-view-config"  # store: how each layer's URL follows the view (web/map_view.py)
AREA_ZOOM_HINT = "areas-zoom-hint"  # "zoom in to see buildings", below the detail layers' zoom
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


# --- tasks and reports (issue 6): pages/tasks.py, pages/field.py, pages/reports.py ----------------


def data_version(page: str) -> str:
    """A page's store of the latest /api/changes version it has seen (gridmap.changes.poll)."""
    return f"{page}-data-version"


def data_poll(page: str) -> str:
    """A page's dcc.Interval driving the poll."""
    return f"{page}-data-poll"


TASK_MAP = "tasks-map"
TASK_VIEW_CONFIG = "tasks-view-config"  # store: how each layer's URL follows the view (web/map_view.py)
TASK_ZOOM_HINT = "tasks-zoom-hint"  # "zoom in to see buildings", below the buildings' zoom
TASK_MAP_WRAP = "tasks-map-wrap"
TASK_EDIT = "tasks-edit-control"  # dl.EditControl of the drawn-area selection (gridmap.areas reports it)
TASK_EDIT_GROUP = "tasks-edit-group"
TASK_LOAD = "tasks-load"  # store: a drawing for the editor (gridmap.areas.load), to clear it after creating
TASK_ITEMS_LAYER = "tasks-items-layer"  # dl.GeoJSON of the open task's items, coloured by state
TASK_TAB = "tasks-tab"  # store: "new" or "list"
TASK_TAB_NEW = "tasks-tab-new"
TASK_TAB_LIST = "tasks-tab-list"
TASK_SECTION_NEW = "tasks-section-new"
TASK_SECTION_LIST = "tasks-section-list"
TASK_MODE = "tasks-mode"  # drawn_area | controlled_area | grid | buildings | key_persons
TASK_MODE_HINT = "tasks-mode-hint"
TASK_SELECTION = "tasks-selection"  # store: {"grid_id", "building_ids", "area_key", "key_person_ids"}
TASK_SELECTION_INFO = "tasks-selection-info"
TASK_AREA_PICK = "tasks-area-pick"  # dropdown of controlled areas
TASK_AREA_FIELD = "tasks-area-field"
TASK_PERSONS_FIELD = "tasks-persons-field"
TASK_PERSONS = "tasks-persons"  # checklist of the grid's key persons
TASK_PERSONS_ALL = "tasks-persons-all"
TASK_CLEAR = "tasks-clear-selection"
TASK_TYPE = "tasks-type"
TASK_TITLE = "tasks-title"
TASK_DUE = "tasks-due"  # "YYYY-MM-DD HH:MM", local time
TASK_PREVIEW = "tasks-preview"  # data-items carries the number of items
TASK_CREATE = "tasks-create"
TASK_MESSAGE = "tasks-message"
TASK_ROUNDS = "tasks-contact-rounds"
TASK_ROUNDS_MESSAGE = "tasks-contact-rounds-message"
TASK_OVERDUE = "tasks-overdue"
TASK_LIST = "tasks-list"
TASK_SHOW_CLOSED = "tasks-show-closed"
TASK_OPEN = "tasks-open"  # pattern-matching: {"type": TASK_OPEN, "task": id}
TASK_CURRENT = "tasks-current"  # store: id of the task shown in detail
TASK_VERSION = "tasks-current-version"  # store: the version of that task (closing is checked against it)
TASK_DETAIL = "tasks-detail"
TASK_DETAIL_HEAD = "tasks-detail-head"
TASK_PROGRESS = "tasks-progress"  # data-done, data-items ... carry the counts
TASK_BACK = "tasks-back"
TASK_CLOSE = "tasks-close"
TASK_STATE_FILTER = "tasks-state-filter"
TASK_ITEMS = "tasks-items"
TASK_ITEM_PICK = "tasks-item-pick"  # pattern-matching: {"type": TASK_ITEM_PICK, "item": id}
TASK_ITEM = "tasks-item"  # store: id of the item selected in the table or on the map
TASK_ITEM_VERSION = "tasks-item-version"  # store: the version of that item (reassigning is checked against it)
TASK_ITEM_BOX = "tasks-item-box"
TASK_REASSIGN_TO = "tasks-reassign-to"
TASK_REASSIGN = "tasks-reassign"
TASK_VALIDATE = "tasks-validate"
TASK_INVALIDATE = "tasks-invalidate"
TASK_VALIDATE_NOTE = "tasks-validate-note"
TASK_ITEM_MESSAGE = "tasks-item-message"
TASK_HISTORY = "tasks-history"


def task_layer(layer: str) -> str:
    """The id of the dl.GeoJSON drawing ``layer`` under the tasking map."""
    return f"tasks-layer-{layer.replace('_', '-')}"


FIELD_WHO = "field-who"
FIELD_SCOPE = "field-scope"  # todo | mine | finished
FIELD_LIST = "field-list"
FIELD_MESSAGE = "field-message"
FIELD_REFRESH = "field-refresh"  # store: bumped after each action
FIELD_ACTION = "field-action"  # pattern-matching: {"type": FIELD_ACTION, "item": id, "action": take|release|done|failed}
FIELD_NOTE = "field-note"  # pattern-matching: {"type": FIELD_NOTE, "item": id}

REPORT_DATE = "reports-date"
REPORT_COMMUNITY = "reports-community"
REPORT_FILE_BOX = "reports-file-box"
REPORT_TODAY = "reports-today-status"
REPORT_ZERO = "reports-zero"
REPORT_SUBMIT = "reports-submit"
REPORT_EMERGENCY = "reports-emergency"
REPORT_MESSAGE = "reports-message"
REPORT_VERSIONS = "reports-versions"
REPORT_REFRESH = "reports-refresh"


def report_field(name: str) -> str:
    """The input of one figure or text of the report form (a field of domain.reports.ReportInput)."""
    return f"reports-field-{name.replace('_', '-')}"


REPORT_BOARD = "reports-board"
REPORT_TOTALS = "reports-totals"
REPORT_ROLLUP = "reports-rollup"
REPORT_EXPORT = "reports-export"
REPORT_HISTORY_COMMUNITY = "reports-history-community"
REPORT_HISTORY = "reports-history"
REPORT_BOARD_PICK = "reports-board-pick"  # pattern-matching: {"type": ..., "community": id}


# --- coverage views (issue 5): command-map choropleth, /wall, /grid/<id> -------------------------
# command map additions (pages/map.py, marked "# coverage choropleth")
MAP_COVERAGE_BOX = "map-coverage-box"  # html.Details over the map: metric, legend, ranking, gaps
MAP_METRIC = "map-metric"  # the metric drawn as a choropleth; "" draws none
MAP_CHOROPLETH = "map-choropleth"  # dl.LayerGroup holding the choropleth layer (empty when off)
MAP_CHOROPLETH_LAYER = "map-choropleth-layer"
MAP_COVERAGE_TAB = "map-coverage-tab"  # ranking | gaps
MAP_COVERAGE_BODY = "map-coverage-body"
MAP_COVERAGE_VERSION = "map-coverage-version"  # store: the data version last seen (/api/changes)
MAP_COVERAGE_POLL = "map-coverage-poll"
MAP_REPORT_ALARM = "map-report-alarm"  # store: ids of the communities whose report is missing today
MAP_REPORT_CLOCK = "map-report-clock"  # dcc.Interval: look at the clock for the report deadline
MAP_RANK_ROW = "map-rank-row"  # pattern-matching: {"type": MAP_RANK_ROW, "id": grid_id}

# the wall (pages/wall.py)
WALL = "wall-root"
WALL_MAP = "wall-map"
WALL_POLL = "wall-poll"  # dcc.Interval polling /api/changes
WALL_CLOCK = "wall-clock"  # dcc.Interval: figures again when the report deadline may have passed
WALL_VERSION = "wall-version"  # store: the data version the wall shows
WALL_LINK = "wall-link"  # store: "ok" or "down" (the last poll)
WALL_CHANGES_URL = "wall-changes-url"  # store: where to poll
WALL_LANG = "wall-lang"  # store: a language forced by ?lang=, else None
WALL_UPDATED = "wall-updated"
WALL_TITLE = "wall-title"
WALL_KPIS = "wall-kpis"
WALL_CLASSES = "wall-classes"
WALL_LEGEND = "wall-legend"
WALL_CHART_CONTACTS = "wall-chart-contacts"
WALL_CHART_REPORTS = "wall-chart-reports"
WALL_GAPS = "wall-gaps"
WALL_ROTATE = "wall-rotate"  # dcc.Interval of the view rotation (disabled when the setting is 0)


def wall_layer(layer: str) -> str:
    return f"wall-layer-{layer.replace('_', '-')}"


def wall_kpi(key: str) -> str:
    """The id of a KPI figure on the wall (its number is also in data-value)."""
    return f"wall-kpi-{key.replace('_', '-')}"


# one grid on a tablet (pages/grid.py)
GRID_PAGE = "gridpage"
GRID_ID = "gridpage-grid-id"  # store: the grid shown
GRID_REFRESH = "gridpage-refresh"  # store: bumped after every write from this page
GRID_VERSION = "gridpage-version"  # store: the data version (/api/changes)
GRID_POLL = "gridpage-poll"
GRID_CHANGES_URL = "gridpage-changes-url"
GRID_HEAD = "gridpage-head"
GRID_MAP = "gridpage-map"
GRID_BUILDINGS = "gridpage-buildings"
GRID_PERSONS = "gridpage-persons"
GRID_FORM = "gridpage-form"
GRID_FORM_PERSON = "gridpage-form-person"
GRID_FORM_METHOD = "gridpage-form-method"
GRID_FORM_OUTCOME = "gridpage-form-outcome"
GRID_FORM_NOTE = "gridpage-form-note"
GRID_FORM_SUBMIT = "gridpage-form-submit"
GRID_MESSAGE = "gridpage-message"
GRID_ASSIGNMENTS = "gridpage-assignments"
GRID_ITEMS = "gridpage-items"
GRID_ITEM_MESSAGE = "gridpage-item-message"
GRID_PICK = "gridpage-pick"  # pattern-matching: {"type": GRID_PICK, "id": key_person_id}
GRID_ITEM_TAKE = "gridpage-item-take"  # pattern-matching: {"type": ..., "id": item_id}
GRID_ITEM_DONE = "gridpage-item-done"


def grid_person(key_person_id: int) -> str:
    """The row of one key person in the grid page's list (data-status holds its contact status)."""
    return f"gridpage-person-{key_person_id}"
