"""Bad inputs and unwritable outputs, as a user meets them: the ``geoseg`` command in a
subprocess. Every case must end with its exit status, exactly one ``geoseg: error:``
line on stderr (no traceback, no GDAL or Python warning), and the folder unchanged: a
prior complete run byte-identical, and nothing created.

Permission cases run with the capabilities that let root ignore file permissions dropped
(``setpriv``), so they test what a user sees; a full disk is a real small tmpfs mounted
in a user namespace (``unshare``), skipped where the machine does not allow it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from tests.conftest import FAST, write_scene

SET_FAST = [arg for line in FAST for arg in ("--set", line)] + ["--max-iterations", "2"]
DROP_CAPS = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def geoseg(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``geoseg ARGS`` as a user runs it (as root: without the capability to ignore file
    permissions)."""
    command = [sys.executable, "-m", "geoseg", *args]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        command = [*DROP_CAPS, *command]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: its path and, for a file, its content hash."""
    tree = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        tree[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return tree


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


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a scene, a complete run of it in ``prior/`` and bad inputs."""
    root = tmp_path_factory.mktemp("bad")
    write_scene(root / "scene.tif", rows=64, cols=96, bands=4)
    done = geoseg(["run", "scene.tif", "-o", "prior", "-q", *SET_FAST], root)
    assert done.returncode == 0, done.stderr
    shutil.copytree(root / "prior", root / "prior_ro")
    rng = np.random.default_rng(0)
    ids = rng.integers(-3, 5, (1, 64, 96))
    _raster(root / "negative.tif", ids.astype(np.int16))
    _raster(root / "float.tif", ids.astype(np.float32))
    _raster(root / "complex.tif", (rng.random((1, 64, 96)) + 1j).astype(np.complex64))
    _raster(root / "nodata.tif", np.zeros((3, 64, 96), np.uint8), nodata=0)
    _raster(root / "one.tif", np.ones((1, 1, 1), np.uint8))
    _raster(root / "truth.tif", rng.integers(1, 4, (1, 256, 256)).astype(np.uint8))
    _raster(root / "shifted.tif", np.ones((1, 64, 96), np.uint8),
            transform=Affine(10, 0, 400500, 0, -10, 4150000))  # fmt: skip
    _raster(root / "nocrs.tif", rng.integers(1, 255, (3, 64, 96)).astype(np.uint8), crs=None)
    (root / "notes.tif").write_text("not a raster")
    (root / "broken.tif").write_bytes((root / "scene.tif").read_bytes()[:3000])
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (root / "syntax.yaml").write_text("segment: [unclosed\n")
    (root / "unknown.yaml").write_text("segment:\n  nosuch: 1\n")
    (root / "empty_batch.yaml").write_text("scenes: []\n")
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
    "evaluate barely overlapping": (
        ["evaluate", "one.tif", "truth.tif", "--resample", "nearest"], 1, "barely overlap"),
    "evaluate other grid": (["evaluate", "shifted.tif", "prior/labels.tif"], 1, "differ"),
    "evaluate a scene": (["evaluate", "scene.tif", "prior/labels.tif"], 1, "4 bands"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_and_folder_unchanged(place: Path, case: str) -> None:
    args, status, says = CASES[case]
    if "without CUDA" in case:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    before = snapshot(place)
    result = geoseg(args, place)
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
def test_full_disk_leaves_the_previous_run(
    tmp_path: Path, size: str, extra_inodes: int, says: str
) -> None:
    """Scene A ran into ``out`` on a small tmpfs; scene B (larger) into the same ``out``
    fails for want of room: one line, and ``out`` still holds A's run exactly."""
    import json

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
