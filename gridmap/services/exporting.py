"""``gridmap export LAYER FILE``: any table of the model to GeoJSON, GeoPackage, Excel or CSV.

The format follows the file's extension. GeoJSON is RFC 7946 (EPSG:4326); a GeoPackage holds one
layer named after the table; Excel and CSV carry points as lon/lat and other geometry as WKT in
``geom_wkt``, Excel with Chinese headers. Key persons are exported with their categories (codes,
separated by 、) so the sheet reads like the ledger it is.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.db.models import LAYER_MODELS, SRID
from gridmap.domain.access import EXPORT  # access (issue 7)
from gridmap.domain.errors import GridmapError
from gridmap.io.columns import label
from gridmap.io.writers import geometry_as_columns, write_csv, write_geojson, write_gpkg, write_xlsx
from gridmap.services import audit  # access (issue 7)
from gridmap.services.access import Principal, require, restrict_frame  # access (issue 7)

FORMATS = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".xlsx": "xlsx", ".csv": "csv"}


class ExportRejected(GridmapError):
    code = "export_rejected"


def _select(layer: str) -> str:
    columns = [f'"{c.name}"' for c in LAYER_MODELS[layer].__table__.columns]
    if layer == "key_person":
        columns.append(
            "(SELECT string_agg(c.code, '、' ORDER BY c.sort_order, c.code) FROM key_person_category_link l "
            "JOIN key_person_category c ON c.id = l.category_id WHERE l.key_person_id = t.id) AS categories"
        )
    return f'SELECT {", ".join(columns)} FROM "{layer}" t ORDER BY t.id'


def load_layer(session: Session, layer: str):
    """The rows of ``layer`` ordered by id: a GeoDataFrame (EPSG:4326) when the table has geometry."""
    import geopandas
    import pandas

    sql = _select(layer)
    if "geom" in LAYER_MODELS[layer].__table__.columns:
        return geopandas.read_postgis(sql, session.connection(), geom_col="geom", crs=f"EPSG:{SRID}")
    return pandas.read_sql(text(sql), session.connection())


def export_layer(session: Session, layer: str, path: Path, principal: Principal | None = None) -> int:
    """Write every row of ``layer`` to ``path``; returns the number of rows written.

    With a ``principal`` (a logged-in user; access, issue 7) only the rows inside their area are
    written, personal columns masked where they may not see them, and the export is audited.
    """
    if layer not in LAYER_MODELS:
        raise ExportRejected(
            f"未知图层 / unknown layer {layer!r}; 可导出 / one of: {', '.join(LAYER_MODELS)}", code="unknown_layer"
        )
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ExportRejected(
            f"不支持的格式 / unknown export format {path.suffix or '(none)'}; 支持 / supported: "
            + ", ".join(FORMATS),
            code="unknown_format",
        )
    require(principal, EXPORT)  # access (issue 7)
    frame = load_layer(session, layer)
    # access (issue 7): the principal's area only, personal data masked unless theirs to see.
    if principal is not None:
        frame = restrict_frame(session, principal, layer, frame)
        audit.record(session, principal, "EXPORT", layer, detail={"rows": len(frame), "format": fmt})
    if fmt == "geojson":
        write_geojson(frame, path)
    elif fmt == "gpkg":
        write_gpkg(frame, path, layer=layer)
    elif fmt == "xlsx":
        table = geometry_as_columns(frame)
        write_xlsx(table, path, headers={c: label(c, layer) for c in table.columns}, sheet=layer)
    else:
        write_csv(geometry_as_columns(frame), path)
    return len(frame)
