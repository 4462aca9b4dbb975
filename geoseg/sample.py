"""A synthetic multi-band scene with known regions: the bundled default and test input.

Fields are warped Voronoi cells, each of one land-cover class with its own spectral
signature, plus within-field texture and sensor noise, so the true partition is known.

    >>> image, truth = make_scene(rows=64, cols=96, bands=4, n_classes=3, seed=1)
    >>> image.shape, image.dtype, truth.shape, sorted(set(truth.ravel().tolist()))
    ((4, 64, 96), dtype('float32'), (64, 96), [1, 2, 3])
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

from geoseg.errors import InputError

__all__ = ["SAMPLE_CRS", "make_scene", "sample_transform"]

SAMPLE_CRS = CRS.from_epsg(32618)
"""UTM zone 18N, the CRS written with the sample scene."""


def sample_transform(*, pixel_size: float = 10.0) -> Affine:
    """Georeferencing of the sample scene: north-up, ``pixel_size`` metres, in zone 18N."""
    return Affine(pixel_size, 0.0, 400000.0, 0.0, -pixel_size, 4150000.0)


def make_scene(
    *,
    rows: int = 512,
    cols: int = 512,
    bands: int = 4,
    n_classes: int = 5,
    n_fields: int | None = None,
    noise: float = 0.03,
    texture: float = 0.03,
    seed: int = 0,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Return ``image (bands, rows, cols)`` in ``[0, 1]`` and ``truth (rows, cols)``.

    ``truth`` holds class ids ``1..n_classes``; every class is present. ``n_fields``
    (default: one per 64x64 pixels, at least ``2 * n_classes``) sets how many fields
    the classes are spread over. ``noise`` is the per-pixel Gaussian sigma and
    ``texture`` the amplitude of smooth within-field variation.
    """
    if rows < 8 or cols < 8 or bands < 1 or n_classes < 1:
        raise InputError(
            f"sample scene needs rows, cols >= 8, bands >= 1, n_classes >= 1; "
            f"got {rows}x{cols}, {bands} bands, {n_classes} classes"
        )
    rng = np.random.default_rng(seed)
    if n_fields is None:
        n_fields = max(2 * n_classes, rows * cols // 4096)
    n_fields = max(n_fields, n_classes)
    # Warped Voronoi fields: irregular but contiguous boundaries.
    rr, cc = np.mgrid[0:rows, 0:cols].astype(np.float64)
    warp = max(rows, cols) / 12.0
    for grid in (rr, cc):
        grid += warp * _smooth_noise(rng, rows, cols, sigma=max(rows, cols) / 10.0)
    points = rng.uniform([0, 0], [rows, cols], size=(n_fields, 2))
    _, field = cKDTree(points).query(np.column_stack([rr.ravel(), cc.ravel()]))
    field = field.reshape(rows, cols)
    field_class = np.concatenate(
        [np.arange(n_classes), rng.integers(0, n_classes, n_fields - n_classes)]
    )
    rng.shuffle(field_class)
    # Classes spread evenly in brightness in a random direction per band.
    levels = np.linspace(0.15, 0.85, n_classes)
    signatures = np.stack([rng.permutation(levels) for _ in range(bands)], axis=1)
    signatures[:, 0] = levels  # band 1 alone separates all classes
    truth = field_class[field]
    image = signatures[truth].transpose(2, 0, 1)
    image = image + rng.normal(0.0, texture / 2, (n_fields, bands))[field].transpose(2, 0, 1)
    for band in range(bands):
        image[band] += texture * _smooth_noise(rng, rows, cols, sigma=8.0)
    image += rng.normal(0.0, noise, image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), (truth + 1).astype(np.int32)


def _smooth_noise(
    rng: np.random.Generator, rows: int, cols: int, *, sigma: float
) -> npt.NDArray[np.float64]:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = gaussian_filter(rng.normal(size=(rows, cols)), sigma)
    return field / max(float(field.std()), 1e-12)
