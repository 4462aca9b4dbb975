"""The output folder of a run (:mod:`geoseg.run.folder`): written as one set, a rerun
replaces it, a vector layer outside it is published with it."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import yaml

from geoseg.run import run_scene
from tests.helpers import fast_config as config


def test_rerun_replaces_the_outputs_as_a_set(scene, tmp_path: Path) -> None:
    """A rerun with other outputs removes what the earlier run wrote and this one does
    not (its animation and GeoJSON); no work folder stays."""
    out = tmp_path / "out"
    first = config("output.vector=segments.geojson", "output.snapshots=[1,2]")
    run_scene(scene[0], out, first)
    assert {"training.gif", "segments.geojson"} <= {p.name for p in out.iterdir()}
    run_scene(scene[0], out, config())
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.tif",
        "quicklook.png",
        "report.html",
        "run.yaml",
        "segments.gpkg",
    ]
    listed = yaml.safe_load((out / "run.yaml").read_text())["outputs"]
    assert sorted(listed) == ["labels.tif", "quicklook.png", "report.html", "segments.gpkg"]


def test_vector_elsewhere_is_published_with_the_run(scene, tmp_path: Path) -> None:
    """A Shapefile outside OUTDIR: staged with the run, all its parts moved at the end."""
    layer = tmp_path / "layers" / "seg.shp"
    layer.parent.mkdir()
    result = run_scene(scene[0], tmp_path / "out", config(f"output.vector={layer}"))
    assert result.vector == layer
    assert {".shp", ".shx", ".dbf", ".prj", ".cpg"} <= {p.suffix for p in layer.parent.iterdir()}
    assert not (tmp_path / "out" / ".geoseg-run").exists()
    assert gpd.read_file(layer).shape[0] == result.n_features
