"""Pictures of images and label maps (pure array functions, no I/O).

>>> import numpy as np
>>> display = np.zeros((3, 2, 2), np.float32); display[:, :, 1] = 1.0
>>> labels = np.array([[0, 1], [0, 1]])
>>> mean_colour(display, labels)[0].tolist()
[[0, 255], [0, 255]]
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geoseg.errors import InputError

__all__ = ["TrainingAnimation", "display_rgb", "mean_colour", "palette", "quicklook"]


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

    Feed it as ``on_snapshot`` of :func:`geoseg.segment.segment` or
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
