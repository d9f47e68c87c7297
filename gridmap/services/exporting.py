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
from gridmap.domain.errors import GridmapError
from gridmap.io.columns import label
from gridmap.io.writers import geometry_as_columns, write_csv, write_geojson, write_gpkg, write_xlsx

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


def export_layer(session: Session, layer: str, path: Path) -> int:
    """Write every row of ``layer`` to ``path``; returns the number of rows written."""
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
    frame = load_layer(session, layer)
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
