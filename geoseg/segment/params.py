"""Parameters of the unsupervised segmentation loop and the named presets.

A preset is only a set of parameter values; every preset runs the same code path.

    >>> PRESETS["fork"].network, PRESETS["fork"].max_iterations
    ('light', 64)
    >>> PRESETS["kanezaki2018"].replace(max_iterations=5).max_iterations
    5
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from geoseg.errors import ConfigError, quote

__all__ = [
    "BOUND_KEYS",
    "CHOICES",
    "PRESETS",
    "SCALE_MAX",
    "SEED_MAX",
    "SegmentParams",
    "bound_error",
    "get_preset",
    "smooth_radius",
    "smooth_step",
]

SEED_MAX = 2**32 - 1
"""The largest seed: 32 bits, what every generator geoseg seeds accepts (numpy's legacy
``RandomState`` and scikit-learn stop there; torch takes up to 2**64 - 1)."""

SCALE_MAX = 10_000.0
"""The largest ground scale, in metres (a land cover of 10 km)."""

MIX_RADIUS_MAX = 250
"""The ground scale's windows are at most ``2 * 250 + 1`` px wide (25 m on 5 cm pixels):
they are measured on views of four times that width."""

SuperpixelMethod = Literal["slic", "felzenszwalb", "none"]
Network = Literal["paper", "light"]
Optimizer = Literal["sgd", "adam"]

CHOICES: dict[str, tuple[str, ...]] = {
    "superpixels": typing.get_args(SuperpixelMethod),
    "network": typing.get_args(Network),
    "optimizer": typing.get_args(Optimizer),
}
"""The allowed values of the parameters that name a method (their ``Literal`` types)."""

BOUND_KEYS = ("gt", "ge", "lt", "le")
"""The bound kinds a parameter's metadata may hold, as pydantic's ``Field`` names them."""


def _bounds(
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | str | None = None,
    unit: str = "",
    hint: str = "",
) -> dict[str, Any]:
    """A parameter's bounds as field metadata, the one place they are stated: read by
    :meth:`SegmentParams.__post_init__` and by the config schema
    (:class:`geoseg.sections.SegmentSection`). ``le`` may name another parameter."""
    given = {"gt": gt, "ge": ge, "lt": lt, "le": le, "unit": unit, "hint": hint}
    return {key: value for key, value in given.items() if value not in (None, "")}


def bound_error(name: str, value: Any, params: Any = None) -> str | None:
    """The one-line message for ``segment.<name>=value`` outside its bounds, else
    ``None``. ``params`` gives the value of a bound that names another parameter.

    >>> bound_error("lr", -1.0)
    'segment.lr=-1.0 must be > 0'
    >>> bound_error("stop_change", 1.0)
    'segment.stop_change=1.0 must lie in [0, 1); 0 never stops on it'
    >>> bound_error("min_labels", 0, PRESETS["default"])
    'segment.min_labels=0 must lie in 1..n_channels (32)'
    """
    meta = _FIELDS[name].metadata
    if value is None or not any(key in meta for key in BOUND_KEYS):
        return None
    low, high = meta.get("gt", meta.get("ge")), meta.get("lt", meta.get("le"))
    limit = getattr(params, high, None) if isinstance(high, str) else high
    inside = (value > low if "gt" in meta else value >= low) and (
        limit is None or (value < limit if "lt" in meta else value <= limit)
    )  # False for NaN
    if inside:
        return None
    unit = f" {meta['unit']}" if "unit" in meta else ""
    hint = f"; {meta['hint']}" if "hint" in meta else ""
    if high is None:
        return (
            f"segment.{name}={quote(value)} must be {'>' if 'gt' in meta else '>='} {low:g}{unit}"
        )
    if isinstance(high, str):
        where = f"{low:g}..{high} ({limit})"
    else:
        where = f"{'(' if 'gt' in meta else '['}{low:g}, {high:g}{')' if 'lt' in meta else ']'}"
    return f"segment.{name}={quote(value)} must lie in {where}{unit}{hint}"


@dataclass(frozen=True, slots=True)
class SegmentParams:
    """Every knob of :func:`geoseg.segment_image`; the defaults are the ``default``
    preset. Bounds are checked here (one-line :class:`~geoseg.errors.ConfigError`).

    Parameters
    ----------
    superpixels
        Prior used to refine the argmax labels into the training target: ``"slic"``,
        ``"felzenszwalb"`` or ``"none"`` (the target is the plain argmax, as in TIP 2020).
    slic_n_segments, slic_compactness
        SLIC's approximate number of superpixels and its compactness. Three-band images
        are converted to CIELAB as in the paper; for other band counts the compactness
        is scaled so that it weighs colour against distance as it does in CIELAB.
    fz_scale, fz_sigma, fz_min_size
        Felzenszwalb's scale, Gaussian pre-smoothing sigma and minimum component size
        (pixels, at full resolution).
    network
        ``"paper"``: ``n_conv`` blocks of 3x3 conv -> ReLU -> BN with ``n_channels``
        channels, then a 1x1 conv + BN. ``"light"``: the fork's 3x3 conv
        ``hidden_channels``, 1x1 conv ``n_channels``, 3x3 conv ``hidden_channels``, 1x1 conv
        ``n_channels``, each followed by BN, ReLU between.
    n_channels
        Output channels, the largest possible number of labels.
    n_conv
        Number of 3x3 blocks of the paper network.
    hidden_channels
        Width of the light network's 3x3 convolutions.
    optimizer, lr, momentum
        ``"sgd"`` (with ``momentum``) or ``"adam"`` and the learning rate.
    max_iterations
        Upper bound on training iterations.
    warm_start, warm_iterations
        Start the network's feature layers from the weights the package ships for 3- and
        4-band input (:mod:`geoseg.segment.warm`) and train at most ``warm_iterations``
        (and no more than ``max_iterations``), where those weights fit the network (the light
        net with texture bands and decorrelation, no scribbles); elsewhere training
        starts from random weights. Off in every preset: half the iterations, but mean ARI
        0.008 lower over the labelled images (docs/decisions/0021).
    min_labels
        Stop as soon as the argmax has at most this many distinct labels.
    stop_change
        Also stop once fewer than this share of the valid pixels' training targets
        changed in an iteration (0: never; 0 in every preset; docs/decisions/0018).
    similarity_weight
        Weight of the cross-entropy between scores and (refined) argmax target.
    continuity_weight
        Weight of the L1 spatial continuity loss on vertical and horizontal score
        differences (TIP 2020); 0 disables it.
    train_scale
        Train on a copy of the image resampled by this factor (1 = full resolution, 0.5
        = half the rows and columns), then predict at full resolution.
    refine_output
        Apply the superpixel majority vote to the final full-resolution labels too.
    texture_radius
        Also feed the network each band's local standard deviation over ``(2 r + 1)²``
        px (0: colour only; :class:`geoseg.segment.model.Texture`). It widens the
        receptive field by ``2 r``.
    texture_max_pixel
        ``geoseg run`` (and ``geoseg segment`` on a georeferenced raster) turns the
        texture bands off (``texture_radius`` 0, :meth:`for_pixel_size`) on a scene whose
        pixels are larger than this many metres: there the texture window (9 x 9 px in
        ``default``) spans several covers (260 m on Landsat), so its spread says
        little about any one.
        A scene without a CRS keeps them.
    scale
        Ground scale in metres: the width of the smallest land-cover patch that should be
        a class of its own (0: off). After training, a class whose pixels lie mostly
        among another class's within windows of ``scale`` metres (the shade between
        sunlit crowns, one face of a roof) is not a cover but part of a mixture, and
        joins the class that fills most of its windows
        (:func:`~geoseg.segment.spatial_merge.mix_merge_table`), until every class holds at
        least half of its own windows. ``geoseg run`` (and ``geoseg segment`` on a
        georeferenced raster) turns it into ``mix_radius`` from the scene's pixel size;
        on pixels wider than ``scale`` it does nothing, so decametre scenes keep their
        classes. With ``n_classes``, never below that many.
    mix_radius
        The ground scale in pixels: the half-width of the windows above (0: off). Set
        from ``scale`` for a georeferenced scene; set it directly for a picture without
        a CRS.
    decorrelate
        Strength of a partial decorrelation stretch of the bands in front of the network
        (0: off): each principal component of the training views' bands is scaled by
        ``(s / its standard deviation) ** decorrelate`` (``s`` the bands' root mean
        variance), so the colour of strongly correlated bands (a 20th to a 40th of the
        brightness's spread on the labelled Dubai tiles) reaches the 3x3 filters
        (:func:`geoseg.segment.model.decorrelation`). The map is measured once on the
        training views and travels with the model, so every tile sees the same one.
        Superpixels, the majority filter and the merges see the bands as stretched.
        Without ``n_classes`` only: with ``--classes K`` it lowered the labelled images'
        scores. 0.5 in ``default`` (mean mIoU on the labelled images 0.337 -> 0.361),
        0 in the other presets (docs/decisions/0006).
    n_crops, crop_size
        Scene mode (``geoseg run``): the network trains on ``n_crops`` crops of
        ``crop_size`` pixels square, spread over the scene's valid area.
    n_classes
        End with exactly this many classes (fewer only if the image has fewer): after
        training, the network's classes are merged hierarchically (Ward's criterion on
        prototypes of class probabilities, band means and texture,
        :mod:`geoseg.segment.merge`), decided once per scene. ``None``:
        the automatic choice, ``merge_share``.
    merge_share
        Without ``n_classes``: classes are merged while the cheapest merge raises the
        within-class sum of squares of those prototypes by less than this share of their
        total sum of squares (0: no merging, the network's own classes).
    merge_edge_sigma
        Before those merges, two classes whose shared boundary on the training views is
        no stronger than the views' median gradient (Gaussian gradient magnitude at this
        sigma in pixels) are joined, the weakest boundary first, with ``n_classes`` down
        to that many at most (0: off; 3 in ``default``, 0 in the other presets;
        :func:`~geoseg.segment.spatial_merge.edge_merge_table`). A boundary along which the
        picture does not change is a ramp (the depth of shallow water, the shading of a
        field), not an edge (docs/decisions/0007).
    smooth_sigma
        Majority filter on the labels, a spatial prior against speckle (0: none): each
        pixel takes the class of highest Gaussian-weighted vote (sigma in pixels) among
        its neighbours. It widens the receptive field by ``2 * smooth_radius(...)``.
    scribble_weight
        With scribbles (:func:`geoseg.segment.fit`'s ``scribbles``, ``geoseg run
        --scribbles``): weight of the cross-entropy between the scores and the scribbled
        classes on the scribbled pixels, beside the similarity loss on the others (TIP
        2020's scribble loss; 2, four times its step size of 0.5: over seeds 0-2 on the
        labelled images, named mIoU 0.334 -> 0.361, docs/decisions/0015).
    scribbles_only
        With scribbles: the classes are exactly the scribbled ones (each of the network's
        other classes joins the scribbled class most of its pixels score highest;
        :func:`geoseg.segment.merge.scribble_map`); ``False`` keeps those other classes
        beside them.
    scribble_context
        With scribbles and ``scribbles_only``: each pixel's class is that of a classifier
        fitted on the scribbled pixels over its bands, their means and spreads and the
        network's class shares around it, in place of the label smoothing
        (:mod:`geoseg.segment.strokes`; over seeds 0-2 on the labelled images, named
        mIoU 0.361 -> 0.405, docs/decisions/0022); ``False`` joins each network class
        whole, then smooths the labels.
    smooth_range
        Makes that filter edge-aware (0: plain Gaussian): a neighbour's vote is also
        weighted by ``exp(-d**2 / (2 * smooth_range**2))``, ``d`` the root mean square
        difference of the two pixels' stretched band values, so votes do not cross the
        image's edges (a joint bilateral filter on the labels). The neighbours are then
        sampled every ``ceil(smooth_sigma / 2)`` pixels up to ``2 * smooth_sigma``.
    """

    superpixels: SuperpixelMethod = "felzenszwalb"
    slic_n_segments: int = field(default=10000, metadata=_bounds(gt=0))
    slic_compactness: float = field(default=100.0, metadata=_bounds(ge=0))
    fz_scale: float = field(default=32.0, metadata=_bounds(gt=0))
    fz_sigma: float = field(default=0.5, metadata=_bounds(ge=0))
    fz_min_size: int = field(default=64, metadata=_bounds(ge=0))
    network: Network = "light"
    n_channels: int = field(default=32, metadata=_bounds(gt=0))
    n_conv: int = field(default=2, metadata=_bounds(gt=0))
    hidden_channels: int = field(default=64, metadata=_bounds(gt=0))
    optimizer: Optimizer = "adam"
    lr: float = field(default=0.02, metadata=_bounds(gt=0))
    momentum: float = field(default=0.9, metadata=_bounds(ge=0))
    max_iterations: int = field(default=24, metadata=_bounds(gt=0))
    warm_start: bool = False
    warm_iterations: int = field(default=12, metadata=_bounds(gt=0))
    min_labels: int = field(default=4, metadata=_bounds(ge=1, le="n_channels"))
    stop_change: float = field(
        default=0.0, metadata=_bounds(ge=0, lt=1, hint="0 never stops on it")
    )
    similarity_weight: float = field(default=1.0, metadata=_bounds(ge=0))
    continuity_weight: float = field(default=1.0, metadata=_bounds(ge=0))
    train_scale: float = field(
        default=1.0, metadata=_bounds(gt=0, le=1, hint="1 trains at full resolution")
    )
    refine_output: bool = True
    texture_radius: int = field(default=4, metadata=_bounds(ge=0))
    texture_max_pixel: float = field(default=5.0, metadata=_bounds(ge=0))
    scale: float = field(
        default=0.0,
        metadata=_bounds(
            ge=0, le=SCALE_MAX, unit="metres", hint="0 keeps the classes the network finds"
        ),
    )
    mix_radius: int = field(default=0, metadata=_bounds(ge=0))
    decorrelate: float = field(
        default=0.5,
        metadata=_bounds(
            ge=0,
            le=1,
            hint="0 leaves the bands as stretched, 1 is the full decorrelation stretch",
        ),
    )
    n_crops: int = field(default=16, metadata=_bounds(gt=0))
    crop_size: int = field(default=128, metadata=_bounds(ge=16, unit="pixels"))
    n_classes: int | None = field(
        default=None,
        metadata=_bounds(ge=1, le="n_channels", hint="leave it unset for the automatic choice"),
    )
    merge_share: float = field(
        default=0.0, metadata=_bounds(ge=0, lt=1, hint="0 keeps the network's classes")
    )
    merge_edge_sigma: float = field(default=3.0, metadata=_bounds(ge=0))
    smooth_sigma: float = field(default=5.0, metadata=_bounds(ge=0))
    smooth_range: float = field(default=0.17, metadata=_bounds(ge=0))
    scribble_weight: float = field(default=2.0, metadata=_bounds(ge=0))
    scribbles_only: bool = True
    scribble_context: bool = True

    def __post_init__(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(
                    f"segment.{name}={quote(value)} is not allowed; choose one of "
                    f"{', '.join(allowed)}"
                )
        for f in dataclasses.fields(self):
            problem = bound_error(f.name, getattr(self, f.name), self)
            if problem is not None:
                raise ConfigError(problem)
        if self.similarity_weight == 0 and self.continuity_weight == 0:
            raise ConfigError(
                "segment.similarity_weight and segment.continuity_weight are both 0; "
                "at least one loss must be on"
            )

    @property
    def merges(self) -> bool:
        """Whether the network's classes are merged after training (``n_classes``,
        ``merge_share`` or ``merge_edge_sigma``)."""
        return (
            self.n_classes is not None
            or self.merge_share > 0
            or self.merge_edge_sigma > 0
            or self.mix_radius > 0
        )

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the window that one output pixel sees (the tiling overlap's
        floor): the network's 3x3 convolutions plus the reach of the label smoothing.

        >>> PRESETS["kanezaki2018"].receptive_field, PRESETS["default"].receptive_field
        (5, 31)
        """
        n_3x3 = self.n_conv if self.network == "paper" else 2
        reach = n_3x3 + self.texture_radius + smooth_radius(self.smooth_sigma, self.smooth_range)
        return 1 + 2 * reach

    def for_pixel_size(self, metres: float | None) -> SegmentParams:
        """These parameters for a scene of ``metres`` pixels (``None``: no CRS): the
        ground scale in pixels (``mix_radius``, half of ``scale`` metres, where that is
        at least a pixel), and the texture bands off where a pixel is larger than
        ``texture_max_pixel``.

        >>> PRESETS["default"].for_pixel_size(30.0).texture_radius
        0
        >>> p = PRESETS["default"].replace(scale=10.0).for_pixel_size(0.5)
        >>> p.texture_radius, p.mix_radius
        (4, 10)
        """
        if metres is None:
            return self
        params = self
        radius = min(round(self.scale / (2 * metres)), MIX_RADIUS_MAX)
        if radius >= 1:
            params = params.replace(mix_radius=radius)
        if params.texture_radius == 0 or metres <= self.texture_max_pixel:
            return params
        return params.replace(texture_radius=0)

    def replace(self, **changes: Any) -> SegmentParams:
        """Return a copy with some fields changed (validated again).

        Unknown field names raise :class:`~geoseg.errors.ConfigError`.
        """
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown segment parameter(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of every field, e.g. to save beside an output."""
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in dataclasses.fields(SegmentParams)}


def smooth_radius(sigma: float, range_sigma: float = 0.0) -> int:
    """Pixels the label smoothing (``smooth_sigma``, ``smooth_range``) reaches on each
    side: ``ceil(3 sigma)`` for the plain Gaussian; for the edge-aware filter the
    farthest multiple of its step (:func:`smooth_step`) within ``2 sigma``.

    >>> smooth_radius(0.0), smooth_radius(1.5), smooth_radius(5.0, 0.17)
    (0, 5, 9)
    """
    if sigma <= 0:
        return 0
    if range_sigma <= 0:
        return math.ceil(3 * sigma)
    step = smooth_step(sigma)
    return step * math.floor(2 * sigma / step)


def smooth_step(sigma: float) -> int:
    """Spacing in pixels of the neighbours the edge-aware filter samples, ``ceil(sigma /
    2)``: on the labelled benchmark, 7 x 7 neighbours 3 px apart scored as all 21 x 21
    within 10 px did, for sigma 5 (docs/decisions/0004).

    >>> smooth_step(1.5), smooth_step(5.0)
    (1, 3)
    """
    return max(1, math.ceil(sigma / 2))


PRESETS: dict[str, SegmentParams] = {"default": SegmentParams()}
"""The named parameter sets. ``default`` is :class:`SegmentParams`'s own defaults: the
project's best, chosen with scripts/bench_quality.py over three seeds (docs/decisions/):
the fork's network and priors, Adam, 24 iterations on 16 crops of 128 px at full
resolution, TIP 2020's continuity loss beside the superpixel targets, an edge-aware
majority filter. Each other preset states only what it changes."""
# The popular fork of the 2018 code: Felzenszwalb priors, light 64/32 net, SGD, 64 iterations.
PRESETS["fork"] = PRESETS["default"].replace(
    optimizer="sgd",
    lr=0.05,
    max_iterations=64,
    n_crops=8,
    crop_size=256,
    continuity_weight=0.0,
    smooth_sigma=0.0,
    smooth_range=0.0,
    texture_radius=0,
    decorrelate=0.0,
    merge_edge_sigma=0.0,
)
# Kanezaki, ICASSP 2018: SLIC priors, 100-channel net, SGD lr 0.1, up to 1000 iterations.
PRESETS["kanezaki2018"] = PRESETS["fork"].replace(
    superpixels="slic",
    network="paper",
    n_channels=100,
    lr=0.1,
    max_iterations=1000,
    min_labels=3,
    refine_output=False,
)
# Kim, Kanezaki & Tanaka, IEEE TIP 2020: the same network and loop, similarity plus
# continuity loss, no superpixels.
PRESETS["tip2020"] = PRESETS["kanezaki2018"].replace(superpixels="none", continuity_weight=1.0)


def get_preset(name: str) -> SegmentParams:
    """Look a preset up by name; an unknown name lists the known ones.

    >>> get_preset("fork").network
    'light'
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {quote(name)}; choose one of: {', '.join(sorted(PRESETS))}"
        ) from None
