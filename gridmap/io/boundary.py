"""Read a district boundary shipped in data/boundaries/."""

from __future__ import annotations

import json
from pathlib import Path

from shapely import make_valid, unary_union
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

BOUNDARIES_DIR = Path(__file__).resolve().parents[2] / "data" / "boundaries"
DEFAULT_BOUNDARY = BOUNDARIES_DIR / "yuzhong.geojson"


def read_boundary(path: Path = DEFAULT_BOUNDARY, name: str | None = None) -> tuple[BaseGeometry, dict]:
    """The (multi)polygon of one district in EPSG:4326 and its properties.

    With several features in the file, ``name`` picks one (by ``name`` or ``adcode``); without it
    the first feature is taken.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    features = data["features"] if data.get("type") == "FeatureCollection" else [data]
    if name is not None:
        features = [f for f in features if name in (f["properties"].get("name"), f["properties"].get("adcode"))]
        if not features:
            raise ValueError(f"no district named {name!r} in {path}")
    feature = features[0]
    geom = make_valid(shape(feature["geometry"]))
    return unary_union([geom]), dict(feature.get("properties") or {})
