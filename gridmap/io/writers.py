"""Write a layer to a file: GeoJSON (RFC 7946), GeoPackage, Excel (.xlsx) and CSV.

Tables carry geometry as ``lon``/``lat`` for points and as WKT (``geom_wkt``) otherwise. Cells a
spreadsheet would run as a formula (text starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) are written with a leading apostrophe, so a name typed by a resident cannot
execute anything on a command-room PC. Every writer writes to a temporary file beside the target
and renames it, so an interrupted export never leaves half a file under the real name.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gridmap.domain.errors import GridmapError

WGS84 = "EPSG:4326"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Excel refuses longer cells.
EXCEL_MAX_CELL = 32_767
# 8 decimals of a degree is about a millimetre: nothing is lost that the source had.
WKT_DECIMALS = 8


class ExportFailed(GridmapError):
    code = "export_failed"


def _check_folder(path: Path) -> None:
    if not Path(path).parent.is_dir():
        raise ExportFailed(f"目录不存在 / folder not found: {Path(path).parent}", code="bad_path")


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    path = Path(path)
    _check_folder(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # GDAL drivers want to create the file themselves
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def neutralize(value: object) -> object:
    """Text a spreadsheet would evaluate, made inert with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _plain(value: object) -> object:
    """A cell value Excel and CSV understand: no NaN, no numpy scalars, JSON for dicts."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        # Excel has no time zones: keep the offset visible rather than silently dropping it.
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return float(value)
    return value


def geometry_as_columns(frame) -> pd.DataFrame:
    """A plain table: points as ``lon``/``lat``, any other geometry as WKT in ``geom_wkt``."""
    import geopandas

    if not isinstance(frame, geopandas.GeoDataFrame) or frame.geometry.name not in frame:
        return pd.DataFrame(frame)
    geo = frame.geometry
    table = pd.DataFrame(frame.drop(columns=[geo.name]))
    present = geo[geo.notna() & ~geo.is_empty]
    if len(present) and (present.geom_type == "Point").all():
        table["lon"] = [None if g is None or g.is_empty else round(g.x, WKT_DECIMALS) for g in geo]
        table["lat"] = [None if g is None or g.is_empty else round(g.y, WKT_DECIMALS) for g in geo]
    else:
        table["geom_wkt"] = [
            None if g is None or g.is_empty else shapely.to_wkt(g, rounding_precision=WKT_DECIMALS) for g in geo
        ]
    return table


def _for_vector(frame):
    """Columns a GDAL driver can store: JSON text for dicts, ISO text for dates without time."""
    import geopandas

    out = frame.copy()
    geometry = out.geometry.name if isinstance(out, geopandas.GeoDataFrame) else None
    for column in out.columns:
        series = out[column]
        if column != geometry and series.dtype == object:
            sample = next((v for v in series if v is not None and not (isinstance(v, float) and math.isnan(v))), None)
            if isinstance(sample, dict | list):
                out[column] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in series]
            elif isinstance(sample, date) and not isinstance(sample, datetime):
                out[column] = [None if v is None else v.isoformat() for v in series]
    return out


def write_geojson(frame, path: Path) -> None:
    """RFC 7946 GeoJSON in EPSG:4326 (no ``crs`` member, exterior rings counter-clockwise)."""
    import geopandas

    if not isinstance(frame, geopandas.GeoDataFrame):
        frame = geopandas.GeoDataFrame(frame, geometry=[None] * len(frame), crs=WGS84)
    elif frame.crs is not None and not frame.crs.equals(WGS84):
        frame = frame.to_crs(WGS84)
    with _atomic(path) as tmp:
        _for_vector(frame).to_file(tmp, driver="GeoJSON", engine="pyogrio", RFC7946="YES")


def write_gpkg(frame, path: Path, layer: str) -> None:
    """A GeoPackage with one layer named ``layer``; a table without geometry is an attribute table."""
    import geopandas
    import pyogrio

    with _atomic(path) as tmp:
        if isinstance(frame, geopandas.GeoDataFrame):
            _for_vector(frame).to_file(tmp, layer=layer, driver="GPKG", engine="pyogrio")
        else:
            pyogrio.write_dataframe(_for_vector(frame), tmp, layer=layer, driver="GPKG")


def _cells(table: pd.DataFrame) -> Iterator[list[object]]:
    for values in table.itertuples(index=False, name=None):
        yield [neutralize(_plain(v)) for v in values]


def _xlsx_rows(table: pd.DataFrame) -> list[list[object]]:
    """All cells checked before a workbook is opened, so a refused export leaves nothing open."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    rows = []
    for n, row in enumerate(_cells(table), start=2):
        for i, value in enumerate(row):
            if not isinstance(value, str):
                continue
            if len(value) > EXCEL_MAX_CELL:
                raise ExportFailed(
                    f"第 {n} 行 {table.columns[i]} 超过 Excel 单元格上限 / row {n}: {table.columns[i]} is longer "
                    f"than an Excel cell allows ({len(value)} > {EXCEL_MAX_CELL} characters); "
                    "请导出为 GeoPackage 或 GeoJSON / export to GeoPackage or GeoJSON instead",
                    code="cell_too_long",
                )
            row[i] = ILLEGAL_CHARACTERS_RE.sub("", value)
        rows.append(row)
    return rows


def write_xlsx(
    table: pd.DataFrame, path: Path, *, headers: Mapping[str, str] | None = None, sheet: str = "Sheet1"
) -> None:
    """An Excel workbook with one sheet; ``headers`` relabels columns (Chinese labels), bold header row."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    _check_folder(path)
    rows = _xlsx_rows(table)
    headers = headers or {}
    book = openpyxl.Workbook(write_only=True)
    ws = book.create_sheet(title=sheet[:31])
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    header_cells = []
    for column in table.columns:
        cell = WriteOnlyCell(ws, value=headers.get(str(column), str(column)))
        cell.font = bold
        header_cells.append(cell)
    ws.append(header_cells)
    for row in rows:
        ws.append(row)
    with _atomic(path) as tmp:
        book.save(tmp)


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """UTF-8 CSV with a byte-order mark, so Excel on Chinese Windows shows the text right."""
    with _atomic(path) as tmp, open(tmp, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([str(c) for c in table.columns])
        writer.writerows(_cells(table))
