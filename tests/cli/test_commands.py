from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from typer.testing import CliRunner

from geoseg.cli import app
from geoseg.evaluate import adjusted_rand_index

runner = CliRunner()


@pytest.fixture
def sample_tif(tmp_path: Path) -> tuple[Path, Path]:
    scene, truth = tmp_path / "scene.tif", tmp_path / "truth.tif"
    result = runner.invoke(
        app,
        [
            "sample",
            str(scene),
            "--truth",
            str(truth),
            "--rows",
            "64",
            "--cols",
            "80",
            "--classes",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    return scene, truth


def test_sample_writes_georeferenced_uint16(sample_tif: tuple[Path, Path]) -> None:
    scene, truth = sample_tif
    with rasterio.open(scene) as src:
        assert (src.count, src.height, src.width, src.dtypes[0]) == (4, 64, 80, "uint16")
        assert src.crs.to_epsg() == 32618
        assert src.transform.a == 10.0
    with rasterio.open(truth) as src:
        assert set(np.unique(src.read(1))) == {1, 2, 3}


def test_segment_writes_rendering_and_labels(sample_tif: tuple[Path, Path], tmp_path: Path) -> None:
    scene, truth = sample_tif
    out, labels = tmp_path / "render.png", tmp_path / "labels.tif"
    # on this 64x80 picture the network splits one of the 3 classes: --classes joins it
    args = ["segment", str(scene), "-o", str(out), "--labels", str(labels), "--classes", "3"]
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as picture:
        assert picture.size == (80, 64)
        assert picture.mode == "RGB"
    with rasterio.open(labels) as got, rasterio.open(truth) as ref:
        assert got.crs == ref.crs
        assert got.transform == ref.transform
        pred = got.read(1)
        assert pred.min() >= 1  # 1..K, 0 reserved for nodata
        assert pred.max() == 3
        assert adjusted_rand_index(pred, ref.read(1)) >= 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "labels.tif",
        "render.png",
        "scene.tif",
        "truth.tif",
    ]


def test_segment_mean_colour_is_constant_per_label(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = np.zeros((30, 40, 3), np.uint8)
    rgb[:, 20:] = (200, 40, 40)
    rgb = np.clip(rgb.astype(int) + rng.integers(-10, 10, rgb.shape), 0, 255).astype(np.uint8)
    photo = tmp_path / "photo.png"
    Image.fromarray(rgb).save(photo)
    out, labels = tmp_path / "out.png", tmp_path / "labels.png"
    result = runner.invoke(
        app,
        [
            "segment",
            str(photo),
            "-o",
            str(out),
            "--labels",
            str(labels),
            "--preset",
            "fork",
            "--seed",
            "3",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    painted = np.asarray(Image.open(out)).reshape(-1, 3)
    ids = np.asarray(Image.open(labels)).ravel()
    for label in np.unique(ids):
        assert len(np.unique(painted[ids == label], axis=0)) == 1
        mean = rgb.reshape(-1, 3)[ids == label].mean(0)
        np.testing.assert_allclose(painted[ids == label][0], mean, atol=1.0)


def test_unknown_preset_lists_choices(sample_tif: tuple[Path, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["segment", str(sample_tif[0]), "-o", str(tmp_path / "x.png"), "--preset", "nope"]
    )
    assert result.exit_code == 1
    assert "unknown preset 'nope'; choose one of: default, fork, kanezaki2018, tip2020" in (
        result.output
    )
    assert not (tmp_path / "x.png").exists()


def test_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["segment", str(tmp_path / "none.jpg"), "-o", "x.png"])
    assert result.exit_code == 1
    assert "none.jpg: no such file" in result.output


def test_not_an_image(tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_text("not a picture")
    result = runner.invoke(app, ["segment", str(fake), "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 1
    assert "notes.png: cannot be read as an image" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.png"]


def test_truncated_file(sample_tif: tuple[Path, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_bytes(sample_tif[0].read_bytes()[:2000])
    result = runner.invoke(app, ["segment", str(broken), "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 1
    assert "broken.tif: cannot be read as an image" in result.output
    assert not (tmp_path / "out.png").exists()


def test_output_directory_missing(sample_tif: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "out.png"
    result = runner.invoke(
        app, ["segment", str(sample_tif[0]), "-o", str(out), "--max-iterations", "2", "-q"]
    )
    assert result.exit_code == 1
    assert "output directory does not exist" in result.output


def test_bad_parameter_value(sample_tif: tuple[Path, Path], tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["segment", str(sample_tif[0]), "-o", str(tmp_path / "o.png"), "--max-iterations", "0"],
    )
    assert result.exit_code == 1
    assert "segment.max_iterations=0 must be > 0" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("geoseg ")


def test_bad_output_extension_fails_before_work(
    sample_tif: tuple[Path, Path], tmp_path: Path
) -> None:
    result = runner.invoke(
        app,
        [
            "segment",
            str(sample_tif[0]),
            "-o",
            str(tmp_path / "o.png"),
            "--labels",
            str(tmp_path / "l.jpg"),
        ],
    )
    assert result.exit_code == 1
    assert "l.jpg: unsupported extension '.jpg'; use one of .tif, .tiff, .png" in result.output
    assert not (tmp_path / "o.png").exists()


def test_segment_snapshots_write_one_frame_each(
    sample_tif: tuple[Path, Path], tmp_path: Path
) -> None:
    out, gif = tmp_path / "render.png", tmp_path / "anim.gif"
    steps = "1,2,4,8,16,32,64,128"
    result = runner.invoke(
        app,
        ["segment", str(sample_tif[0]), "-o", str(out), "--snapshots", steps, "--gif", str(gif)],
    )
    assert result.exit_code == 0, result.output
    with Image.open(gif) as animation:
        assert animation.n_frames == 8
        assert animation.info["loop"] == 0
    bad = runner.invoke(app, ["segment", str(sample_tif[0]), "-o", str(out), "--snapshots", "0,2"])
    assert bad.exit_code == 1
    assert "snapshots [0, 2] must be iterations >= 1" in bad.output


def test_run_progress_names_every_stage_when_not_a_terminal(
    sample_tif: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a terminal a run writes plain heartbeat lines (here one per call, as
    ``GEOSEG_HEARTBEAT_S=0`` asks)."""
    monkeypatch.setenv("GEOSEG_HEARTBEAT_S", "0")
    fast = ["--set", "segment.crop_size=32", "--set", "tiling.tile_size=64"]
    args = ["run", str(sample_tif[0]), "-o", str(tmp_path / "out"), "--max-iterations", "2"]
    result = runner.invoke(app, [*args, *fast])
    assert result.exit_code == 0, result.output
    stages = {line.split()[1] for line in result.output.splitlines() if line.startswith("geoseg: ")}
    assert stages == {"train", "predict", "vectorize", "report"}
    assert "geoseg: train 2/2" in result.output


def test_segment_of_a_coarse_geotiff_runs_without_texture_bands(
    sample_tif: tuple[Path, Path], tmp_path: Path
) -> None:
    """A 10 m GeoTIFF is segmented as `geoseg run` would: colour only (the texture bands
    are for pixels of 5 m or less); the same picture with texture gives other labels."""
    from geoseg.io.raster_read import read_image
    from geoseg.normalize import auto_scale
    from geoseg.picture import segment_picture
    from geoseg.segment import PRESETS, segment_image

    params = PRESETS["default"].replace(max_iterations=4)
    segment_picture(sample_tif[0], tmp_path / "r.png", params, labels=tmp_path / "l.tif", seed=0)
    with rasterio.open(tmp_path / "l.tif") as src:
        got = src.read(1)
    data = read_image(sample_tif[0])
    scaled = auto_scale(data.data, data.valid)
    colour = segment_image(scaled, params.replace(texture_radius=0), valid=data.valid, seed=0)
    textured = segment_image(scaled, params, valid=data.valid, seed=0)
    assert adjusted_rand_index(got, colour.labels) == 1.0  # the same partition
    assert adjusted_rand_index(got, textured.labels) < 1.0


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        # geoseg vectorize: no network, so no PyTorch (2-3 s of start-up)
        ("geoseg.run.products", ("torch", "sklearn")),
        # geoseg run: scikit-learn only for --classes splits, scipy.optimize only for scores
        ("geoseg.run.scene, geoseg.report", ("sklearn", "scipy.optimize")),
    ],
)
def test_commands_import_only_what_they_use(modules: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {modules}; print(*[m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []
