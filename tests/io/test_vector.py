"""Every vector format round-trips; GeoPackage style and provenance; nothing half-written."""

from __future__ import annotations

import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
from affine import Affine
from rasterio.crs import CRS

from geoseg.errors import OutputError
from geoseg.io.vector import DRIVERS, VectorWriter
from geoseg.render import palette
from geoseg.sections import VECTOR_SUFFIXES
from geoseg.vectorize import vectorize_array
from tests.helpers import ci_tool

UTM = CRS.from_epsg(32618)


@pytest.fixture(scope="module")
def segments() -> gpd.GeoDataFrame:
    labels = np.ones((20, 30), np.uint8)
    labels[5:12, 4:20] = 2
    labels[8:10, 8:12] = 3  # a hole in class 2
    labels[15:, 22:] = 0  # nodata
    bands = np.arange(2 * 20 * 30, dtype=np.float64).reshape(2, 20, 30)
    return vectorize_array(
        labels,
        Affine(10, 0, 600_000, 0, -10, 4_100_000),
        UTM,
        bands=bands,
        band_names=["b4", "b12"],
    )


def read(path: Path) -> gpd.GeoDataFrame:
    if path.suffix == ".parquet":
        return gpd.read_parquet(path)
    return gpd.read_file(path, engine="pyogrio")


def test_formats_match_the_config_suffixes() -> None:
    assert tuple(DRIVERS) == VECTOR_SUFFIXES


@pytest.mark.parametrize("suffix", list(DRIVERS))
def test_every_format_round_trips(segments, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"segments{suffix}"
    with VectorWriter(path) as out:
        out.write(segments.iloc[:2])  # in two batches
        out.write(segments.iloc[2:])
    back = read(path).sort_values("segment_id", ignore_index=True)  # FlatGeobuf reorders
    assert len(back) == len(segments) == 3
    assert back.crs.to_epsg() == 32618
    assert back.segment_id.tolist() == segments.segment_id.tolist()
    assert back.class_id.tolist() == segments.class_id.tolist()
    np.testing.assert_allclose(back["area"], segments["area"])
    np.testing.assert_allclose(back["b12_std"], segments["b12_std"])
    assert back.geometry.geom_equals(segments.geometry).all()
    assert sorted(p.name for p in tmp_path.iterdir())[0].startswith("segments")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


@pytest.mark.parametrize("suffix", [s for s in DRIVERS if s != ".parquet"])
def test_ogrinfo_reads_every_ogr_format(segments, tmp_path: Path, suffix: str) -> None:
    # Debian's GDAL has no (Geo)Parquet driver; GeoParquet is checked by pyarrow above.
    path = tmp_path / f"segments{suffix}"
    with VectorWriter(path) as out:
        out.write(segments)
    layer = "segments" if suffix in (".gpkg", ".shp") else pyogrio.list_layers(path)[0][0]
    done = subprocess.run(
        [ci_tool("ogrinfo", "gdal-bin"), "-so", str(path), layer],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Feature Count: 3" in done.stdout
    assert "class_id" in done.stdout
    assert "Warning" not in done.stderr


def test_shapefile_has_prj_cpg_and_short_field_names(segments, tmp_path: Path) -> None:
    path = tmp_path / "segments.shp"
    with VectorWriter(path) as out:
        out.write(segments)
    assert {p.suffix for p in tmp_path.iterdir()} >= {".shp", ".shx", ".dbf", ".prj", ".cpg"}
    assert (tmp_path / "segments.cpg").read_text().strip() == "UTF-8"
    fields = pyogrio.read_info(path)["fields"]
    assert list(fields) == list(segments.columns.drop("geometry"))  # none truncated
    assert max(len(name) for name in fields) <= 10


def test_geopackage_carries_style_and_provenance(segments, tmp_path: Path) -> None:
    path = tmp_path / "segments.gpkg"
    with VectorWriter(path, metadata={"geoseg_seed": "7"}) as out:
        out.write(segments)
    styles = pyogrio.read_dataframe(path, layer="layer_styles", fid_as_index=True)
    assert styles.f_table_name.tolist() == ["segments"]
    geometry = pyogrio.read_info(path, layer="segments")["geometry_name"]
    assert styles.f_geometry_column.tolist() == [geometry]
    assert bool(styles.useAsDefault.iloc[0])
    qml = ET.fromstring(styles.styleQML.iloc[0].split("\n", 1)[1])
    renderer = qml.find("renderer-v2")
    assert renderer is not None
    assert renderer.get("attr") == "class_id"
    categories = renderer.findall("categories/category")
    assert [c.get("value") for c in categories] == ["1", "2", "3"]
    fill = renderer.find("symbols/symbol[@name='1']/layer/Option/Option[@name='color']")
    assert fill is not None
    assert fill.get("value") == ",".join(map(str, palette(4)[2])) + ",255"
    assert pyogrio.read_info(path, layer="segments")["layer_metadata"] == {"geoseg_seed": "7"}
    with sqlite3.connect(path) as db:  # the GeoPackage metadata extension's tables
        (count,) = db.execute("select count(*) from gpkg_metadata_reference").fetchone()
        (xml,) = db.execute("select metadata from gpkg_metadata").fetchone()
        (kind,) = db.execute(
            "select data_type from gpkg_contents where table_name='layer_styles'"
        ).fetchone()
    assert count >= 1
    assert "geoseg_seed" in xml
    assert kind == "attributes"


def test_to_crs_reprojects(segments, tmp_path: Path) -> None:
    path = tmp_path / "segments.geojson"
    with VectorWriter(path, to_crs="EPSG:4326") as out:
        out.write(segments)
    back = read(path)
    assert back.crs.to_epsg() == 4326
    assert back.geometry.iloc[0].centroid.x == pytest.approx(-73.86, abs=0.1)  # UTM 18N
    np.testing.assert_allclose(back["area"], segments["area"])  # measured before


def test_unknown_format_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"unknown vector format '\.xyz'; use one of .gpkg"):
        VectorWriter(tmp_path / "out.xyz")
    with pytest.raises(OutputError, match="does not exist"):
        VectorWriter(tmp_path / "missing" / "out.gpkg")


def test_failure_leaves_nothing_behind(segments, tmp_path: Path) -> None:
    path = tmp_path / "segments.gpkg"

    def fail() -> None:
        with VectorWriter(path) as out:
            out.write(segments)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert list(tmp_path.iterdir()) == []


def test_reprojecting_without_crs_is_refused(segments, tmp_path: Path) -> None:
    with (
        pytest.raises(OutputError, match="no CRS"),
        VectorWriter(tmp_path / "a.gpkg", to_crs="EPSG:4326") as out,
    ):
        out.write(segments.set_crs(None, allow_override=True))
    assert list(tmp_path.iterdir()) == []
