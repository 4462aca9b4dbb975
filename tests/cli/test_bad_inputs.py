"""Bad inputs and unwritable outputs, as a user meets them: the ``geoseg`` command in one
long-lived child process that runs the cases one after another as the console script
would (:class:`~tests.helpers.InProcess`, :mod:`tests.cli_sandbox` ``--real``), or, for
the cases that need a process of their own (a full disk, Ctrl-C: the slow tier), in a
subprocess each (:func:`~tests.helpers.geoseg`). Every case must end with its
exit status, exactly one ``geoseg: error:`` line on stderr (no traceback, no GDAL or
Python warning), and the folder unchanged: a prior complete run byte-identical, and
nothing created.

Permission cases run with the capabilities that let root ignore file permissions dropped
(``setpriv``), so they test what a user sees; a full disk is a real small tmpfs mounted
in a user namespace (``unshare``), skipped where the machine does not allow it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from tests.helpers import SET_FAST, InProcess, geoseg, one_error, snapshot, write_scene
from tests.range_server import RangeServer, serve


def bomb(levels: int = 7) -> str:
    """YAML of nested anchors, nine aliases of the list before at each level: 9**levels
    strings once expanded (the issue's 410-byte one has 9 levels; 7 keep a regression
    at some hundred MB)."""
    parts = [f"&a0 [{', '.join(['lol'] * 9)}]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"[{', '.join(parts)}]"


def _raster(path: Path, data: np.ndarray, **profile: object) -> None:
    base = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": data.dtype,
        "crs": "EPSG:32618",
        "transform": Affine(10, 0, 400000, 0, -10, 4150000),
    }
    with rasterio.open(path, "w", **{**base, **profile}) as out:
        out.write(data)


def _png(path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (32, 48, 3)).astype(np.uint8)).save(path)


def _strokes(root: Path) -> None:
    """Scribble layers for the 64 x 96 px scene at (400000, 4150000), 10 m pixels."""
    import geopandas as gpd
    import shapely

    def layer(name: str, classes: list[object], x0: float = 400100) -> None:
        lines = [shapely.LineString([(x0 + 50 * i, 4149700), (x0 + 50 * i + 40, 4149700)])
                 for i in range(len(classes))]  # fmt: skip
        frame = gpd.GeoDataFrame({"class": classes}, geometry=lines, crs="EPSG:32618")
        frame.to_file(root / name)

    layer("far.gpkg", ["water", "forest"], x0=900000)
    layer("one_class.gpkg", ["water", "water", None])
    layer("empty.gpkg", [])
    layer("no_field.gpkg", ["water", "forest"])
    gpd.read_file(root / "no_field.gpkg").rename(columns={"class": "kind"}).to_file(
        root / "other_field.gpkg"
    )


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory, in_process: InProcess) -> Path:
    """A folder with a scene, a complete run of it in ``prior/`` and bad inputs."""
    root = tmp_path_factory.mktemp("bad")
    write_scene(root / "scene.tif", rows=64, cols=96, bands=4)
    done = in_process(["run", "scene.tif", "-o", "prior", "-q", *SET_FAST], root)
    assert done.returncode == 0, done.stderr
    shutil.copytree(root / "prior", root / "prior_ro")
    rng = np.random.default_rng(0)
    ids = rng.integers(-3, 5, (1, 64, 96))
    _raster(root / "negative.tif", ids.astype(np.int16))
    _raster(root / "float.tif", ids.astype(np.float32))
    _raster(root / "complex.tif", (rng.random((1, 64, 96)) + 1j).astype(np.complex64))
    _raster(root / "nodata.tif", np.zeros((3, 64, 96), np.uint8), nodata=0)
    _raster(root / "one.tif", np.ones((1, 1, 1), np.uint8))
    for name, cols in (("holed.tif", 15), ("band.tif", 96)):  # nodata under the strokes
        data = rng.integers(1, 255, (3, 64, 96)).astype(np.uint8)
        data[:, 20:40, :cols] = 0  # the water stroke (cols 10-14), or both, in row 30
        _raster(root / name, data, nodata=0)
    _raster(root / "truth.tif", rng.integers(1, 4, (1, 256, 256)).astype(np.uint8))
    _raster(root / "shifted.tif", np.ones((1, 64, 96), np.uint8),
            transform=Affine(10, 0, 400500, 0, -10, 4150000))  # fmt: skip
    _raster(root / "nocrs.tif", rng.integers(1, 255, (3, 64, 96)).astype(np.uint8), crs=None)
    _raster(root / "othercrs.tif", rng.integers(1, 255, (3, 64, 96)).astype(np.uint8),
            crs="EPSG:32617")  # fmt: skip
    _raster(root / "dn.tif", rng.integers(0, 60000, (1, 64, 96)).astype(np.uint16))
    (root / "notes.tif").write_text("not a raster")
    (root / "labels.tif").write_bytes((root / "scene.tif").read_bytes())  # a scene so named
    _png(root / "picture.png")
    (root / "broken.tif").write_bytes((root / "scene.tif").read_bytes()[:3000])
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (root / "syntax.yaml").write_text("segment: [unclosed\n")
    (root / "unknown.yaml").write_text("segment:\n  nosuch: 1\n")
    (root / "empty_batch.yaml").write_text("scenes: []\n")
    (root / "bomb.yaml").write_text(f"segment: {{max_iterations: {bomb()}}}\n")
    (root / "bomb_scene.yaml").write_text(f"scenes: [{bomb()}]\n")
    (root / "bomb_set.yaml").write_text(f"scenes: [{{path: scene.tif, set: {bomb()}}}]\n")
    (root / "dir_number.yaml").write_text("scenes: [scene.tif]\noutput: {dir: 5}\n")
    (root / "clash.yaml").write_text(
        "scenes: [{path: scene.tif, set: ['output.dir=out/x']},"
        " {path: dn.tif, set: ['output.dir=out/../out/x']}]\n"
    )
    _strokes(root)
    (root / "afile").write_text("a file, not a folder")
    (root / "secret.tif").write_bytes((root / "scene.tif").read_bytes())
    (root / "secret.tif").chmod(0o000)
    (root / "ro").mkdir()
    for folder in (root / "ro", root / "prior_ro"):
        folder.chmod(0o555)
    return root


RUN = ["run", "scene.tif", "-o", "prior", "-q", *SET_FAST]
CASES: dict[str, tuple[list[str], int, str]] = {
    # outputs, before any work
    "outdir parent missing": (["run", "scene.tif", "-o", "nodir/out"], 1, "does not exist"),
    "outdir parent is a file": (["run", "scene.tif", "-o", "afile/out"], 1, "is a file"),
    "outdir is a file": (["run", "scene.tif", "-o", "afile"], 1, "not a folder"),
    "outdir in /proc": (["run", "scene.tif", "-o", "/proc/x"], 1, "cannot create"),
    "outdir not writable": (["run", "scene.tif", "-o", "ro"], 1, "not writable"),
    "complete run not writable": (["run", "scene.tif", "-o", "prior_ro"], 1, "not writable"),
    "vector folder missing": ([*RUN, "--vector", "nodir/s.gpkg"], 1, "does not exist"),
    "vector folder not writable": ([*RUN, "--vector", "ro/s.gpkg"], 1, "not writable"),
    "vector in /proc": ([*RUN, "--vector", "/proc/seg.gpkg"], 1, "/proc"),
    "vector format unknown": ([*RUN, "--vector", "s.xyz"], 1, "unknown format"),
    "to-crs without scene CRS": (
        ["run", "nocrs.tif", "-o", "prior", "--to-crs", "EPSG:4326"], 1, "no CRS"),
    "to-crs unknown": ([*RUN, "--to-crs", "EPSG:999999"], 1, "not a CRS"),
    "device cuda without CUDA": ([*RUN, "--device", "cuda"], 1, "runtime.device='cuda'"),
    "device unknown": ([*RUN, "--device", "tpu"], 1, "runtime.device"),
    # scenes
    "scene missing": (["run", "none.tif", "-o", "prior"], 1, "no such file"),
    "scene not a raster": (["run", "notes.tif", "-o", "prior"], 1, "notes.tif"),
    "scene truncated": (["run", "broken.tif", "-o", "prior", *SET_FAST], 1, "broken.tif"),
    "scene unreadable": (["run", "secret.tif", "-o", "prior"], 1, "permission denied"),
    "scene complex": (["run", "complex.tif", "-o", "prior"], 1, "complex"),
    "scene all nodata": (["run", "nodata.tif", "-o", "prior"], 1, "every pixel is nodata"),
    "bands twice": ([*RUN, "--bands", "1,1"], 1, "listed twice"),
    # scribbles
    "scribbles missing": ([*RUN, "--scribbles", "none.gpkg"], 1, "no such scribble file"),
    "scribbles not a vector file": ([*RUN, "--scribbles", "notes.tif"], 1, "not a vector layer"),
    "scribbles a raster": ([*RUN, "--scribbles", "scene.tif"], 1, "not a vector layer"),
    "scribbles off the scene": ([*RUN, "--scribbles", "far.gpkg"], 1, "no stroke lies on"),
    "scribbles one class": ([*RUN, "--scribbles", "one_class.gpkg"], 1, "only class 'water'"),
    "scribbles on nodata": (
        ["run", "band.tif", "-o", "prior", "--scribbles", "no_field.gpkg"], 1,
        "every scribbled pixel lies on the scene's nodata"),
    "scribbles one class on data": (
        ["run", "holed.tif", "-o", "prior", "--scribbles", "no_field.gpkg"], 1,
        "only class 'forest' is scribbled on the scene's data"),
    "scribbles empty layer": ([*RUN, "--scribbles", "empty.gpkg"], 1, "no features"),
    "scribbles field missing": (
        [*RUN, "--scribbles", "other_field.gpkg"], 1, "no field 'class'; its fields are ['kind']"),
    "scribbles in tile mode": (
        [*RUN, "--scribbles", "no_field.gpkg", "--mode", "tile"], 1, "needs segment.mode scene"),
    "band missing": ([*RUN, "--bands", "9"], 1, "do not exist"),
    # configuration
    "config binary": ([*RUN, "--config", "binary.yaml"], 1, "not a text file"),
    "config missing": ([*RUN, "--config", "none.yaml"], 1, "not found"),
    "config a folder": ([*RUN, "--config", "ro"], 1, "is a folder"),
    "config bad YAML": ([*RUN, "--config", "syntax.yaml"], 1, "syntax.yaml"),
    "config unknown key": ([*RUN, "--config", "unknown.yaml"], 1, "nosuch"),
    "set unknown key": ([*RUN, "--set", "segment.nosuch=1"], 1, "nosuch"),
    "overlap above tile": ([*RUN, "--set", "tiling.overlap=600"], 1, "tiling.overlap"),
    "preset unknown": ([*RUN, "--preset", "nope"], 1, "unknown preset"),
    "classes zero": ([*RUN, "--classes", "0"], 1, "n_classes"),
    "mode unknown": ([*RUN, "--mode", "bogus"], 1, "mode"),
    "snapshots not numbers": ([*RUN, "--snapshots", "a,b"], 2, "list of iterations"),
    "tile size not a number": ([*RUN, "--tile-size", "abc"], 2, "--tile-size"),
    "unknown option": ([*RUN, "--nosuch"], 2, "No such option"),
    "config validate binary": (["config", "validate", "binary.yaml"], 1, "not a text file"),
    "batch without scenes": (["batch", "empty_batch.yaml"], 1, "scenes"),
    "batch binary": (["batch", "binary.yaml"], 1, "not a text file"),
    "config YAML bomb": ([*RUN, "--config", "bomb.yaml"], 1, "repeat over 1,000,000"),
    "config validate YAML bomb": (["config", "validate", "bomb.yaml"], 1, "YAML bomb"),
    "batch YAML bomb scene": (["batch", "bomb_scene.yaml"], 1, "YAML bomb"),
    "batch YAML bomb set": (["batch", "bomb_set.yaml"], 1, "YAML bomb"),
    "set YAML bomb": ([*RUN, "--set", f"segment.lr={bomb()}"], 1, "YAML bomb"),
    "set 100 KB value": ([*RUN, "--set", f"segment.lr={'x' * 100_000}"], 1,
                         "'... (100000 characters): Input should be a valid number"),
    "output.dir format spec": (
        [*RUN, "--set", "output.dir=w{stem:>2000000000}"], 1, "only {stem} may be used"),
    "batch output.dir a number": (["batch", "dir_number.yaml"], 1, "output.dir=5: "),
    "config validate output.dir a number": (
        ["config", "validate", "dir_number.yaml"], 1, "output.dir=5: "),
    "seed beyond 32 bits": (
        [*RUN, "--seed", "1180591620717411303424"], 1, "less than or equal to 4294967295"),
    "batch outputs out/x and out/../out/x": (
        ["batch", "clash.yaml"], 1, "several scenes write into"),
    "plan missing scene": (["plan", "none.tif"], 1, "no such file"),
    # label rasters
    "vectorize negative ids": (["vectorize", "negative.tif", "-o", "v.gpkg"], 1, "negative"),
    "vectorize float ids": (["vectorize", "float.tif", "-o", "v.gpkg"], 1, "float32"),
    "vectorize a scene": (["vectorize", "scene.tif", "-o", "v.gpkg"], 1, "4 bands"),
    "vectorize missing": (["vectorize", "none.tif", "-o", "v.gpkg"], 1, "no such file"),
    "vectorize format unknown": (
        ["vectorize", "prior/labels.tif", "-o", "v.xyz"], 1, "unknown vector format"),
    "vectorize other grid": (
        ["vectorize", "shifted.tif", "--scene", "scene.tif", "-o", "v.gpkg"], 1, "grids"),
    "vectorize scene in another CRS": (
        ["vectorize", "prior/labels.tif", "--scene", "othercrs.tif", "-o", "v.gpkg"], 1,
        "different CRSs"),
    "run into the scene's own folder as labels.tif": (
        ["run", "labels.tif", "-o", "."], 1, "never written"),
    "segment onto its input": (["segment", "picture.png", "-o", "picture.png"], 1,
                               "never written"),
    "segment labels onto its input": (
        ["segment", "picture.png", "-o", "s.png", "--labels", "picture.png"], 1, "--labels"),
    "preseg onto its scene": (["preseg", "scene.tif", "-o", "scene.tif"], 1, "never written"),
    "vectorize labels onto the scene": (
        ["vectorize", "prior/labels.tif", "--scene", "scene.tif", "--labels-out", "scene.tif",
         "-o", "v.gpkg"], 1, "never written"),
    "reclass beyond the run's classes": (["reclass", "prior", "--classes", "99"], 1,
                                         "must lie in 1.."),
    "reclass a folder that is no run": (["reclass", "ro", "--classes", "2"], 1,
                                        "not a finished geoseg run"),
    "evaluate a DN image as labels": (
        ["evaluate", "dn.tif", "prior/labels.tif"], 1, "the label map has 5,"),
    "evaluate barely overlapping": (
        ["evaluate", "one.tif", "truth.tif", "--resample", "nearest"], 1, "barely overlap"),
    "evaluate other grid": (["evaluate", "shifted.tif", "prior/labels.tif"], 1, "differ"),
    "evaluate a scene": (["evaluate", "scene.tif", "prior/labels.tif"], 1, "4 bands"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_and_folder_unchanged(
    place: Path, in_process: InProcess, case: str
) -> None:
    args, status, says = CASES[case]
    if "without CUDA" in case:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    before = snapshot(place)
    result = in_process(args, place)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == status, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("geoseg: error: ")
    assert says in lines[0]
    assert snapshot(place) == before


DISK_FULL = r"""
import json, subprocess, sys
from pathlib import Path
root, size, extra_inodes = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
args = json.loads(sys.argv[4])
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], check=True)
scenes = Path(sys.argv[5])  # outside the tmpfs
def geoseg(*more):
    return subprocess.run([sys.executable, "-m", "geoseg", *more], cwd=root,
                          capture_output=True, text=True)
first = geoseg("run", str(scenes / "a.tif"), "-o", "out", *args)
assert first.returncode == 0, first.stderr
if extra_inodes:  # as many files as there are now, and a few more: tmpfs counts them
    used = 1 + sum(1 for _ in root.rglob("*"))
    subprocess.run(["mount", "-o", f"remount,nr_inodes={used + extra_inodes}", str(root)],
                   check=True)
def tree():
    return {str(p.relative_to(root)): p.read_bytes().hex() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}
before = tree()
failed = geoseg("run", str(scenes / "b.tif"), "-o", "out", *args)
print(json.dumps({"status": failed.returncode, "stderr": failed.stderr,
                  "unchanged": tree() == before}))
"""


@pytest.mark.parametrize(
    ("size", "extra_inodes", "says"),
    [
        ("1100k", 0, "no space left for this run"),  # known before the work
        ("16m", 3, "No space left on device"),  # files run out after training
    ],
    ids=["disk-short-before-work", "disk-full-after-training"],
)
@pytest.mark.slow  # a process of its own in a user namespace, two runs
def test_full_disk_leaves_the_previous_run(
    tmp_path: Path, size: str, extra_inodes: int, says: str
) -> None:
    """Scene A ran into ``out`` on a small tmpfs; scene B (larger) into the same ``out``
    fails for want of room: one line, and ``out`` still holds A's run exactly."""

    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces not allowed here: {probe.stderr.decode().strip()}")
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_scene(scenes / "a.tif", rows=64, cols=96, bands=4, seed=1)
    write_scene(scenes / "b.tif", rows=384, cols=384, bands=4, seed=2)
    mount = tmp_path / "mnt"
    mount.mkdir()
    command = ["unshare", "-Urm", sys.executable, "-c", DISK_FULL, str(mount), size,
               str(extra_inodes), json.dumps([*SET_FAST, "-q"]), str(scenes)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert result["status"] == 1, result["stderr"]
    assert len(lines) == 1, result["stderr"]
    assert lines[0].startswith("geoseg: error: ")
    assert says in lines[0]
    assert result["unchanged"]


# --- a run's folder is untrusted: it deletes nothing outside, runs no code from it ---


# --- inputs are never written ---


def _dn_raster(path: Path) -> None:
    """A one-band uint16 image of digital numbers: thousands of values (not labels)."""
    rng = np.random.default_rng(3)
    smooth = np.cumsum(np.cumsum(rng.integers(0, 9, (1, 64, 96)), axis=1), axis=2)
    _raster(path, (smooth % 60000).astype(np.uint16))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, in_process: InProcess) -> Path:
    """A scene, a DN image, a finished run's labels and a batch file: the inputs."""
    root = tmp_path_factory.mktemp("inputs")
    write_scene(root / "scene.tif", rows=64, cols=96, bands=4)
    _dn_raster(root / "dn1band.tif")
    done = in_process(["run", "scene.tif", "-o", "prior", "-q", *SET_FAST], root)
    assert done.returncode == 0, done.stderr
    shutil.move(root / "prior" / "labels.tif", root / "labels.tif")
    shutil.rmtree(root / "prior")
    (root / "batch.yaml").write_text(
        "scenes: [scene.tif]\noutput: {dir: 'b_{stem}'}\n"
        "tiling: {tile_size: 64, overlap: 32}\n"
        "segment: {n_crops: 6, crop_size: 64, max_iterations: 2}\n"
    )
    (root / "run.yaml").write_text("segment: {max_iterations: 2}\n")
    with rasterio.open(root / "scene.tif") as src:
        rgb = src.read([1, 2, 3])
    picture = (255 * (rgb - rgb.min()) / max(1, rgb.max() - rgb.min())).astype(np.uint8)
    from PIL import Image

    Image.fromarray(np.moveaxis(picture, 0, -1)).save(root / "scene.png")
    return root


COMMANDS: dict[str, list[str]] = {
    "run": ["run", "scene.tif", "-o", "out_run", "-q", *SET_FAST],
    "vectorize a DN image": ["vectorize", "dn1band.tif", "-o", "dn.gpkg", "-q"],
    "vectorize with the scene": [
        "vectorize", "labels.tif", "--scene", "scene.tif", "-o", "v.gpkg", "--min-area", "40",
        "--labels-out", "merged.tif", "-q"],
    "batch": ["batch", "batch.yaml", "-q"],
    "plan": ["plan", "scene.tif", "-c", "run.yaml", *SET_FAST[:-2]],
    "evaluate": ["evaluate", "labels.tif", "labels.tif", "--json"],
    "segment": ["segment", "scene.png", "-o", "seg.png", "--max-iterations", "2", "-q"],
    "preseg": ["preseg", "scene.tif", "-o", "preseg.png"],
    "config validate": ["config", "validate", "run.yaml"],
}  # fmt: skip


FAST_COMMANDS = ("vectorize a DN image", "vectorize with the scene", "segment")
"""Those of :data:`COMMANDS` in the default tier; the others (a run each) are slow."""


@pytest.mark.parametrize(
    "command",
    [c if c in FAST_COMMANDS else pytest.param(c, marks=pytest.mark.slow) for c in COMMANDS],
)
def test_every_command_leaves_its_inputs_byte_identical(
    inputs: Path, in_process: InProcess, command: str
) -> None:
    """Each command ends well, and every file that was there before is unchanged."""
    names = ["scene.tif", "dn1band.tif", "labels.tif", "batch.yaml", "run.yaml", "scene.png"]
    before = {name: hashlib.sha256((inputs / name).read_bytes()).hexdigest() for name in names}
    result = in_process(COMMANDS[command], inputs)
    assert result.returncode == 0, result.stderr
    after = {name: hashlib.sha256((inputs / name).read_bytes()).hexdigest() for name in names}
    assert after == before


def test_vectorize_keeps_the_ids_of_labels_it_does_not_rewrite(
    in_process: InProcess, tmp_path: Path
) -> None:
    """The issue's case: a one-band uint16 DN image, small regions merged. The image is
    only read, and the polygons carry its own values (not 1..K renumbered)."""
    import pyogrio

    _dn_raster(tmp_path / "dn1band.tif")
    before = (tmp_path / "dn1band.tif").read_bytes()
    done = in_process(["vectorize", "dn1band.tif", "-o", "dn.gpkg", "--min-area", "8"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dn1band.tif").read_bytes() == before
    table = pyogrio.read_dataframe(tmp_path / "dn.gpkg", layer="segments", read_geometry=False)
    with rasterio.open(tmp_path / "dn1band.tif") as src:
        values = set(np.unique(src.read(1)).tolist())
    ids = set(table["class_id"].tolist())
    assert ids <= values
    assert ids != set(range(1, len(ids) + 1))  # not renumbered 1..K
    same = in_process(["vectorize", "dn1band.tif", "-o", "x.gpkg", "--labels-out", "dn1band.tif"],
                      tmp_path)  # fmt: skip
    one_error(same, 1, "never written")
    assert (tmp_path / "dn1band.tif").read_bytes() == before


def test_a_read_only_run_is_cut_into_another_folder(
    place: Path, in_process: InProcess, tmp_path: Path
) -> None:
    """``geoseg reclass`` only reads the run: an archive the user cannot write is cut
    into a folder of theirs, and stays byte-identical."""
    before = snapshot(place / "prior_ro")
    done = in_process(["reclass", "prior_ro", "--classes", "1", "-o", str(tmp_path / "one")], place)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "one" / "labels.tif").exists()
    assert snapshot(place / "prior_ro") == before


# --- one writer per folder ---


def test_a_second_run_into_a_busy_folder_fails_at_once(place: Path, in_process: InProcess) -> None:
    """Another process holds OUTDIR's lock: the run fails with one line naming it, and
    the folder (a complete run) is byte-identical. Once the holder is gone, its
    leftover lock file is taken over."""
    from geoseg.run.folder import LOCK, OutdirLock

    before = snapshot(place)
    lock = OutdirLock.acquire(place / "prior")
    try:
        held = snapshot(place)
        busy = in_process(RUN, place)
        one_error(busy, 1, f"another geoseg run (pid {os.getpid()} on")
        assert snapshot(place) == held
    finally:
        lock.release()
    assert snapshot(place) == before
    (place / "prior" / LOCK).write_text("999999999 gone-host\n")  # a dead run's file
    try:
        again = in_process(RUN, place)  # the same settings: completes anew
        assert again.returncode == 0, again.stderr
        assert not (place / "prior" / LOCK).exists()
    finally:
        (place / "prior" / LOCK).unlink(missing_ok=True)


# --- the network: every wait bounded, Ctrl-C ends the command within a second ---

SHORT_WAITS = ("runtime.gdal_options={GDAL_HTTP_CONNECTTIMEOUT: '2', GDAL_HTTP_LOW_SPEED_TIME: "
               "'2', GDAL_HTTP_MAX_RETRY: '1', GDAL_HTTP_RETRY_DELAY: '0.5'}")  # fmt: skip
"""Timeouts of a few seconds, so that the cases of a server that stops answering end
soon (geoseg's own are 10 s to connect, 30 s without a byte)."""


def _stac_item(path: Path, assets: dict[str, str]) -> None:
    """A minimal STAC item whose assets have these hrefs."""

    item = {"type": "Feature", "stac_version": "1.0.0", "id": path.stem, "geometry": None,
            "properties": {"datetime": "2016-01-12T00:00:00Z"}, "links": [],
            "assets": {key: {"href": href} for key, href in assets.items()}}  # fmt: skip
    path.write_text(json.dumps(item))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RangeServer, Path]]:
    """A folder served on 127.0.0.1 (``tests/range_server.py``, which hangs under
    ``/hang/`` and stalls under ``/stall/``): a tiled scene, its first half, STAC
    items."""
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(0)
    _raster(root / "scene.tif", rng.integers(0, 255, (3, 512, 512)).astype(np.uint8),
            tiled=True, blockxsize=256, blockysize=256)  # fmt: skip
    data = (root / "scene.tif").read_bytes()
    (root / "truncated.tif").write_bytes(data[: len(data) // 2])
    _stac_item(root / "noassets.json", {})
    for name in ("band one", "band two"):
        _raster(root / f"{name}.tif", rng.integers(0, 255, (1, 96, 128)).astype(np.uint8))
    hrefs = {"B1": (root / "band one.tif").as_uri(), "B2": (root / "band two.tif").as_uri()}
    _stac_item(root / "fileitem.json", hrefs)
    with serve(root) as server:
        yield server, root


NET_CASES: dict[str, tuple[str, str]] = {
    "url that never answers": ("{url}/hang/scene.tif", "did not answer in time"),
    "url that stops sending": ("{url}/stall/scene.tif", "the read stopped short"),
    "url truncated": ("{url}/truncated.tif", "the read stopped short (TIFFReadEncodedTile"),
    "stac item that never answers": ("{url}/hang/item.json", "did not answer in time"),
    "stac item without assets": ("{url}/noassets.json", "the STAC item has no assets"),
    "stac item without assets, local": ("noassets.json", "the STAC item has no assets"),
}  # fmt: skip


@pytest.mark.parametrize(
    "case",
    # a stalled body ends ~6 s after the read timeout (curl averages its speed): slow tier
    [pytest.param(c, marks=pytest.mark.slow) if "stops" in c else c for c in NET_CASES],
)
def test_network_cases_end_soon_in_one_line(
    served: tuple[RangeServer, Path], in_process: InProcess, case: str
) -> None:
    """Each ends with one line that says what happened (GDAL's own words, not "see
    previous exception"), within the short timeouts and the command's start, and the
    folder (the served files) is unchanged."""
    server, root = served
    scene, says = NET_CASES[case]
    before = snapshot(root)
    start = time.monotonic()
    # The stalled body gets a process of its own: the long-lived child would keep the
    # stalled connection in curl's cache.
    command = geoseg if "stops" in case else in_process
    result = command(["run", scene.format(url=server.url), "-o", "out", "-q", *SET_FAST,
                      "--set", SHORT_WAITS], root)  # fmt: skip
    one_error(result, 1, says)
    assert time.monotonic() - start < 30
    assert "previous exception" not in result.stderr
    assert snapshot(root) == before


def test_a_timeout_that_is_not_a_number_is_refused(
    served: tuple[RangeServer, Path], in_process: InProcess
) -> None:
    """GDAL would read ``soon`` as 0: no timeout at all."""
    server, root = served
    before = snapshot(root)
    bad = "runtime.gdal_options={GDAL_HTTP_LOW_SPEED_TIME: soon}"
    result = in_process(["run", f"{server.url}/scene.tif", "-o", "out", "--set", bad], root)
    one_error(result, 1, "runtime.gdal_options GDAL_HTTP_LOW_SPEED_TIME='soon'")
    assert snapshot(root) == before


def test_stac_hrefs_as_file_urls_are_read(
    served: tuple[RangeServer, Path], in_process: InProcess, tmp_path: Path
) -> None:
    """``file:///.../band%20one.tif`` names a local file (it failed as a truncated one)."""
    _, root = served
    args = ["run", str(root / "fileitem.json"), "-o", "out", "-q", *SET_FAST,
            "--set", "input.assets=[B1, B2]"]  # fmt: skip
    result = in_process(args, tmp_path)
    assert result.returncode == 0, result.stderr
    with rasterio.open(tmp_path / "out" / "labels.tif") as labels:
        assert (labels.width, labels.height) == (128, 96)


def _interrupt(args: list[str], cwd: Path, ready: Callable[[], bool]) -> tuple[float, int, str]:
    """Start ``geoseg ARGS``, send it SIGINT once ``ready()``: the seconds it took to end
    after that, its exit status and its stderr."""
    command = [sys.executable, "-m", "geoseg", *args]
    proc = subprocess.Popen(command, cwd=cwd, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None:
            raise AssertionError(f"it ended before it could be interrupted: {proc.stderr.read()}")
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        seconds = time.monotonic() - start
    finally:
        proc.kill()
        _, stderr = proc.communicate()
    return seconds, proc.returncode, stderr


@pytest.mark.slow  # a process of its own, to interrupt
def test_ctrl_c_ends_a_read_that_hangs_within_a_second(served: tuple[RangeServer, Path]) -> None:
    """The issue's case: a server that takes the request and never answers, with
    geoseg's own timeouts (30 s). Ctrl-C ends the command at once with one line; the
    folder is unchanged."""
    server, root = served
    before = snapshot(root)
    args = ["run", f"{server.url}/hang/scene.tif", "-o", "out", "-q"]
    begun = server.stalls
    seconds, status, stderr = _interrupt(args, root, lambda: server.stalls > begun)
    assert status == 130, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["geoseg: interrupted"]
    assert seconds < 1.5
    assert snapshot(root) == before


@pytest.mark.slow
def test_ctrl_c_in_a_stalled_read_leaves_a_folder_the_next_run_takes(
    served: tuple[RangeServer, Path], tmp_path: Path
) -> None:
    """The run has its folder and waits in GDAL for a server that stopped sending (no
    Python runs there): Ctrl-C ends it within a second all the same, leaving what an
    interrupted run leaves (the work folder, no record), and the next run completes."""
    server, _ = served
    out = tmp_path / "out"
    args = ["run", f"{server.url}/stall/scene.tif", "-o", str(out), "-q", *SET_FAST]
    begun = server.stalls
    seconds, status, stderr = _interrupt(args, tmp_path, lambda: server.stalls > begun)
    assert status == 130, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["geoseg: interrupted"]
    assert seconds < 1.5
    assert (out / ".geoseg-run").is_dir()
    assert not (out / "run.yaml").exists()
    again = geoseg(["run", f"{server.url}/scene.tif", "-o", str(out), "-q", *SET_FAST], tmp_path)
    assert again.returncode == 0, again.stderr
    assert (out / "run.yaml").exists()
    assert not (out / ".geoseg-run").exists()


@pytest.mark.slow
def test_ctrl_c_in_training_keeps_the_work_folder_and_the_next_run_resumes(
    tmp_path: Path,
) -> None:
    """Tile mode (each tile trains): Ctrl-C once some tiles are done ends the run
    within a second; the work folder keeps them and the next run resumes from them."""
    import yaml

    write_scene(tmp_path / "c.tif", rows=192, cols=256, bands=4, seed=4)
    args = ["run", "c.tif", "-o", "out", "-q", "--set", "segment.mode=tile",
            "--set", "segment.max_iterations=8", "--set", "tiling.tile_size=64",
            "--set", "tiling.overlap=32"]  # fmt: skip
    tiles = tmp_path / "out" / ".geoseg-run" / "scratch"
    seconds, status, stderr = _interrupt(
        args, tmp_path, lambda: len(list(tiles.glob("*/tile_*.npz"))) >= 2
    )
    assert status == 130, stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["geoseg: interrupted"]
    assert seconds < 1.5
    done = len(list(tiles.glob("*/tile_*.npz")))
    assert done >= 2
    assert not (tmp_path / "out" / "run.yaml").exists()
    again = geoseg(args, tmp_path)
    assert again.returncode == 0, again.stderr
    record = yaml.safe_load((tmp_path / "out" / "run.yaml").read_text())
    assert record["tiles"]["resumed"] >= done
