"""Guided classes (TIP 2020 scribbles): a few strokes name the classes of a run."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml

from geoseg.evaluate import adjusted_rand_index
from geoseg.io.raster_read import SceneReader
from geoseg.io.scribbles import CHECK_BLOCK, on_data, read_scribbles
from geoseg.run.scene import run_scene
from geoseg.sample import SAMPLE_CRS, sample_transform
from tests.helpers import fast_config, write_scene

NAMES = {4: "built-up", 1: "water", 3: "fields", 2: "forest"}
"""Truth class -> the name its stroke carries, in the order the strokes are drawn (not
the classes' order by area)."""


def strokes_of(truth: np.ndarray, length: int = 9) -> gpd.GeoDataFrame:
    """One short horizontal stroke inside each true class (from the middle of its pixels
    in raster order), named by :data:`NAMES`, in the scene's CRS."""
    transform = sample_transform()
    lines, names = [], []
    for k, name in NAMES.items():
        rows, cols = np.nonzero(truth == k)
        r, c = rows[rows.size // 2], cols[rows.size // 2]
        end = c
        while end + 1 < truth.shape[1] and truth[r, end + 1] == k and end - c < length - 1:
            end += 1
        ends = [transform @ (col + 0.5, r + 0.5) for col in (c, end)]
        lines.append(shapely.LineString(ends))
        names.append(name)
    return gpd.GeoDataFrame({"class": names}, geometry=lines, crs=SAMPLE_CRS)


@pytest.fixture(scope="module")
def scribbled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, Path]:
    """A four-class scene, one stroke in each class, and a run with them."""
    root = tmp_path_factory.mktemp("scribbles")
    scene, truth = write_scene(root / "scene.tif", rows=200, cols=260, n_classes=4)
    strokes_of(truth).to_file(root / "strokes.gpkg")
    config = fast_config(f"segment.scribbles={root / 'strokes.gpkg'}")
    run_scene(scene, root / "run", config)
    return root, truth, root / "run"


def test_one_stroke_a_class_gives_those_classes(
    scribbled: tuple[Path, np.ndarray, Path],
) -> None:
    """Four strokes: four classes, each the true class its stroke lies in, ids in the
    order the strokes name them."""
    _, truth, run = scribbled
    with rasterio.open(run / "labels.tif") as src:
        labels = src.read(1).astype(np.int64)
        tags = src.tags(1)
    assert sorted(np.unique(labels).tolist()) == [1, 2, 3, 4]
    assert adjusted_rand_index(labels, truth.astype(np.int64)) >= 0.95
    names = list(NAMES.values())
    for k, true_class in enumerate(NAMES, start=1):  # class k is the k-th name's cover
        assert np.bincount(truth[labels == k]).argmax() == true_class
        assert tags[f"CLASS_{k}"] == names[k - 1]
    record = yaml.safe_load((run / "run.yaml").read_text())
    assert record["classes"]["names"] == names
    assert "scribbled" not in record["training"]


def test_polygons_carry_the_names_of_their_classes(
    scribbled: tuple[Path, np.ndarray, Path],
) -> None:
    _, _, run = scribbled
    polygons = gpd.read_file(run / "segments.gpkg", layer="segments")
    names = list(NAMES.values())
    pairs = set(zip(polygons["class_id"], polygons["class_name"], strict=True))
    assert pairs == {(k, names[k - 1]) for k in range(1, 5)}
    styles = gpd.read_file(run / "segments.gpkg", layer="layer_styles")
    assert all(f'label="{name}"' in styles["styleQML"][0] for name in names)
    report = (run / "report.html").read_text()
    assert all(f"<td>{name}</td>" in report for name in names)


def test_strokes_in_another_crs_land_on_the_same_pixels(
    scribbled: tuple[Path, np.ndarray, Path],
) -> None:
    root, _, _ = scribbled
    with SceneReader(root / "scene.tif") as reader:
        info = reader.info
    (root / "strokes_4326.gpkg").unlink(missing_ok=True)
    gpd.read_file(root / "strokes.gpkg").to_crs("EPSG:4326").to_file(root / "strokes_4326.gpkg")
    utm = read_scribbles(root / "strokes.gpkg", "class", info)
    lonlat = read_scribbles(root / "strokes_4326.gpkg", "class", info)
    assert utm.names == lonlat.names == tuple(NAMES.values())
    assert utm.rows.size >= 4 * 9
    np.testing.assert_array_equal(utm.rows, lonlat.rows)
    np.testing.assert_array_equal(utm.cols, lonlat.cols)
    np.testing.assert_array_equal(utm.classes, lonlat.classes)


def test_widths_points_polygons_and_strokes_without_a_class(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A point is one pixel, or a disc ``width`` metres across; a polygon the pixels
    whose centres it holds; a stroke without a value is left out with a warning."""
    _, truth = write_scene(tmp_path / "scene.tif", rows=40, cols=50)
    with SceneReader(tmp_path / "scene.tif") as reader:
        info = reader.info
    t = sample_transform()
    geoms = [shapely.Point(t @ (10.5, 10.5)), shapely.box(*(t @ (30, 30)), *(t @ (34, 26))),
             shapely.Point(t @ (40.5, 5.5))]  # fmt: skip
    frame = gpd.GeoDataFrame({"class": [7.0, 3.0, None]}, geometry=geoms, crs=SAMPLE_CRS)
    frame.to_file(tmp_path / "s.gpkg")
    with caplog.at_level(logging.WARNING):
        thin = read_scribbles(tmp_path / "s.gpkg", "class", info)
    assert "1 feature(s) without class" in caplog.text
    assert thin.names == ("7", "3")  # 7.0 is class "7"
    assert np.bincount(thin.classes).tolist() == [1, 16]  # the 4 x 4 px box
    wide = read_scribbles(tmp_path / "s.gpkg", "class", info, width=50.0)  # 5 px across
    assert 15 <= np.count_nonzero(wide.classes == 0) <= 25  # a disc of 5 px: ~20 px
    assert truth.shape == (40, 50)


def test_strokes_on_nodata_are_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Scribbled pixels on nodata are dropped, block by block; a class left without any
    keeps its id and is named in a warning."""
    rows, cols = 40, CHECK_BLOCK + 60  # the strokes span two blocks
    write_scene(tmp_path / "scene.tif", rows=rows, cols=cols,
                nodata_box=(slice(0, 20), slice(CHECK_BLOCK + 10, cols)))  # fmt: skip
    t = sample_transform()
    lines = [
        ((5, CHECK_BLOCK - 30), (5, CHECK_BLOCK + 29)),  # a: half on nodata
        ((30, CHECK_BLOCK + 20), (30, CHECK_BLOCK + 40)),  # b: on data
        ((10, CHECK_BLOCK + 30), (10, CHECK_BLOCK + 50)),
    ]  # c: on nodata only
    geoms = [shapely.LineString([t @ (c + 0.5, r + 0.5) for r, c in line]) for line in lines]
    frame = gpd.GeoDataFrame({"class": ["a", "b", "c"]}, geometry=geoms, crs=SAMPLE_CRS)
    frame.to_file(tmp_path / "s.gpkg")
    with SceneReader(tmp_path / "scene.tif") as reader:
        drawn = read_scribbles(tmp_path / "s.gpkg", "class", reader.info)
        with caplog.at_level(logging.WARNING):
            kept = on_data(drawn, reader.read, tmp_path / "s.gpkg")
    assert np.bincount(drawn.classes).tolist() == [60, 21, 21]
    assert kept.names == ("a", "b", "c")
    assert np.bincount(kept.classes, minlength=3).tolist() == [40, 21, 0]
    assert kept.cols[kept.classes == 0].max() == CHECK_BLOCK + 9  # the last column on data
    assert "class 'c' lie on the scene's nodata" in caplog.text
    assert "'a'" not in caplog.text


@pytest.mark.slow
def test_labels_do_not_depend_on_the_tile_size(tmp_path: Path) -> None:
    """One decision a scene: the same labels through tiles of 256 and 1024 px."""
    scene, truth = write_scene(tmp_path / "scene.tif", rows=600, cols=700, n_classes=4)
    strokes_of(truth).to_file(tmp_path / "strokes.gpkg")
    maps = []
    for size in (256, 1024):
        config = fast_config(
            f"segment.scribbles={tmp_path / 'strokes.gpkg'}",
            f"tiling.tile_size={size}",
            "segment.max_iterations=8",
        )
        run_scene(scene, tmp_path / f"run_{size}", config)
        with rasterio.open(tmp_path / f"run_{size}" / "labels.tif") as src:
            maps.append(src.read(1))
    np.testing.assert_array_equal(maps[0], maps[1])
    assert set(np.unique(maps[0]).tolist()) == {1, 2, 3, 4}


def test_a_scribbled_run_has_no_tree_to_cut(scribbled: tuple[Path, np.ndarray, Path]) -> None:
    """The user named the classes: there is nothing to join them by."""
    from geoseg.errors import InputError
    from geoseg.run.reclass import reclass_run

    _, _, run = scribbled
    with pytest.raises(InputError, match="scribbled classes"):
        reclass_run(run, 2)
    assert not (run / "classes_2").exists()


def test_without_scribbles_only_other_classes_follow_unnamed(
    scribbled: tuple[Path, np.ndarray, Path],
) -> None:
    """``segment.scribbles_only: false``: the scribbled classes keep ids 1..4 and their
    names; any class the network adds comes after them, without a name."""
    root, _, _ = scribbled
    config = fast_config(
        f"segment.scribbles={root / 'strokes.gpkg'}", "segment.scribbles_only=false"
    )
    run_scene(root / "scene.tif", root / "extra", config)
    record = yaml.safe_load((root / "extra" / "run.yaml").read_text())
    assert record["classes"]["names"] == list(NAMES.values())
    assert record["classes"]["source_ids"][:4] == [1, 2, 3, 4]  # channels 0..3 kept in place
    polygons = gpd.read_file(root / "extra" / "segments.gpkg", layer="segments")
    named = polygons[polygons["class_id"] <= 4]
    assert named["class_name"].notna().all()
    assert polygons.loc[polygons["class_id"] > 4, "class_name"].isna().all()
