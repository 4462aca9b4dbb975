"""Superpixel contact sheets: see what each superpixel parameter does before a run.

Pure array functions (no I/O): parse ``--vary`` options, compute one superpixel map per
parameter value with :func:`geoseg.segment.superpixels.compute_superpixels`, draw the
boundaries over the picture and lay the cells out in a grid, each under a caption.

    >>> from geoseg.segment.params import PRESETS
    >>> from geoseg.sample import make_scene
    >>> image, _ = make_scene(rows=32, cols=200, bands=3, n_classes=2, seed=0)
    >>> sweep = parse_vary("scale=10,1000", method="felzenszwalb")
    >>> sweep.field, sweep.values
    ('fz_scale', (10.0, 1000.0))
    >>> sheet = superpixel_sheet(image, [sweep], base=PRESETS["default"])
    >>> sheet.image.shape == (3, 32 + caption_height(1), 2 * 200 + 2)
    True
    >>> sheet.captions[1].startswith("scale=1000  ")
    True
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont
from scipy.ndimage import distance_transform_edt
from skimage.segmentation import find_boundaries

from geoseg.errors import ConfigError, InputError
from geoseg.render import display_rgb
from geoseg.segment.params import SegmentParams
from geoseg.segment.superpixels import compute_superpixels
from geoseg.types import Progress

__all__ = [
    "GUTTER",
    "VARY_NAMES",
    "ContactSheet",
    "Sweep",
    "assemble_sheet",
    "caption_height",
    "caption_lines",
    "centred_window",
    "draw_boundaries",
    "draw_caption",
    "parse_vary",
    "parse_window",
    "superpixel_sheet",
    "vary_names",
]

logger = logging.getLogger(__name__)

VARY_NAMES: dict[str, dict[str, str]] = {
    "slic": {"n_segments": "slic_n_segments", "compactness": "slic_compactness"},
    "felzenszwalb": {"scale": "fz_scale", "sigma": "fz_sigma", "min_size": "fz_min_size"},
}
"""Per superpixel method, the names ``--vary`` accepts and the SegmentParams fields."""

_INT_FIELDS = frozenset({"slic_n_segments", "fz_min_size"})

GUTTER = 2
"""Pixels between cells of a contact sheet."""

_FONT_SIZE = 12
_PAD_TOP, _PAD_BOTTOM, _PAD_LEFT, _LINE_GAP = 3, 2, 4, 1
_CAPTION_BACKGROUND = (24, 24, 24)
_CAPTION_TEXT = (255, 255, 255)


@dataclass(frozen=True, slots=True)
class Sweep:
    """One varied parameter: the name as given, its SegmentParams field and values."""

    name: str
    field: str
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ConfigError(f"--vary {self.name}: give at least one value")

    def label(self, value: float) -> str:
        """``name=value`` as shown in a caption, e.g. ``compactness=1000``."""
        return f"{self.name}={_format(value)}"


@dataclass(frozen=True, slots=True)
class ContactSheet:
    """A contact sheet and what each of its cells shows.

    ``image`` is ``(3, rows, cols) uint8``; ``captions``, ``counts`` (superpixels per
    cell) and ``params`` list the cells row by row, ``grid`` is ``(rows, columns)`` of
    cells and ``caption_height`` the height in pixels of the strip above each cell.
    """

    image: npt.NDArray[np.uint8]
    captions: tuple[str, ...]
    counts: tuple[int, ...]
    params: tuple[SegmentParams, ...]
    grid: tuple[int, int]
    caption_height: int

    def __post_init__(self) -> None:
        cells = self.grid[0] * self.grid[1]
        if not len(self.captions) == len(self.counts) == len(self.params) == cells:
            raise InputError(
                f"contact sheet of {self.grid[0]}x{self.grid[1]} cells needs {cells} "
                f"captions, counts and params; got {len(self.captions)}, "
                f"{len(self.counts)}, {len(self.params)}"
            )


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def vary_names(method: str) -> dict[str, str]:
    """Names ``--vary`` accepts for superpixel ``method`` and their SegmentParams fields;
    an unknown method lists the known ones.

    >>> vary_names("slic")
    {'n_segments': 'slic_n_segments', 'compactness': 'slic_compactness'}
    """
    try:
        return dict(VARY_NAMES[method])
    except KeyError:
        raise ConfigError(
            f"unknown superpixel method {method!r}; choose one of: {', '.join(VARY_NAMES)}"
        ) from None


def _allowed(method: str) -> str:
    names = VARY_NAMES[method]
    return f"{', '.join(names)} (or {', '.join(names.values())})"


def parse_vary(text: str, *, method: str) -> Sweep:
    """Parse ``name=v1,v2,...`` for superpixel ``method`` (``"slic"``/``"felzenszwalb"``).

    ``name`` is a short name (``compactness``) or the SegmentParams field
    (``slic_compactness``); each value is checked as SegmentParams would.

    >>> parse_vary("n_segments=100,400", method="slic")
    Sweep(name='n_segments', field='slic_n_segments', values=(100, 400))
    >>> parse_vary("sigma=1", method="slic")
    Traceback (most recent call last):
    ...
    geoseg.errors.ConfigError: --vary 'sigma=1': 'sigma' is a felzenszwalb parameter; \
slic takes n_segments, compactness (or slic_n_segments, slic_compactness)
    """
    names = vary_names(method)
    name, sep, listed = (part.strip() for part in text.partition("="))
    if not sep or not name or not listed:
        raise ConfigError(
            f"--vary {text!r} must read name=value,value,..., e.g. "
            f"--vary {next(iter(names))}=10,100,1000"
        )
    fields = {**names, **{field: field for field in names.values()}}
    if name not in fields:
        others = [m for m, known in VARY_NAMES.items() if name in known or name in known.values()]
        what = f"a {others[0]} parameter" if others else "not a parameter that can vary"
        raise ConfigError(f"--vary {text!r}: {name!r} is {what}; {method} takes {_allowed(method)}")
    field = fields[name]
    values: list[float] = []
    for token in listed.split(","):
        try:
            value = float(token)
        except ValueError:
            raise ConfigError(f"--vary {text!r}: {token.strip()!r} is not a number") from None
        if field in _INT_FIELDS:
            if not value.is_integer():
                raise ConfigError(f"--vary {text!r}: {name} takes whole numbers; got {token!r}")
            values.append(int(value))
        elif not math.isfinite(value):
            raise ConfigError(f"--vary {text!r}: {token.strip()!r} is not a finite number")
        else:
            values.append(value)
    for value in values:
        try:
            SegmentParams(superpixels=method).replace(**{field: value})  # type: ignore[arg-type]
        except ConfigError as err:
            raise ConfigError(f"--vary {text!r}: {err}") from err
    return Sweep(name=name, field=field, values=tuple(values))


def centred_window(height: int, width: int, *, size: int = 512) -> tuple[int, int, int, int]:
    """``(col, row, width, height)`` of the centred window of at most ``size`` x ``size``.

    >>> centred_window(1000, 300)
    (0, 244, 300, 512)
    """
    w, h = min(size, width), min(size, height)
    return (width - w) // 2, (height - h) // 2, w, h


def parse_window(text: str, *, height: int, width: int) -> tuple[int, int, int, int]:
    """Parse ``col,row,width,height`` and check that it lies inside a scene of
    ``height`` x ``width`` pixels.

    >>> parse_window("10,20,64,32", height=100, width=100)
    (10, 20, 64, 32)
    """
    try:
        col, row, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"--window {text!r} must be four whole numbers col,row,width,height, "
            "e.g. --window 0,0,512,512"
        ) from None
    if w < 1 or h < 1:
        raise ConfigError(f"--window {text!r}: width and height must be >= 1")
    if col < 0 or row < 0 or col + w > width or row + h > height:
        raise ConfigError(
            f"--window {text!r} (columns {col}..{col + w - 1}, rows {row}..{row + h - 1}) "
            f"is not inside the scene of {width} columns x {height} rows"
        )
    return col, row, w, h


@functools.cache
def _font() -> Any:
    try:
        return ImageFont.load_default(size=_FONT_SIZE)
    except TypeError:  # Pillow < 10.1: only the fixed bitmap font
        return ImageFont.load_default()


def _line_height() -> int:
    return int(_font().getbbox("Agjy|")[3]) + _LINE_GAP


def caption_height(lines: int = 1) -> int:
    """Height in pixels of a caption strip holding ``lines`` lines of text."""
    return _PAD_TOP + lines * _line_height() + _PAD_BOTTOM


def caption_lines(text: str, width: int) -> list[str]:
    """Split ``text`` at its double spaces into lines that fit ``width`` pixels where
    possible (a single part wider than ``width`` stays whole and is clipped).

    >>> caption_lines("compactness=1000  842 superpixels", 400)
    ['compactness=1000  842 superpixels']
    >>> caption_lines("compactness=1000  842 superpixels", 120)
    ['compactness=1000', '842 superpixels']
    """
    font = _font()
    lines: list[str] = []
    for part in text.split("  "):
        joined = f"{lines[-1]}  {part}" if lines else part
        if lines and font.getlength(joined) + _PAD_LEFT <= width:
            lines[-1] = joined
        else:
            lines.append(part)
    return lines


def draw_caption(
    lines: Sequence[str], width: int, *, height: int | None = None
) -> npt.NDArray[np.uint8]:
    """A ``(3, height, width) uint8`` strip with ``lines`` in white on near-black.

    ``height`` defaults to :func:`caption_height` of ``len(lines)``.
    """
    height = caption_height(len(lines)) if height is None else height
    if width < 1 or height < 1:
        raise InputError(f"caption strip must be at least 1x1 pixels; got {width}x{height}")
    strip = Image.new("RGB", (width, height), _CAPTION_BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text(
            (_PAD_LEFT, _PAD_TOP + i * _line_height()), line, fill=_CAPTION_TEXT, font=_font()
        )
    return np.moveaxis(np.asarray(strip), -1, 0).copy()


def draw_boundaries(
    display: npt.NDArray[np.floating],
    superpixels: npt.NDArray[np.integer],
    *,
    colour: tuple[int, int, int] = (255, 255, 0),
) -> npt.NDArray[np.uint8]:
    """``display (3, H, W)`` in ``[0, 1]`` as uint8, superpixel boundaries in ``colour``.

    Boundaries are one pixel wide (``find_boundaries(mode="inner")``); nodata
    (``superpixels < 0``) is black and its edge is not drawn as a boundary.

    >>> sp = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    >>> draw_boundaries(np.zeros((3, 2, 4)), sp)[0].tolist()
    [[0, 0, 255, 0], [0, 0, 255, 0]]
    """
    if display.ndim != 3 or display.shape[0] != 3 or display.shape[1:] != superpixels.shape:
        raise InputError(
            f"display must be (3, rows, cols) matching superpixels {superpixels.shape}; "
            f"got {display.shape}"
        )
    valid = superpixels >= 0
    out = np.round(np.clip(display, 0.0, 1.0) * 255).astype(np.uint8)
    out[:, ~valid] = 0
    if not valid.any():
        return out
    # Give nodata the id of its nearest valid pixel, so the data's edge is no boundary.
    nearest = distance_transform_edt(~valid, return_distances=False, return_indices=True)
    filled = superpixels[tuple(nearest)]
    edges = find_boundaries(filled, mode="inner") & valid
    out[:, edges] = np.asarray(colour, np.uint8)[:, None]
    return out


def assemble_sheet(
    cells: Sequence[npt.NDArray[np.uint8]],
    *,
    columns: int,
    gutter: int = GUTTER,
    background: int = 255,
) -> npt.NDArray[np.uint8]:
    """Lay equal ``(3, h, w) uint8`` cells out row by row, ``columns`` to a row,
    ``gutter`` pixels apart (no outer margin).

    >>> cells = [np.zeros((3, 4, 5), np.uint8)] * 3
    >>> assemble_sheet(cells, columns=2).shape
    (3, 10, 12)
    """
    if not cells:
        raise InputError("a contact sheet needs at least one cell")
    shape = cells[0].shape
    if any(cell.shape != shape or cell.dtype != np.uint8 for cell in cells) or len(shape) != 3:
        raise InputError(f"cells must all be (3, h, w) uint8 of one size; first is {shape}")
    if columns < 1:
        raise InputError(f"columns={columns} must be >= 1")
    _, h, w = shape
    rows = -(-len(cells) // columns)
    sheet = np.full(
        (3, rows * h + (rows - 1) * gutter, columns * w + (columns - 1) * gutter),
        background,
        np.uint8,
    )
    for k, cell in enumerate(cells):
        top, left = (k // columns) * (h + gutter), (k % columns) * (w + gutter)
        sheet[:, top : top + h, left : left + w] = cell
    return sheet


def superpixel_sheet(
    image: npt.NDArray[np.floating],
    sweeps: Sequence[Sweep],
    *,
    base: SegmentParams,
    valid: npt.NDArray[np.bool_] | None = None,
    display: npt.NDArray[np.floating] | None = None,
    colour: tuple[int, int, int] = (255, 255, 0),
    progress: Progress | None = None,
) -> ContactSheet:
    """Superpixels of ``image`` for every value (or pair of values) of ``sweeps``.

    Parameters
    ----------
    image
        ``(B, H, W)`` float image in about ``[0, 1]``, the bands the superpixels see.
    sweeps
        Zero, one or two :class:`Sweep`; the first varies along the columns, the
        second along the rows. Every other parameter comes from ``base``.
    base
        Parameters of the cells; ``base.superpixels`` is the method (``"slic"`` or
        ``"felzenszwalb"``).
    valid
        ``(H, W)`` bool, ``True`` where the pixel holds data; nodata is drawn black.
    display
        ``(3, H, W)`` picture in ``[0, 1]`` to draw on (default: ``display_rgb(image)``).
    colour
        RGB of the boundaries.
    progress
        Called as ``progress(done, total)`` after each cell.
    """
    names = vary_names(base.superpixels)
    if len(sweeps) > 2:
        raise ConfigError(f"vary at most two parameters at once; got {len(sweeps)}")
    for sweep in sweeps:
        if sweep.field not in names.values():
            raise ConfigError(
                f"{sweep.name} is not a {base.superpixels} parameter; "
                f"choose from {_allowed(base.superpixels)}"
            )
    if len(sweeps) == 2 and sweeps[0].field == sweeps[1].field:
        raise ConfigError(f"{sweeps[0].name} is varied twice; vary two different parameters")
    if image.ndim != 3:
        raise InputError(f"image must be (bands, rows, cols); got shape {image.shape}")
    display = display_rgb(image) if display is None else display
    if display.shape != (3, *image.shape[1:]):
        raise InputError(
            f"display must be (3, rows, cols) as image {image.shape}; got {display.shape}"
        )
    n_columns = len(sweeps[0].values) if sweeps else 1
    n_rows = len(sweeps[1].values) if len(sweeps) == 2 else 1
    # Row-major cells; each combination lists one value per sweep, first sweep first.
    combinations = [
        combination[::-1]
        for combination in itertools.product(*(sweep.values for sweep in reversed(sweeps)))
    ]
    panels: list[npt.NDArray[np.uint8]] = []
    texts: list[str] = []
    counts: list[int] = []
    params_list: list[SegmentParams] = []
    for combination in combinations:
        chosen = list(zip(sweeps, combination, strict=True))
        params = base.replace(**{sweep.field: value for sweep, value in chosen})
        ids = compute_superpixels(image, params, valid=valid)
        count = int(ids.max()) + 1 if ids.size else 0
        texts.append("  ".join([*(sweep.label(v) for sweep, v in chosen), f"{count} superpixels"]))
        logger.debug("%s", texts[-1])
        counts.append(count)
        params_list.append(params)
        panels.append(draw_boundaries(display, ids, colour=colour))
        if progress is not None:
            progress(len(panels), len(combinations))
    width = image.shape[2]
    wrapped = [caption_lines(text, width) for text in texts]
    strip = caption_height(max(len(lines) for lines in wrapped))
    cells = [
        np.concatenate([draw_caption(lines, width, height=strip), panel], axis=1)
        for lines, panel in zip(wrapped, panels, strict=True)
    ]
    return ContactSheet(
        image=assemble_sheet(cells, columns=n_columns),
        captions=tuple(texts),
        counts=tuple(counts),
        params=tuple(params_list),
        grid=(n_rows, n_columns),
        caption_height=strip,
    )
