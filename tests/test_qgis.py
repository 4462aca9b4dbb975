"""The QGIS plugin (``qgis_plugin/geoseg_processing``): its command runner with plain
Python, then the real QGIS: Debian's ``qgis_process`` (offscreen) with the plugin
installed from the zip ``scripts/build_qgis_plugin.py`` builds, and Debian's PyQGIS
for the Cancel button."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pyogrio
import pytest
import rasterio

from geoseg.segment.params import PRESETS
from tests.helpers import ROOT, ci_tool, shared, write_scene

PLUGIN = ROOT / "qgis_plugin" / "geoseg_processing"
MODEL = ROOT / "qgis_plugin" / "models" / "segment_and_dissolve.model3"
GEOSEG = Path(sys.executable).parent / "geoseg"
FAST = ("segment.max_iterations=4", "segment.crop_size=64", "segment.n_crops=6")
"""Short runs (``--set`` lines) for the comparisons."""
FAST_PARAMS = ("SETTINGS=" + "\n".join(FAST),)
"""The same as the run algorithm's SETTINGS parameter."""


def load_command() -> ModuleType:
    """The plugin's ``command.py``, which imports nothing from QGIS."""
    spec = importlib.util.spec_from_file_location("geoseg_plugin_command", PLUGIN / "command.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # for its dataclass
    spec.loader.exec_module(module)
    return module


command = load_command()


def test_progress_lines_become_percentages() -> None:
    assert command.percent("geoseg: train 12/24 (5 s)") == pytest.approx(17.5)
    assert command.percent("geoseg: predict 40/40 (61 s)") == 75
    assert command.percent("geoseg: vectorize 3 (2 s)") == 80  # no total: the stage start
    assert command.percent("geoseg: vectorize 5/10 (2 s)", {"vectorize": (0, 100)}) == 50
    assert command.percent("geoseg: error: scene.tif: no such file") is None
    assert command.percent("5 classes over 1 tiles") is None


def test_parameters_are_config_keys() -> None:
    assert set(command.PRESETS) == set(PRESETS)
    args = command.settings_args(
        {"segment.n_classes": 4, "tiling.tile_size": None, "input.bands": "[4, 3, 2]"},
        "segment.max_iterations=8\n\n# a comment\n  vectorize.min_area=16  ",
    )
    assert args == [
        "--set",
        "segment.n_classes=4",
        "--set",
        "input.bands=[4, 3, 2]",
        "--set",
        "segment.max_iterations=8",
        "--set",
        "vectorize.min_area=16",
    ]


@pytest.mark.slow  # geoseg or qgis_process in processes of their own
def test_runner_streams_progress_and_reports_the_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real geoseg: progress as rising percentages (a line at every update, however
    fast the run), an error as its one line."""
    monkeypatch.setenv("GEOSEG_HEARTBEAT_S", "0")
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample, "--rows", "96", "--cols", "96"], check=True)
    seen: list[float] = []
    lines: list[str] = []
    args = [str(GEOSEG), "run", str(sample), "-o", str(tmp_path / "out")]
    done = command.run(
        [*args, *command.settings_args(dict.fromkeys(FAST[:1]))],
        on_progress=seen.append,
        on_line=lines.append,
        cancelled=lambda: False,
    )
    assert done.returncode == 0, done.error
    assert seen, lines
    assert seen == sorted(seen)
    assert seen[0] < 35  # training first ...
    assert seen[-1] >= 80  # ... vectorize reached
    polygons: list[float] = []
    labels = tmp_path / "out" / "labels.tif"
    done = command.run([str(GEOSEG), "vectorize", str(labels), "-o", str(tmp_path / "v.gpkg")],
                       on_progress=polygons.append, on_line=lines.append,
                       cancelled=lambda: False, stages={"vectorize": (0, 100)})  # fmt: skip
    assert done.returncode == 0, done.error
    assert polygons[-1] == 100  # geoseg vectorize reports its blocks too
    bad = command.run(
        [*args, "--set", "input.bands=[9]"],
        on_progress=seen.append,
        on_line=lines.append,
        cancelled=lambda: False,
    )
    assert bad.returncode == 1
    assert bad.error.startswith("geoseg: error: input.bands=[9]")


@pytest.mark.slow  # geoseg or qgis_process in processes of their own
def test_runner_cancel_stops_geoseg_and_discard_leaves_nothing(tmp_path: Path) -> None:
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample], check=True)
    out = tmp_path / "out"
    seen: list[float] = []
    done = command.run(
        [str(GEOSEG), "run", str(sample), "-o", str(out)],
        on_progress=seen.append,
        on_line=lambda _: None,
        cancelled=lambda: bool(seen),
    )
    assert done.cancelled
    assert done.returncode == 130  # geoseg's Ctrl-C status: it stopped cleanly
    assert (out / command.WORK).is_dir()  # kept by geoseg for a resume ...
    command.discard(out, created=True)
    assert not out.exists()  # ... and removed by the plugin


def test_plugin_zip_holds_the_plugin_with_geoseg_s_version(tmp_path: Path) -> None:
    import geoseg

    build = [sys.executable, ROOT / "scripts" / "build_qgis_plugin.py", "--out", tmp_path]
    done = subprocess.run(build, check=True, capture_output=True, text=True)
    with zipfile.ZipFile(done.stdout.strip()) as archive:
        names = set(archive.namelist())
        metadata = archive.read("geoseg_processing/metadata.txt").decode()
    expected = {f"geoseg_processing/{p.name}" for p in PLUGIN.iterdir() if p.is_file()}
    assert names == expected
    assert f"\nversion={geoseg.__version__}\n" in metadata
    assert "\nhasProcessingProvider=yes\n" in metadata


# --- the real QGIS -------------------------------------------------------------------


@pytest.fixture(scope="module")
def qgis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a headless QGIS with the plugin installed from its zip and
    enabled in a profile of its own; geoseg last on PATH (QGIS's embedded Python must
    find the system's python3 first)."""
    ci_tool("qgis_process", "qgis")
    root = tmp_path_factory.mktemp("qgis")
    zipped = subprocess.run(
        [sys.executable, ROOT / "scripts" / "build_qgis_plugin.py", "--out", root / "dist"],
        check=True,
        capture_output=True,
        text=True,
    )
    with zipfile.ZipFile(zipped.stdout.strip()) as archive:
        archive.extractall(root / "plugins")
    bin_dir = str(GEOSEG.parent)
    # no virtualenv's bin/ before the system's python3 (an outer one a shell activated
    # made QGIS take that venv's stdlib and miss its own qgis module)
    path = [
        p
        for p in os.environ["PATH"].split(os.pathsep)
        if p and p != bin_dir and not (Path(p).parent / "pyvenv.cfg").exists()
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(
        PATH=os.pathsep.join([*path, bin_dir]),
        QT_QPA_PLATFORM="offscreen",
        XDG_RUNTIME_DIR=str(root / "runtime"),
        QGIS_PLUGINPATH=str(root / "plugins"),
        QGIS_CUSTOM_CONFIG_PATH=qgis_profile(root),
    )
    return env


def qgis_profile(root: Path, setting: str = "") -> str:
    """A QGIS profile folder under ``root`` with the plugin enabled and, when given,
    the provider's setting (the geoseg executable's path)."""
    profile = root / "profiles" / "profiles" / "default" / "QGIS"
    profile.mkdir(parents=True)
    ini = "[PythonPlugins]\ngeoseg_processing=true\n"
    if setting:
        ini += f"[Processing]\nConfiguration\\GEOSEG_COMMAND={setting}\n"
    (profile / "QGIS3.ini").write_text(ini)
    return str(root / "profiles")


def qgis_process(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Debian's ``qgis_process`` wrapper adds ``--noversioncheck``, which the 3.22
    binary refuses: the binary is called directly where it exists."""
    found = shutil.which("qgis_process", path=env["PATH"])
    assert found is not None
    binary = found + ".bin" if Path(found + ".bin").exists() else found
    return subprocess.run(
        [binary, *map(str, args)], env=env, capture_output=True, text=True, timeout=900
    )


def results(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout)["results"]


@pytest.mark.slow  # geoseg or qgis_process in processes of their own
def test_qgis_process_lists_the_geoseg_algorithms(qgis: dict[str, str]) -> None:
    done = qgis_process(qgis, "list")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if "geoseg:" in line}
    assert listed == {"geoseg:run", "geoseg:vectorize", "geoseg:evaluate", "geoseg:plan"}


@pytest.mark.slow  # geoseg or qgis_process in processes of their own
def test_bad_input_is_geoseg_s_one_line_and_a_failure(qgis: dict[str, str], tmp_path: Path) -> None:
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample, "--rows", "64", "--cols", "64"], check=True)
    out = tmp_path / "out"
    done = qgis_process(
        qgis, "run", "geoseg:run", "--", f"INPUT={sample}", "BANDS=9", f"OUTPUT={out}"
    )
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "geoseg: error: input.bands=[9]" in said
    assert not out.exists()


def _without_geoseg(qgis: dict[str, str], root: Path, setting: str = "") -> dict[str, str]:
    """The environment with geoseg's folder off PATH, in a profile of its own with the
    provider's setting (the geoseg executable's path) when given."""
    path = [p for p in qgis["PATH"].split(os.pathsep) if p != str(GEOSEG.parent)]
    return {
        **qgis,
        "PATH": os.pathsep.join(path),
        "QGIS_CUSTOM_CONFIG_PATH": qgis_profile(root, setting),
    }


@pytest.mark.slow  # geoseg or qgis_process in processes of their own
def test_missing_geoseg_is_one_line(qgis: dict[str, str], tmp_path: Path) -> None:
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample, "--rows", "64", "--cols", "64"], check=True)
    env = _without_geoseg(qgis, tmp_path)
    done = qgis_process(env, "run", "geoseg:plan", "--", f"INPUT={sample}")
    assert done.returncode != 0
    assert "geoseg: error: the geoseg command is not on PATH" in done.stdout + done.stderr


@pytest.mark.slow
def test_geoseg_command_from_the_provider_setting(qgis: dict[str, str], tmp_path: Path) -> None:
    """Settings > Options > Processing > Providers > geoseg: the command's path."""
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample, "--rows", "64", "--cols", "64"], check=True)
    env = _without_geoseg(qgis, tmp_path, setting=str(GEOSEG))
    got = results(qgis_process(env, "run", "geoseg:plan", "--json", "--", f"INPUT={sample}"))
    assert got["TILES"] >= 1


def _cli_and_qgis(qgis: dict[str, str], scene: Path, tmp_path: Path, **params: str) -> tuple:
    """The same run from the CLI and from ``qgis_process run geoseg:run``."""
    keys = {
        "CLASSES": "segment.n_classes",
        "TILE_SIZE": "tiling.tile_size",
        "SEED": "runtime.seed",
        "MIN_AREA": "vectorize.min_area",
        "SCALE": "segment.scale",
    }
    sets = [f"{keys[k]}={v}" for k, v in params.items()] + list(FAST)
    cli = subprocess.run(
        [
            GEOSEG,
            "run",
            scene,
            "-o",
            tmp_path / "cli",
            "-q",
            *[a for s in sets for a in ("--set", s)],
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    done = qgis_process(
        qgis,
        "run",
        "geoseg:run",
        "--json",
        "--",
        f"INPUT={scene}",
        f"OUTPUT={tmp_path / 'qgis'}",
        *[f"{k}={v}" for k, v in params.items()],
        *FAST_PARAMS,
    )
    return results(done), tmp_path / "cli", tmp_path / "qgis"


def _same_outputs(cli: Path, qgis_out: Path) -> None:
    assert (cli / "labels.tif").read_bytes() == (qgis_out / "labels.tif").read_bytes()
    layers = [
        pyogrio.read_dataframe(d / "segments.gpkg", layer="segments") for d in (cli, qgis_out)
    ]
    assert len(layers[0]) > 0
    assert layers[0].equals(layers[1])


@pytest.mark.slow
def test_run_on_the_sample_equals_the_cli_and_scores(qgis: dict[str, str], tmp_path: Path) -> None:
    """The bundled sample: labels.tif byte for byte as the CLI's, the same polygons;
    then geoseg:evaluate against the sample's truth and geoseg:vectorize of the labels."""
    sample, truth = tmp_path / "sample.tif", tmp_path / "truth.tif"
    subprocess.run([GEOSEG, "sample", sample, "--truth", truth], check=True)
    got, cli, qgis_out = _cli_and_qgis(qgis, sample, tmp_path, CLASSES="5", SEED="0")
    _same_outputs(cli, qgis_out)
    assert got["LABELS"] == str(qgis_out / "labels.tif")
    assert got["SEGMENTS"] == str(qgis_out / "segments.gpkg")
    assert got["N_CLASSES"] == 5
    scores = results(
        qgis_process(
            qgis,
            "run",
            "geoseg:evaluate",
            "--json",
            "--",
            f"INPUT={got['LABELS']}",
            f"TRUTH={truth}",
        )
    )
    assert scores["ARI"] > 0.9  # the sample's five regions are found
    polygons = tmp_path / "again.gpkg"
    done = results(
        qgis_process(
            qgis,
            "run",
            "geoseg:vectorize",
            "--json",
            "--",
            f"INPUT={got['LABELS']}",
            f"OUTPUT={polygons}",
        )
    )
    assert done["OUTPUT"] == str(polygons)
    assert len(pyogrio.read_dataframe(polygons, layer="segments")) == got["N_SEGMENTS"]


@pytest.mark.slow
def test_run_on_a_real_scene_equals_the_cli(qgis: dict[str, str], tmp_path: Path) -> None:
    """A real Landsat scene with nodata, a tile size that makes many tiles."""
    scene = shared("landsat7_rasterio_rgb/RGB.byte.tif")
    _, cli, qgis_out = _cli_and_qgis(qgis, scene, tmp_path, TILE_SIZE="256", MIN_AREA="8",
                                     SCALE="40")  # fmt: skip
    _same_outputs(cli, qgis_out)
    with rasterio.open(qgis_out / "labels.tif") as labels, rasterio.open(scene) as src:
        assert labels.transform == src.transform
        assert labels.crs == src.crs
        assert np.array_equal(labels.read(1) == 0, src.dataset_mask() == 0)


@pytest.mark.slow
def test_plan_reports_tiles_and_time(qgis: dict[str, str], tmp_path: Path) -> None:
    """geoseg:plan's numbers are the CLI's plan (its timings differ run to run)."""
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample], check=True)
    plan = tmp_path / "plan.json"
    got = results(
        qgis_process(qgis, "run", "geoseg:plan", "--json", "--", f"INPUT={sample}",
                     "SETTINGS=tiling.tile_size=128", f"OUTPUT={plan}")
    )  # fmt: skip
    cli = subprocess.run([GEOSEG, "plan", sample, "--json", "--set", "tiling.tile_size=128"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    expected = json.loads(cli.stdout)
    assert got["TILES"] == expected["tiles"] > 1
    assert got["OUTPUT_DISK_MB"] == expected["output_disk_mb"]
    assert got["SECONDS"] > 0
    assert json.loads(plan.read_text())["tile_size"] == 128


def headless(qgis: dict[str, str], mode: str, scene: Path, out: Path, *params: str) -> dict:
    """``tests/qgis_headless.py`` in Debian's python3 (PyQGIS): its JSON line."""
    script = [ROOT / "tests" / "qgis_headless.py", mode, PLUGIN.parent, scene, out, *params]
    done = subprocess.run(["/usr/bin/python3", *map(str, script)], env=qgis,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_outputs_load_coloured_with_the_classes(qgis: dict[str, str], tmp_path: Path) -> None:
    """As the toolbox loads them: the label raster paletted with classes 1..K, the
    segments with the GeoPackage's own style, class k in the same colour in both."""
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample, "--rows", "256", "--cols", "256"], check=True)
    said = headless(qgis, "load", sample, tmp_path / "out", "CLASSES=4", *FAST_PARAMS)
    assert said["ok"]
    assert said["progress"][-1] == 100
    labels, segments = said["layers"]["LABELS"], said["layers"]["SEGMENTS"]
    assert labels["valid"]
    assert segments["valid"]
    assert labels["renderer"] == "paletted"
    assert segments["renderer"] == "categorizedSymbol"
    assert [c[:2] for c in labels["classes"]] == [[k, f"class {k}"] for k in range(1, 5)]
    assert [c[2] for c in labels["classes"]] == [c[2] for c in segments["classes"]]


@pytest.mark.slow
def test_a_scribble_layer_names_the_classes(qgis: dict[str, str], tmp_path: Path) -> None:
    """``geoseg:run`` with a scribble layer and its field (as a user draws them in
    QGIS): the label raster's legend and the segments' categories carry the names."""
    import geopandas as gpd
    import shapely

    from geoseg.sample import SAMPLE_CRS, sample_transform

    scene, truth = write_scene(tmp_path / "scene.tif", rows=200, cols=260, n_classes=3)
    t, lines, names = sample_transform(), [], []
    for k, name in ((2, "fields"), (1, "water"), (3, "forest")):
        rows, cols = np.nonzero(truth == k)
        r, c = rows[rows.size // 2], cols[rows.size // 2]
        lines.append(shapely.LineString([t @ (c + 0.5, r + 0.5), t @ (c + 1.5, r + 0.5)]))
        names.append(name)
    strokes = gpd.GeoDataFrame({"cover": names}, geometry=lines, crs=SAMPLE_CRS)
    strokes.to_file(tmp_path / "strokes.gpkg")
    said = headless(qgis, "load", scene, tmp_path / "out", f"SCRIBBLES={tmp_path / 'strokes.gpkg'}",
                    "SCRIBBLE_FIELD=cover", *FAST_PARAMS)  # fmt: skip
    assert said["ok"]
    labels, segments = said["layers"]["LABELS"], said["layers"]["SEGMENTS"]
    assert [c[:2] for c in labels["classes"]] == [[k, n] for k, n in enumerate(names, 1)]
    assert [c[:2] for c in segments["classes"]] == [[k, n] for k, n in enumerate(names, 1)]


@pytest.mark.slow
def test_cancel_stops_the_run_and_leaves_no_files(qgis: dict[str, str], tmp_path: Path) -> None:
    """The Cancel button (PyQGIS, Debian's python3): geoseg is stopped, the output
    folder it started goes; a folder with a previous complete run keeps it intact."""
    ci_tool("qgis_process", "qgis")
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample], check=True)

    def cancel(out: Path) -> dict:
        return headless(qgis, "cancel", sample, out)

    fresh = tmp_path / "fresh"
    said = cancel(fresh)
    assert said["cancelled"]
    assert said["progress"]  # geoseg had started
    assert not fresh.exists()
    previous = tmp_path / "previous"
    subprocess.run(
        [GEOSEG, "run", sample, "-o", previous, "-q", "--max-iterations", "2"], check=True
    )
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    assert cancel(previous)["cancelled"]
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before


@pytest.mark.slow
def test_graphical_model_chains_run_into_qgis_dissolve(
    qgis: dict[str, str], tmp_path: Path
) -> None:
    """``qgis_plugin/models/segment_and_dissolve.model3``: geoseg:run's segments feed
    QGIS's own Dissolve by class_id; one multipolygon per class comes out."""
    sample = tmp_path / "sample.tif"
    subprocess.run([GEOSEG, "sample", sample, "--rows", "256", "--cols", "256"], check=True)
    dissolved = tmp_path / "classes.gpkg"
    got = results(
        qgis_process(
            qgis,
            "run",
            MODEL,
            "--json",
            "--",
            f"scene={sample}",
            "classes=3",
            f"dissolve:dissolved={dissolved}",
        )
    )
    assert got["dissolve:dissolved"] == str(dissolved)
    frame = pyogrio.read_dataframe(dissolved)
    assert sorted(frame["class_id"]) == [1, 2, 3]
    with rasterio.open(sample) as src:
        width = src.bounds.right - src.bounds.left
        height = src.bounds.top - src.bounds.bottom
    assert frame.area.sum() == pytest.approx(width * height)  # the classes tile the scene
