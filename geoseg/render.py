"""Pictures of images and label maps (pure array functions, no I/O).

>>> import numpy as np
>>> display = np.zeros((3, 2, 2), np.float32); display[:, :, 1] = 1.0
>>> labels = np.array([[0, 1], [0, 1]])
>>> mean_colour(display, labels)[0].tolist()
[[0, 255], [0, 255]]
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geoseg.errors import InputError

__all__ = [
    "TrainingAnimation",
    "bars_svg",
    "display_rgb",
    "histogram_svg",
    "mean_colour",
    "palette",
    "quicklook",
]


def display_rgb(image: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """``(3, H, W)`` display bands from a ``[0, 1]`` image: bands 1-3, or band 1 as grey."""
    if image.ndim != 3:
        raise InputError(f"image must be (bands, rows, cols); got shape {image.shape}")
    bands = image[:3] if image.shape[0] >= 3 else np.repeat(image[:1], 3, axis=0)
    return bands.astype(np.float32)


def mean_colour(
    display: npt.NDArray[np.floating], labels: npt.NDArray[np.integer]
) -> npt.NDArray[np.uint8]:
    """Paint every label with its mean display colour; nodata (``labels < 0``) black."""
    if display.shape[1:] != labels.shape:
        raise InputError(f"display {display.shape} and labels {labels.shape} differ in size")
    inside = labels >= 0
    _, index = np.unique(labels[inside], return_inverse=True)
    counts = np.bincount(index)
    out = np.zeros(display.shape, np.uint8)
    for band in range(display.shape[0]):
        sums = np.bincount(index, weights=display[band][inside], minlength=counts.size)
        means = np.clip(sums / np.maximum(counts, 1), 0.0, 1.0)
        out[band][inside] = np.round(means[index] * 255).astype(np.uint8)
    return out


def palette(n: int = 256) -> npt.NDArray[np.uint8]:
    """Fixed colours ``(n, 3)`` for class ids: 0 (nodata) black, then distinct hues.

    The same table colours the quicklook and, later, the vector layer's style.

    >>> palette(3).tolist()[0]
    [0, 0, 0]
    """
    colours = np.zeros((n, 3), np.uint8)
    golden = 0.618033988749895
    for k in range(1, n):
        hue = (k * golden) % 1.0
        sat, val = (0.75, 0.95) if k % 2 else (0.55, 0.75)
        colours[k] = np.round(np.array(_hsv_to_rgb(hue, sat, val)) * 255)
    return colours


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def quicklook(
    display: npt.NDArray[np.floating], classes: npt.NDArray[np.integer]
) -> npt.NDArray[np.uint8]:
    """The scene beside its classes: ``(3, H, 2W + 8)`` uint8, nodata black.

    ``display`` is ``(3, H, W)`` in ``[0, 1]``; ``classes`` holds class ids (0 = nodata)
    painted with :func:`palette`.
    """
    if display.shape[1:] != classes.shape:
        raise InputError(f"display {display.shape} and classes {classes.shape} differ in size")
    left = np.round(np.clip(display, 0.0, 1.0) * 255).astype(np.uint8)
    left[:, classes == 0] = 0
    colours = palette(max(256, int(classes.max()) + 1))
    right = np.moveaxis(colours[classes], -1, 0)
    gap = np.full((3, classes.shape[0], 8), 255, np.uint8)
    return np.concatenate([left, gap, right], axis=2)


class TrainingAnimation:
    """Frames of a label map while the network trains, for ``training.gif``.

    Feed it as ``on_snapshot`` of :func:`geoseg.segment.image.segment_channels` or
    :func:`geoseg.segment.fit` (the first view is shown); :meth:`frames` gives one frame
    per requested iteration, labels painted with :func:`palette` (the network's output
    channel + 1, so a class keeps its colour from frame to frame), captioned with the
    iteration and label count. Iterations after training stopped repeat the last map,
    captioned "stopped at N".

    >>> anim = TrainingAnimation([1, 2, 4])
    >>> anim(1, np.zeros((1, 8, 8), np.int32)); anim(2, np.ones((8, 8), np.int32))
    >>> [frame.shape for frame in anim.frames(stopped_at=2)]
    [(3, 22, 8), (3, 22, 8), (3, 22, 8)]
    """

    CAPTION = 14

    def __init__(self, iterations: list[int] | tuple[int, ...]) -> None:
        if not iterations or min(iterations) < 1:
            raise InputError(f"snapshots {list(iterations)} must be iterations >= 1")
        self.iterations = sorted(set(iterations))
        self._maps: dict[int, npt.NDArray[np.int32]] = {}

    def __call__(self, iteration: int, labels: npt.NDArray[np.integer]) -> None:
        """Keep the label map (``(h, w)``, or ``(N, h, w)``: the first view) of one
        iteration; negative labels are nodata."""
        first = labels[0] if labels.ndim == 3 else labels
        self._maps[iteration] = np.asarray(first, np.int32)

    def frames(self, *, stopped_at: int) -> list[npt.NDArray[np.uint8]]:
        """``(3, caption + h, w)`` uint8 frames, one per requested iteration."""
        from PIL import Image, ImageDraw

        if not self._maps:
            raise InputError("no snapshot was recorded; was the animation passed to training?")
        frames = []
        last = min(self._maps)
        for iteration in self.iterations:
            if iteration in self._maps:
                last = iteration
            labels = self._maps[last]
            colours = palette(max(256, int(labels.max()) + 2))
            body = colours[np.where(labels >= 0, labels + 1, 0)]
            caption = (
                f"iteration {iteration}: {np.unique(labels[labels >= 0]).size} labels"
                if iteration == last
                else f"iteration {iteration}: stopped at {stopped_at}"
            )
            strip = Image.new("RGB", (labels.shape[1], self.CAPTION), "white")
            ImageDraw.Draw(strip).text((2, 1), caption, fill="black")
            frame = np.concatenate([np.asarray(strip), body], axis=0)
            frames.append(np.moveaxis(frame, -1, 0).astype(np.uint8))
        return frames


# --- charts for report.html (inline SVG) -------------------------------------------------


def histogram_svg(sizes: npt.NDArray[np.float64]) -> str:
    """Polygon counts in log-spaced bins (4 per decade) of ``n_pixels``, as inline SVG."""
    per_decade = 4
    top = max(1, math.ceil(math.log10(max(float(sizes.max()), 1.0)) * per_decade - 1e-9))
    edges = 10.0 ** (np.arange(top + 1) / per_decade)
    if edges[-1] < sizes.max():
        edges = np.append(edges, edges[-1] * 10 ** (1 / per_decade))
    hist, _ = np.histogram(np.clip(sizes, 1, None), bins=edges)
    width, height, left, right, top_pad, bottom = 720, 260, 56, 16, 14, 46
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    x_max = math.log10(edges[-1])
    y_max = _nice_ceiling(int(hist.max()))

    def x(value: float) -> float:
        return left + plot_w * math.log10(value) / x_max

    def y(count: float) -> float:
        return top_pad + plot_h * (1 - count / y_max)

    shapes = [  # grid first, bars over it
        f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
        f'stroke="#e3e3e3"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" '
        f'text-anchor="end">{tick:,}</text>'
        for tick in _ticks(y_max)
    ]
    for count, a, b in zip(hist, edges[:-1], edges[1:], strict=True):
        if count:
            shapes.append(
                f'<rect x="{x(a) + 1:.1f}" y="{y(count):.1f}" width="{x(b) - x(a) - 2:.1f}" '
                f'height="{y(0) - y(count):.1f}" fill="#4c78a8">'
                f"<title>{_escape(f'{a:,.0f}-{b:,.0f} px: {count:,} polygons')}</title></rect>"
            )
    for decade in range(math.floor(x_max) + 1):
        px = x(10.0**decade)
        shapes.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{y(0):.1f}" y2="{y(0) + 5:.1f}" '
            f'stroke="#555"/><text x="{px:.1f}" y="{y(0) + 18:.1f}" '
            f'text-anchor="middle">{_escape(_si(10**decade))}</text>'
        )
    shapes.append(
        f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#555"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        "pixels per polygon (log scale)</text>"
        f'<text transform="translate(14 {top_pad + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">polygons</text>'
    )
    return (
        f'<svg class=chart viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="histogram of segment sizes">{"".join(shapes)}</svg>'
    )


def bars_svg(bars: Sequence[tuple[str, float, str]], *, scale: float, value_text: Any) -> str:
    """Horizontal bars ``(label, value, colour)``, the longest ``scale`` wide."""
    label_w, bar_w, value_w, row_h = 150, 320, 90, 26
    width, height = label_w + bar_w + value_w, row_h * len(bars) + 4
    shapes = []
    for i, (label, value, colour) in enumerate(bars):
        top = 2 + i * row_h
        length = max(bar_w * value / scale, 1.0 if value > 0 else 0.0)
        shapes.append(
            f'<text x="{label_w - 8}" y="{top + 17}" text-anchor="end">{_escape(label)}</text>'
            f'<rect x="{label_w}" y="{top + 4}" width="{length:.1f}" height="{row_h - 8}" '
            f'fill="{colour}" rx="2"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{top + 17}">'
            f"{_escape(value_text(value))}</text>"
        )
    return (
        f'<svg class=chart viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="bar chart">{"".join(shapes)}</svg>'
    )


def _si(value: int) -> str:
    for factor, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if value >= factor:
            return f"{value // factor}{suffix}"
    return str(value)


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value``."""
    value = max(value, 1)
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _ticks(top: int) -> list[int]:
    step = max(_nice_ceiling(top) // 5, 1)
    return list(range(0, top + 1, step))


def _escape(text: object) -> str:
    return html.escape(str(text), quote=True)
