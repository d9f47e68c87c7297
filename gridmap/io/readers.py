"""Read a user's file into plain records: GeoJSON, GeoPackage, Shapefile (pyogrio), CSV and Excel.

Every geometry comes out in EPSG:4326. The file's CRS is honoured and reprojected; a file with
none is taken as longitude/latitude only when every coordinate is in range; coordinates that
look like (lat, lon) in China are refused with a clear message rather than guessed; GCJ-02 is
converted only when the caller says so. Tables (CSV, .xlsx) may carry points as lon/lat columns
or any geometry as a WKT column.

Nothing here knows the database: the import service decides what the records mean.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from gridmap.domain.errors import GridmapError
from gridmap.io.columns import canonical_name
from gridmap.io.gcj02 import geometry_gcj02_to_wgs84

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
TABLE_SUFFIXES = (".csv", ".xlsx")
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
WGS84 = "EPSG:4326"

# China in (lon, lat); a file whose every coordinate falls in the swapped box holds (lat, lon).
CHINA_LON = (73.0, 135.0)
CHINA_LAT = (18.0, 54.0)


class InvalidFile(GridmapError):
    """The file as a whole cannot be imported; ``code`` says why."""

    code = "invalid_file"


@dataclass
class Record:
    """One feature or table row. ``row`` is the number the user sees (a spreadsheet's header is row 1)."""

    row: int
    values: dict[str, object]
    geom: BaseGeometry | None = None


@dataclass
class SourceData:
    columns: list[str]
    records: list[Record]
    has_geometry: bool
    crs: str | None = None
    notes: list[str] = field(default_factory=list)
    # row → why its geometry cells could not be read (tables only: bad lon/lat or WKT)
    geometry_errors: dict[int, str] = field(default_factory=dict)


# --- the file itself -----------------------------------------------------------------------------


def _file_size(path: Path) -> int:
    if path.suffix.lower() == ".shp":
        return sum(p.stat().st_size for p in (path.with_suffix(s) for s in _SHAPEFILE_PARTS) if p.exists())
    return path.stat().st_size


def check_file(path: Path, max_bytes: int) -> str:
    """The file's lower-case suffix, after checking it exists, has a known format and is not too big."""
    path = Path(path)
    if not path.is_file():
        raise InvalidFile(f"文件不存在 / file not found: {path}", code="file_missing")
    suffix = path.suffix.lower()
    if suffix not in VECTOR_SUFFIXES + TABLE_SUFFIXES:
        known = ", ".join(VECTOR_SUFFIXES + TABLE_SUFFIXES)
        hint = "; 请另存为 .xlsx / save it as .xlsx" if suffix == ".xls" else ""
        raise InvalidFile(
            f"不支持的文件格式 / unknown file format {suffix or '(none)'}; 支持 / supported: {known}{hint}",
            code="unknown_format",
        )
    size = _file_size(path)
    if size > max_bytes:
        raise InvalidFile(
            f"文件过大 / file too large: {size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB",
            code="file_too_large",
        )
    return suffix


def _too_many_rows(n: int, max_rows: int) -> InvalidFile:
    return InvalidFile(f"行数过多 / too many rows: {n} > {max_rows}", code="too_many_rows")


def read_source(path: Path, *, max_bytes: int, max_rows: int, gcj02: bool = False) -> SourceData:
    """Records of a vector file or a table, geometries in EPSG:4326."""
    suffix = check_file(path, max_bytes)
    if suffix in TABLE_SUFFIXES:
        return read_table(path, max_rows=max_rows, gcj02=gcj02)
    return read_vector(path, max_rows=max_rows, gcj02=gcj02)


# --- plain values --------------------------------------------------------------------------------


def _plain(value: object) -> object:
    """numpy and pandas scalars as Python values; NaN, NaT and blank strings as None."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        try:
            return value.to_pydatetime()
        except ValueError:
            return None
    if type(value).__name__ == "NaTType":
        return None
    return value


# --- CRS and coordinates -------------------------------------------------------------------------


def _bounds(geoms: list[BaseGeometry | None]) -> tuple[float, float, float, float] | None:
    present = [g for g in geoms if g is not None and not g.is_empty]
    if not present:
        return None
    b = shapely.total_bounds(np.array(present, dtype=object))
    return tuple(float(v) for v in b)


def looks_swapped(bounds: tuple[float, float, float, float] | None) -> bool:
    """Every coordinate reads as (lat, lon) in China: x within China's latitudes, y its longitudes."""
    if bounds is None:
        return False
    minx, miny, maxx, maxy = bounds
    return CHINA_LAT[0] <= minx and maxx <= CHINA_LAT[1] and CHINA_LON[0] <= miny and maxy <= CHINA_LON[1]


def in_lonlat_range(bounds: tuple[float, float, float, float] | None) -> bool:
    if bounds is None:
        return True
    minx, miny, maxx, maxy = bounds
    return minx >= -180.0 and maxx <= 180.0 and miny >= -90.0 and maxy <= 90.0


def _swapped_error() -> InvalidFile:
    return InvalidFile(
        "坐标的经纬度顺序颠倒 / coordinates look like (latitude, longitude): x is in China's latitude "
        "range and y in its longitude range; 请按 (经度, 纬度) 保存 / save them as (longitude, latitude)",
        code="swapped_coordinates",
    )


def _no_crs_error(bounds) -> InvalidFile:
    minx, miny, maxx, maxy = bounds
    return InvalidFile(
        "文件没有坐标系，且坐标不是经纬度 / the file has no CRS and its coordinates are not "
        f"longitude/latitude (bounds {minx:.6g}, {miny:.6g}, {maxx:.6g}, {maxy:.6g}); "
        "请在文件中写明坐标系 / save it with its CRS (e.g. a .prj for a Shapefile)",
        code="no_crs",
    )


def _check_lonlat(bounds) -> None:
    if looks_swapped(bounds):
        raise _swapped_error()
    if not in_lonlat_range(bounds):
        raise _no_crs_error(bounds)


def _apply_gcj02(geoms: list[BaseGeometry | None], gcj02: bool, notes: list[str]) -> list[BaseGeometry | None]:
    if not gcj02:
        return geoms
    notes.append("已从 GCJ-02 转换为 WGS84 / converted from GCJ-02 to WGS84")
    return [geometry_gcj02_to_wgs84(g) for g in geoms]


# --- vector files --------------------------------------------------------------------------------


def _vector_path(path: Path) -> str:
    # pyogrio opens a zipped Shapefile through GDAL's virtual file system.
    return f"/vsizip/{path}" if path.suffix.lower() == ".zip" else str(path)


def read_vector(path: Path, *, max_rows: int, gcj02: bool = False) -> SourceData:
    """Features of the first layer of a GeoJSON, GeoPackage or (zipped) Shapefile."""
    import geopandas
    import pyogrio

    source = _vector_path(Path(path))
    try:
        layers = pyogrio.list_layers(source)
        if len(layers) == 0:
            raise InvalidFile(f"文件中没有图层 / no layer in {Path(path).name}", code="unreadable_file")
        layer = str(layers[0][0])
        info = pyogrio.read_info(source, layer=layer)
        if info["features"] > max_rows:
            raise _too_many_rows(info["features"], max_rows)
        frame = geopandas.read_file(source, layer=layer, engine="pyogrio")
    except InvalidFile:
        raise
    except Exception as exc:  # GDAL reports a broken file in many ways; all mean the same to a user
        raise InvalidFile(
            f"无法读取文件 / cannot read {Path(path).name}: {str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__}",
            code="unreadable_file",
        ) from exc
    if len(frame) > max_rows:
        raise _too_many_rows(len(frame), max_rows)

    notes: list[str] = []
    if not isinstance(frame, geopandas.GeoDataFrame):  # an attribute-only table in a GeoPackage
        return _records_without_geometry(frame)
    crs = frame.crs.to_string() if frame.crs is not None else None
    geoms = list(frame.geometry.array)
    if frame.crs is None:
        bounds = _bounds(geoms)
        _check_lonlat(bounds)
        notes.append("文件没有坐标系，按 EPSG:4326 读取 / the file has no CRS; read as EPSG:4326")
    elif not frame.crs.equals(WGS84):
        try:
            frame = frame.to_crs(WGS84)
        except Exception as exc:
            raise InvalidFile(
                f"无法转换坐标系 / cannot reproject from {crs} to EPSG:4326: {exc}", code="bad_crs"
            ) from exc
        geoms = list(frame.geometry.array)
        notes.append(f"已从 {crs} 转换为 EPSG:4326 / reprojected from {crs} to EPSG:4326")
    # Declared or assumed lon/lat: the coordinates must say so too.
    _check_lonlat(_bounds(geoms))
    geoms = _apply_gcj02(geoms, gcj02, notes)

    columns = [str(c) for c in frame.columns if c != frame.geometry.name]
    records = [
        Record(row=i + 1, values={c: _plain(v) for c, v in zip(columns, values, strict=True)}, geom=geoms[i])
        for i, values in enumerate(frame[columns].itertuples(index=False, name=None))
    ]
    return SourceData(columns=columns, records=records, has_geometry=True, crs=crs, notes=notes)


def _records_without_geometry(frame) -> SourceData:
    columns = [str(c) for c in frame.columns]
    records = [
        Record(row=i + 1, values={c: _plain(v) for c, v in zip(columns, values, strict=True)})
        for i, values in enumerate(frame.itertuples(index=False, name=None))
    ]
    return SourceData(columns=columns, records=records, has_geometry=False)


# --- tables --------------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    # Excel on Chinese Windows saves CSV as GBK; everything else is UTF-8 (maybe with a BOM).
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidFile("无法识别文件编码 / cannot decode the CSV (use UTF-8 or GBK)", code="unreadable_file")


def _csv_rows(path: Path, max_rows: int) -> tuple[list[str], list[tuple[int, list[object]]]]:
    text = _decode(Path(path).read_bytes())
    first_line = text.split("\n", 1)[0]
    delimiter = max(",\t;", key=first_line.count) if first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidFile("文件为空 / the file is empty", code="empty_file")
        rows: list[tuple[int, list[object]]] = []
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(rows) >= max_rows:
                raise _too_many_rows(len(rows) + 1, max_rows)
            rows.append((number, list(row)))
    except csv.Error as exc:
        raise InvalidFile(f"CSV 格式错误 / malformed CSV: {exc}", code="unreadable_file") from exc
    return header, rows


def _xlsx_rows(path: Path, max_rows: int) -> tuple[list[str], list[tuple[int, list[object]]]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidFile(
            f"无法读取 Excel 文件 / cannot read the Excel file {Path(path).name}: {exc}", code="unreadable_file"
        ) from exc
    try:
        sheet = book.worksheets[0]
        cells = sheet.iter_rows(values_only=True)
        header_row = next(cells, None)
        if header_row is None:
            raise InvalidFile("工作表为空 / the first sheet is empty", code="empty_file")
        header = ["" if h is None else str(h) for h in header_row]
        rows: list[tuple[int, list[object]]] = []
        for number, row in enumerate(cells, start=2):
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
                continue
            if len(rows) >= max_rows:
                raise _too_many_rows(len(rows) + 1, max_rows)
            rows.append((number, list(row)))
    finally:
        book.close()
    return header, rows


def _lonlat(values: dict[str, object], lon_col: str, lat_col: str) -> BaseGeometry | str | None:
    """A point from lon/lat cells; None when both are blank; the bad text when one is not a number."""
    lon, lat = values.get(lon_col), values.get(lat_col)
    if lon is None and lat is None:
        return None
    try:
        return Point(float(lon), float(lat))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{lon!r}, {lat!r}"


@dataclass
class TableGeometry:
    """How a table carries geometry: lon/lat columns or a WKT column (headers as in the file)."""

    lon: str | None = None
    lat: str | None = None
    wkt: str | None = None


def _table_geometry(header: list[str]) -> TableGeometry:
    found = TableGeometry()
    for h in header:
        canonical = canonical_name(h)
        if canonical == "lon" and found.lon is None:
            found.lon = h
        elif canonical == "lat" and found.lat is None:
            found.lat = h
        elif canonical == "geom_wkt" and found.wkt is None:
            found.wkt = h
    if found.lon is None or found.lat is None:
        found.lon = found.lat = None
    return found


def read_table(path: Path, *, max_rows: int, gcj02: bool = False) -> SourceData:
    """Rows of a CSV (UTF-8 or GBK) or of the first sheet of an .xlsx; the header is row 1.

    Geometry, when the table has it, comes from lon/lat columns (经度/纬度) or a WKT column
    (geom_wkt); a row whose cells are not numbers or not WKT has no geometry and its reason
    in ``geometry_errors``.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        header, rows = _csv_rows(path, max_rows)
    else:
        header, rows = _xlsx_rows(path, max_rows)
    header = [str(h).replace("\ufeff", "").strip() for h in header]
    columns = [h for h in header if h]
    geometry = _table_geometry(columns)

    records: list[Record] = []
    bad_geometry: dict[int, str] = {}
    for number, row in rows:
        values = {h: _plain(row[i]) if i < len(row) else None for i, h in enumerate(header) if h}
        geom: BaseGeometry | None = None
        if geometry.lon is not None:
            got = _lonlat(values, geometry.lon, geometry.lat)  # type: ignore[arg-type]
            if isinstance(got, str):
                bad_geometry[number] = f"经纬度不是数字 / longitude/latitude not numbers: {got}"
            else:
                geom = got
        elif geometry.wkt is not None and values.get(geometry.wkt) is not None:
            try:
                geom = shapely.from_wkt(str(values[geometry.wkt]))
            except shapely.errors.GEOSException as exc:
                bad_geometry[number] = f"WKT 无法解析 / unreadable WKT: {str(exc)[:80]}"
        records.append(Record(row=number, values=values, geom=geom))

    has_geometry = geometry.lon is not None or geometry.wkt is not None
    notes: list[str] = []
    if has_geometry:
        geoms = [r.geom for r in records]
        _check_lonlat(_bounds(geoms))
        for record, geom in zip(records, _apply_gcj02(geoms, gcj02, notes), strict=True):
            record.geom = geom
    return SourceData(
        columns=columns,
        records=records,
        has_geometry=has_geometry,
        crs=WGS84 if has_geometry else None,
        notes=notes,
        geometry_errors=bad_geometry,
    )


def as_text(value: object) -> str | None:
    """A cell as text: whole numbers without '.0' (Excel stores 13800138000 as a float), dates ISO."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None
