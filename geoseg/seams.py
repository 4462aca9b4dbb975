"""The seam metric of a mosaic: class boundaries on tile seams against lines beside them.

Maps here are a run's internal class maps: ``(rows, cols)`` ids, negative at nodata
(0 is a class). A seamless mosaic has as many boundaries on its seams as on the ground
beside them (a ratio near 1); report.html shows it for every run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from rasterio.windows import Window

from geoseg.errors import ConfigError, InputError

__all__ = ["SEAM_CONTROL", "WindowReader", "seam_boundary_ratio", "seam_boundary_ratio_windowed"]


def seam_boundary_ratio(
    labels: npt.NDArray[np.integer],
    *,
    row_cuts: npt.NDArray[np.integer],
    col_cuts: npt.NDArray[np.integer],
    control: tuple[int, int] | None = None,
) -> tuple[float, float, float]:
    """Density of class boundaries on tile seams against elsewhere.

    A boundary is a pair of 4-adjacent valid pixels (``labels >= 0``) of different
    classes. Seam pairs straddle a cut: rows ``r-1 | r`` for ``r`` in ``row_cuts`` and
    columns ``c-1 | c`` for ``c`` in ``col_cuts``. The control is every other pair, or
    with ``control=(near, far)`` only the pairs on lines parallel to a seam at
    ``near..far`` pixels from it, which compares each seam with the same ground.
    Returns ``(ratio, seam_density, control_density)``; a seamless mosaic has a ratio
    near 1.

    >>> labels = np.zeros((4, 4), int); labels[:, 2:] = 1
    >>> seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=np.array([2]))
    (inf, 1.0, 0.0)
    """
    array = np.asarray(labels)
    return seam_boundary_ratio_windowed(
        lambda window: array[window.toslices()],
        (array.shape[0], array.shape[1]),
        row_cuts=row_cuts,
        col_cuts=col_cuts,
        control=control,
        block_size=max(array.shape[0], array.shape[1], 1),
    )


def _seam_lines(
    n_lines: int, cuts: npt.NDArray[np.integer], control: tuple[int, int] | None
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Which of ``n_lines`` pixel-pair lines are seams, and which are control lines."""
    seam = np.zeros(n_lines, bool)
    seam[np.asarray(cuts, int) - 1] = True
    if control is None:
        return seam, ~seam
    near, far = control
    lines = np.zeros(n_lines, bool)
    for cut in np.asarray(cuts, int) - 1:
        for offset in range(near, far + 1):
            for line in (cut - offset, cut + offset):
                if 0 <= line < n_lines:
                    lines[line] = True
    return seam, lines & ~seam


SEAM_CONTROL = (8, 40)
"""The control lines of the seam metric: 8-40 px from a seam, parallel to it."""

WindowReader = Callable[[Window], npt.NDArray[np.integer]]
"""``read(window)``: class ids ``(window.height, window.width)``, negative at nodata."""


def seam_boundary_ratio_windowed(
    read: WindowReader,
    shape: tuple[int, int],
    *,
    row_cuts: npt.ArrayLike,
    col_cuts: npt.ArrayLike,
    control: tuple[int, int] | None = SEAM_CONTROL,
    block_size: int = 2048,
) -> tuple[float, float, float]:
    """:func:`seam_boundary_ratio` on a map that stays on disk (the one implementation).

    Reads through ``read(window)`` only the bands of rows (columns) that hold a seam line
    or a control line, ``block_size`` pixels along the seam at a time, so memory stays at
    ``block_size * (2 * far + 2)`` pixels whatever the map's size. ``shape`` is the map's
    ``(rows, cols)``; cuts must lie in ``1 .. rows - 1`` (``cols - 1``). Same definitions
    and the same result as the in-memory function.

    >>> labels = np.zeros((4, 4), int); labels[:, 2:] = 1
    >>> read = lambda w: labels[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width]
    >>> seam_boundary_ratio_windowed(read, (4, 4), row_cuts=[], col_cuts=[2], control=(1, 1))
    (inf, 1.0, 0.0)
    """
    if control is not None and not 0 <= control[0] <= control[1]:
        raise ConfigError(f"control={control} must be (near, far) with 0 <= near <= far")
    if block_size < 1:
        raise ConfigError(f"block_size={block_size} must be >= 1")
    rows, cols = shape
    totals = np.zeros((2, 2), np.int64)  # (seam, control) x (boundaries, pairs)
    for axis, size, across, cuts in ((0, rows, cols, row_cuts), (1, cols, rows, col_cuts)):
        cuts = np.asarray(cuts, int).ravel()
        if cuts.size and (cuts.min() < 1 or cuts.max() > size - 1):
            name = "row_cuts" if axis == 0 else "col_cuts"
            raise InputError(f"{name}={cuts.tolist()} must lie in 1..{size - 1} (the map's size)")
        seam, lines = _seam_lines(max(size - 1, 0), cuts, control)
        for start, stop in _runs(seam | lines):  # pair lines start..stop-1: pixels start..stop
            for offset in range(0, across, block_size):
                length = min(block_size, across - offset)
                if axis == 0:
                    window = Window(offset, start, length, stop - start + 1)
                else:
                    window = Window(start, offset, stop - start + 1, length)
                block = np.asarray(read(window))
                if block.shape != (int(window.height), int(window.width)):
                    raise InputError(
                        f"read({window}) returned shape {block.shape}; expected "
                        f"{(int(window.height), int(window.width))}"
                    )
                if axis == 1:
                    block = block.T  # pair lines along the first axis
                ok = (block[1:] >= 0) & (block[:-1] >= 0)
                bound = (block[1:] != block[:-1]) & ok
                for k, chosen in enumerate((seam[start:stop], lines[start:stop])):
                    totals[k] += int(bound[chosen].sum()), int(ok[chosen].sum())
    seam_density, other = (float(b) / max(int(p), 1) for b, p in totals)
    ratio = seam_density / other if other > 0 else (float("inf") if seam_density > 0 else 1.0)
    return ratio, seam_density, other


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of ``True`` in a 1-D mask."""
    index = np.flatnonzero(mask)
    if not index.size:
        return []
    breaks = np.flatnonzero(np.diff(index) > 1)
    starts = index[np.r_[0, breaks + 1]]
    stops = index[np.r_[breaks, index.size - 1]] + 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]
