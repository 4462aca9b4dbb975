"""The seam metric (geoseg.seams) on maps with known seams."""

from __future__ import annotations

import numpy as np


def test_seam_ratio_flags_tile_seams_and_passes_seamless_maps() -> None:
    from geoseg.seams import seam_boundary_ratio

    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.normal(size=(120, 120)), 4)  # irregular smooth regions
    seamless = np.digitize(field, np.quantile(field, [1 / 3, 2 / 3]))
    cuts = np.array([40, 80])
    ratio, _, _ = seam_boundary_ratio(seamless, row_cuts=cuts, col_cuts=cuts)
    assert 0.5 < ratio < 1.5
    # every 40x40 tile relabels its classes: boundaries appear along the seams
    seamy = seamless.copy()
    for r in range(3):
        for c in range(3):
            block = (slice(40 * r, 40 * r + 40), slice(40 * c, 40 * c + 40))
            seamy[block] = rng.permutation(3)[seamless[block]]
    ratio, seam, other = seam_boundary_ratio(seamy, row_cuts=cuts, col_cuts=cuts)
    assert ratio > 2
    assert seam > other
    local, _, _ = seam_boundary_ratio(seamy, row_cuts=cuts, col_cuts=cuts, control=(4, 12))
    assert local > 2
    local, _, _ = seam_boundary_ratio(seamless, row_cuts=cuts, col_cuts=cuts, control=(4, 12))
    assert 0.5 < local < 1.5


def test_seam_ratio_local_control_uses_lines_near_the_seams() -> None:
    from geoseg.seams import seam_boundary_ratio

    labels = np.zeros((20, 20), int)
    labels[:, 1::2] = 1  # boundaries between every pair of columns ...
    labels[:, 12:] = 0  # ... but none right of column 12
    cut = np.array([6])
    _, seam, control = seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=cut)
    assert seam == 1.0
    assert 0 < control < 1.0  # the whole image: the plain right part dilutes it
    _, _, near = seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=cut, control=(1, 4))
    assert near == 1.0  # columns 1..9 only: boundaries everywhere


def test_seam_ratio_ignores_nodata_pairs() -> None:
    from geoseg.seams import seam_boundary_ratio

    labels = np.zeros((10, 10), int)
    labels[:, 5:] = -1  # nodata right of the seam
    ratio, seam, _ = seam_boundary_ratio(labels, row_cuts=np.array([]), col_cuts=np.array([5]))
    assert seam == 0.0
    assert ratio == 1.0


# --- evaluate_maps: every metric in one report --------------------------------------------
