from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.segmentation import felzenszwalb, slic
from typer.testing import CliRunner

from geoseg.cli import app
from geoseg.errors import ConfigError, InputError
from geoseg.explore import (
    GUTTER,
    Sweep,
    assemble_sheet,
    caption_height,
    caption_lines,
    centred_window,
    draw_boundaries,
    draw_caption,
    parse_vary,
    parse_window,
    superpixel_sheet,
)
from geoseg.sample import make_scene
from geoseg.segment.params import PRESETS, SegmentParams
from geoseg.segment.superpixels import compute_superpixels
from tests.helpers import write_scene

runner = CliRunner()
FZ = PRESETS["default"].replace(superpixels="felzenszwalb", fz_min_size=4)
SLIC = PRESETS["default"].replace(superpixels="slic", slic_n_segments=50)


@pytest.fixture
def image() -> np.ndarray:
    """(3, 40, 240) sample scene in [0, 1]: wide enough for one-line captions."""
    return make_scene(rows=40, cols=240, bands=3, n_classes=3, seed=0)[0]


# --- parameters --------------------------------------------------------------------------


def test_parse_vary_short_and_field_names() -> None:
    assert parse_vary("compactness=100,1000", method="slic") == Sweep(
        "compactness", "slic_compactness", (100.0, 1000.0)
    )
    assert parse_vary("fz_sigma = 0.5, 1", method="felzenszwalb") == Sweep(
        "fz_sigma", "fz_sigma", (0.5, 1.0)
    )
    sweep = parse_vary("min_size=10,1e2", method="felzenszwalb")
    assert sweep.field == "fz_min_size"
    assert sweep.values == (10, 100)
    assert all(isinstance(v, int) for v in sweep.values)
    assert sweep.label(100) == "min_size=100"
    assert Sweep("sigma", "fz_sigma", (0.5,)).label(0.5) == "sigma=0.5"


@pytest.mark.parametrize(
    ("text", "method", "message"),
    [
        ("compactness", "slic", r"must read name=value,value,\.\.\., e\.g\. --vary n_segments="),
        ("compactness=", "slic", "must read name=value"),
        ("=1,2", "slic", "must read name=value"),
        ("compactness=1,abc", "slic", "'abc' is not a number"),
        ("compactness=1,nan", "slic", "'nan' is not a finite number"),
        ("n_segments=1.5", "slic", "n_segments takes whole numbers"),
        ("compactness=-1", "slic", "segment.slic_compactness=-1.0 must be >= 0"),
        (
            "sigma=1",
            "slic",
            "'sigma' is a felzenszwalb parameter; slic takes n_segments, compactness "
            r"\(or slic_n_segments, slic_compactness\)",
        ),
        (
            "compactness=100,1000",
            "felzenszwalb",
            "'compactness' is a slic parameter; felzenszwalb takes scale, sigma, min_size",
        ),
        ("colour=1", "slic", "'colour' is not a parameter that can vary; slic takes"),
        ("scale=1", "watershed", "unknown superpixel method 'watershed'; choose one of: slic"),
    ],
)
def test_parse_vary_errors(text: str, method: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_vary(text, method=method)


def test_windows() -> None:
    assert centred_window(1000, 2000) == (744, 244, 512, 512)
    assert centred_window(40, 30) == (0, 0, 30, 40)
    assert parse_window("0,0,30,40", height=40, width=30) == (0, 0, 30, 40)
    with pytest.raises(ConfigError, match=r"not inside the scene of 30 columns x 40 rows"):
        parse_window("1,0,30,40", height=40, width=30)
    with pytest.raises(ConfigError, match="four whole numbers"):
        parse_window("1,2,3", height=40, width=30)
    with pytest.raises(ConfigError, match="width and height must be >= 1"):
        parse_window("0,0,0,5", height=40, width=30)


# --- drawing -----------------------------------------------------------------------------


def test_caption_lines_and_strip() -> None:
    text = "scale=100  sigma=0.5  842 superpixels"
    assert caption_lines(text, 1000) == [text]
    assert caption_lines(text, 60) == ["scale=100", "sigma=0.5", "842 superpixels"]
    assert caption_height(3) - caption_height(2) == caption_height(2) - caption_height(1) > 8
    strip = draw_caption(["x=1"], 50)
    assert strip.shape == (3, caption_height(1), 50)
    assert strip.dtype == np.uint8
    assert strip.min(axis=0).max() > 200  # white text on the dark strip
    assert (strip[:, :, -5:] < 50).all()  # nothing drawn past the text


def test_draw_boundaries_known_answer() -> None:
    ids = np.array([[-1, 0, 0, 1, 1, 1]] * 3)
    display = np.full((3, 3, 6), 0.5)
    out = draw_boundaries(display, ids, colour=(255, 0, 255))
    assert out.shape == (3, 3, 6)
    assert out.dtype == np.uint8
    assert (out[:, :, 0] == 0).all()  # nodata black, its edge no boundary
    edge = (out == np.array([255, 0, 255], np.uint8)[:, None, None]).all(axis=0)
    assert edge.sum(axis=0).tolist() == [0, 0, 0, 3, 0, 0]  # one pixel wide
    assert (out[:, :, [1, 2, 4, 5]] == 128).all()
    assert (display == 0.5).all()  # input untouched


def test_assemble_sheet_places_cells_in_rows() -> None:
    cells = [np.full((3, 4, 5), k, np.uint8) for k in range(5)]
    sheet = assemble_sheet(cells, columns=3)
    assert sheet.shape == (3, 2 * 4 + GUTTER, 3 * 5 + 2 * GUTTER)
    assert sheet[0, 0, 0] == 0
    assert sheet[0, 0, 5 + GUTTER] == 1
    assert sheet[0, 4 + GUTTER, 5 + GUTTER] == 4
    assert (sheet[:, 4 : 4 + GUTTER] == 255).all()  # gutter
    assert (sheet[:, 4 + GUTTER :, 2 * (5 + GUTTER) :] == 255).all()  # no sixth cell
    with pytest.raises(InputError, match="one size"):
        assemble_sheet([cells[0], np.zeros((3, 4, 6), np.uint8)], columns=2)


# --- contact sheets ----------------------------------------------------------------------


def test_sheet_one_parameter(image: np.ndarray) -> None:
    sweep = parse_vary("scale=1,100,10000", method="felzenszwalb")
    sheet = superpixel_sheet(image, [sweep], base=FZ)
    _, h, w = image.shape
    assert sheet.grid == (1, 3)
    assert sheet.caption_height == caption_height(1)
    assert sheet.image.shape == (3, h + caption_height(1), 3 * w + 2 * GUTTER)
    assert sheet.image.dtype == np.uint8
    for value, count, caption, params in zip(
        ("1", "100", "10000"), sheet.counts, sheet.captions, sheet.params, strict=True
    ):
        assert caption == f"scale={value}  {count} superpixels"
        assert params.fz_scale == float(value)
        # An independent scikit-image call finds as many superpixels.
        raw = felzenszwalb(
            np.moveaxis(image, 0, -1).astype(np.float64),
            scale=params.fz_scale,
            sigma=params.fz_sigma,
            min_size=params.fz_min_size,
            channel_axis=-1,
        )
        assert count == np.unique(raw).size
    # Felzenszwalb's scale is its threshold: a larger scale merges more.
    assert sheet.counts[0] > sheet.counts[1] > sheet.counts[2] >= 1
    # The cell under its caption is the picture with the boundaries drawn.
    cell = sheet.image[:, caption_height(1) :, w + GUTTER : 2 * w + GUTTER]
    ids = compute_superpixels(image, sheet.params[1])
    np.testing.assert_array_equal(cell, draw_boundaries(image, ids))


def test_sheet_two_parameters_grid(image: np.ndarray) -> None:
    sweeps = [
        parse_vary("n_segments=10,40,160", method="slic"),
        parse_vary("compactness=10,100", method="slic"),
    ]
    sheet = superpixel_sheet(image, sweeps, base=SLIC)
    _, h, w = image.shape
    lines = max(len(caption_lines(caption, w)) for caption in sheet.captions)
    assert sheet.caption_height == caption_height(lines)
    assert sheet.grid == (2, 3)
    assert sheet.image.shape == (
        3,
        2 * (caption_height(lines) + h) + GUTTER,
        3 * w + 2 * GUTTER,
    )
    # First parameter along the columns, second along the rows.
    expected = [(n, c) for c in (10.0, 100.0) for n in (10, 40, 160)]
    assert [(p.slic_n_segments, p.slic_compactness) for p in sheet.params] == expected
    for (n, c), caption, count in zip(expected, sheet.captions, sheet.counts, strict=True):
        assert caption == f"n_segments={n}  compactness={c:g}  {count} superpixels"
        raw = slic(
            np.moveaxis(image, 0, -1).astype(np.float64),
            n_segments=n,
            compactness=c,
            convert2lab=True,
            start_label=1,
            channel_axis=-1,
        )
        assert count == np.unique(raw).size
    # More requested segments, more superpixels (at either compactness).
    for row in (sheet.counts[:3], sheet.counts[3:]):
        assert row[0] < row[1] < row[2]


def test_sheet_without_sweep_is_one_cell(image: np.ndarray) -> None:
    sheet = superpixel_sheet(image, [], base=FZ)
    assert sheet.grid == (1, 1)
    assert sheet.captions == (f"{sheet.counts[0]} superpixels",)
    assert sheet.image.shape == (3, 40 + caption_height(1), 240)


def test_sheet_nodata_is_black_and_not_counted(image: np.ndarray) -> None:
    valid = np.ones(image.shape[1:], bool)
    valid[:, :60] = False
    sweep = parse_vary("scale=50", method="felzenszwalb")
    sheet = superpixel_sheet(image, [sweep], base=FZ, valid=valid)
    ids = compute_superpixels(image, sheet.params[0], valid=valid)
    assert sheet.counts == (np.unique(ids[valid]).size,)
    assert (sheet.image[:, caption_height(1) :, :60] == 0).all()


def test_sheet_rejects_bad_sweeps(image: np.ndarray) -> None:
    scale = parse_vary("scale=1", method="felzenszwalb")
    with pytest.raises(ConfigError, match="scale is not a slic parameter; choose from"):
        superpixel_sheet(image, [scale], base=SLIC)
    with pytest.raises(ConfigError, match="scale is varied twice"):
        superpixel_sheet(image, [scale, scale], base=FZ)
    with pytest.raises(ConfigError, match="at most two parameters"):
        superpixel_sheet(image, [scale] * 3, base=FZ)
    with pytest.raises(ConfigError, match="unknown superpixel method 'none'"):
        superpixel_sheet(image, [], base=SegmentParams(superpixels="none"))


# --- command line ------------------------------------------------------------------------


def _scene(path: Path, rows: int, cols: int) -> Path:
    return write_scene(path, rows=rows, cols=cols, bands=4, seed=2)[0]


@pytest.fixture
def scene_tif(tmp_path: Path) -> Path:
    return _scene(tmp_path / "scene.tif", 48, 340)


def test_cli_one_parameter(scene_tif: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    args = ["preseg", str(scene_tif), "--vary", "scale=10,100,1000", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 cells" in result.output
    with Image.open(out) as sheet:
        assert sheet.size == (3 * 340 + 2 * GUTTER, 48 + caption_height(1))
        assert sheet.mode == "RGB"


def test_cli_grid_window_and_bands(scene_tif: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    result = runner.invoke(
        app,
        [
            "preseg",
            str(scene_tif),
            "--method",
            "slic",
            "--vary",
            "compactness=1,10",
            "--vary",
            "n_segments=20,80",
            "--window",
            "10,4,320,40",
            "--bands",
            "3,2,1",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as sheet:
        assert sheet.size == (2 * 320 + GUTTER, 2 * (40 + caption_height(1)) + GUTTER)


def test_cli_two_bands_show_as_grey(scene_tif: Path, tmp_path: Path) -> None:
    out = tmp_path / "grey.png"
    args = ["preseg", str(scene_tif), "--bands", "2,1", "--vary", "scale=1e6", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with Image.open(out) as sheet:
        picture = np.asarray(sheet)[caption_height(1) :]
    # Grey but for the yellow boundaries (R == G, B == 0).
    assert (
        (picture[..., 0] == picture[..., 1]) & (picture[..., 1] == picture[..., 2])
    ).mean() > 0.9
    assert (picture[..., 0] == picture[..., 1]).all()


def test_cli_default_window_is_centred_512(tmp_path: Path) -> None:
    scene = _scene(tmp_path / "big.tif", 520, 530)
    result = runner.invoke(app, ["preseg", str(scene), "--vary", "scale=200"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "big_preseg.png") as sheet:
        assert sheet.size == (512, 512 + caption_height(1))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vary", "compactness"], "--vary 'compactness' must read name=value,value,..."),
        (
            ["--vary", "compactness=100,1000"],
            "'compactness' is a slic parameter; felzenszwalb takes scale, sigma, min_size",
        ),
        (["--window", "200,0,200,48"], "is not inside the scene of 340 columns x 48 rows"),
        (["--method", "watershed"], "unknown superpixel method 'watershed'"),
        (["--bands", "9"], "has bands 1..4; [9] do not exist"),
    ],
)
def test_cli_errors(scene_tif: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "sheet.png"
    result = runner.invoke(app, ["preseg", str(scene_tif), *args, "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.startswith("geoseg: error: ")
    assert result.stderr.count("\n") == 1
    assert message in result.stderr
    assert not out.exists()
