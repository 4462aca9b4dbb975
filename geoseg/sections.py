"""The run configuration's typed sections: every key, its default, bounds and meaning.

:class:`Config` holds one section per stage; :mod:`geoseg.config` resolves it from the
defaults, a preset, YAML and ``--set`` lines. Unknown keys are refused.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    create_model,
    model_validator,
)

from geoseg.errors import ConfigError, quote
from geoseg.segment.params import SEED_MAX, SegmentParams, get_preset
from geoseg.segment.schema import bound_message, param_fields
from geoseg.tiling import check_tiling

__all__ = [
    "VECTOR_SUFFIXES",
    "Config",
    "InputSection",
    "NormalizeSection",
    "OutputSection",
    "RuntimeSection",
    "SegmentSection",
    "StitchSection",
    "TilingSection",
    "VectorizeSection",
    "dir_template",
]


class _Section(BaseModel):
    # inf and nan are no setting's value (an lr of 1e100000 read as inf trained to nan)
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


class InputSection(_Section):
    """What is read from the scene."""

    bands: list[Annotated[int, Field(ge=1)]] = Field(
        default=[],
        fail_fast=True,  # one error for a list, not one per item
        description="1-based bands to read, in order, e.g. [4, 3, 2]; [] reads every band "
        "but alpha.",
    )
    nodata: float | None = Field(
        default=None,
        allow_inf_nan=True,  # -inf fills some float rasters
        description="Value marking nodata, overriding the file's; null uses the file's "
        "nodata, mask or alpha. NaN is always nodata.",
    )
    assets: list[str] = Field(
        default=[],
        fail_fast=True,  # one error for a list, not one per item
        description="A STAC item scene: its band assets to read, in order, by key (B04) or "
        "common band name (red); they are stacked on one grid.",
    )
    resolution: float | None = Field(
        default=None,
        gt=0,
        description="A STAC item scene: the grid's pixel size in CRS units; null: the "
        "finest of the assets'.",
    )


class NormalizeSection(_Section):
    """Scene-wide, nodata-aware per-band percentile stretch."""

    low_percentile: float = Field(default=2.0, ge=0, lt=100, description="Lower bound.")
    high_percentile: float = Field(default=98.0, gt=0, le=100, description="Upper bound.")
    stats_pixels: int = Field(
        default=1_000_000,
        ge=10_000,
        description="Pixels of the decimated read (or overview) the statistics and the "
        "training crops are drawn from.",
    )

    @model_validator(mode="after")
    def _check(self) -> NormalizeSection:
        if self.low_percentile >= self.high_percentile:
            raise ValueError(
                f"normalize.low_percentile={self.low_percentile} must be below "
                f"normalize.high_percentile={self.high_percentile}"
            )
        return self


class TilingSection(_Section):
    """How the scene is cut for prediction (and, in tile mode, for training)."""

    tile_size: int = Field(default=512, ge=16, description="Tile side in pixels.")
    overlap: int = Field(
        default=32,
        ge=0,
        description="Pixels shared by neighbouring tiles; at least the network's receptive field.",
    )

    @model_validator(mode="after")
    def _check(self) -> TilingSection:
        try:
            check_tiling(self.tile_size, self.overlap)
        except ConfigError as err:
            raise ValueError(str(err)) from None
        return self


class _SegmentBase(_Section):
    """The segmentation parameters (every field of SegmentParams) and how they are used."""

    preset: str = Field(
        default="default",
        description="Parameter set the other segment keys start from: default, fork, "
        "kanezaki2018, tip2020.",
    )
    mode: Literal["scene", "tile"] = Field(
        default="scene",
        description="scene: one network trained on crops from the whole scene, applied to "
        "every tile (class ids mean the same everywhere). tile: each tile trained on its "
        "own as in the paper, then aligned to scene classes by the stitcher.",
    )
    scribbles: str | None = Field(
        default=None,
        description="Vector file of strokes (points, lines, polygons; any CRS and OGR "
        "format) that name the classes (TIP 2020 scribbles; scene mode). --scribbles.",
    )
    scribble_field: str = Field(
        default="class",
        description="The scribble layer's field holding each stroke's class name or number. "
        "--scribble-field.",
    )
    scribble_width: float = Field(
        default=0.0,
        ge=0,
        description="Width in metres that lines and points of the scribble layer are burnt "
        "with (0: the pixels they touch).",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _fill_from_preset(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """The preset's values under the given ones; a value out of its bounds is
        reported with :class:`SegmentParams`'s own one-line message."""
        if not isinstance(data, Mapping):
            return handler(data)
        preset = data.get("preset", "default")
        try:
            values = {**get_preset(str(preset)).to_dict(), **data}
        except ConfigError as err:
            raise ValueError(f"segment.preset: {err}") from None
        try:
            return handler(values)
        except ValidationError as err:
            message = bound_message(err, values)
            if message is None:
                raise
            raise ValueError(message) from None

    @model_validator(mode="after")
    def _check_params(self) -> _SegmentBase:
        try:
            params = self.params()
        except ConfigError as err:
            raise ValueError(str(err)) from None
        if self.scribbles is not None and self.mode != "scene":
            raise ValueError(
                "segment.scribbles needs segment.mode scene (one network for the scene)"
            )
        if self.scribbles is not None and params.train_scale != 1:
            raise ValueError("segment.scribbles needs segment.train_scale 1")
        return self

    def params(self) -> SegmentParams:
        """The :class:`SegmentParams` these settings describe."""
        names = {f.name for f in dataclasses.fields(SegmentParams)}
        return SegmentParams(**{k: v for k, v in self.model_dump().items() if k in names})


if TYPE_CHECKING:
    SegmentSection = _SegmentBase
else:
    SegmentSection = create_model(
        "SegmentSection", __base__=_SegmentBase, __doc__=_SegmentBase.__doc__, **param_fields()
    )


class StitchSection(_Section):
    """How tiles become one label raster."""

    refine: bool = Field(
        default=False,
        description="Superpixel majority vote on the stitched labels (either mode): "
        "Felzenszwalb superpixels (segment.fz_*) on blocks of refine_block pixels read "
        "with refine_margin pixels of context, so superpixels crossing a block edge come "
        "out alike on both sides and no seam appears. Removes boundary speckle; costs a "
        "second read of the scene.",
    )
    refine_block: int = Field(
        default=512,
        ge=64,
        description="Side of the blocks the superpixel vote works on; memory grows with "
        "(refine_block + 2 refine_margin)^2, about 360 B a pixel for 4 bands.",
    )
    refine_margin: int = Field(
        default=192,
        ge=0,
        description="Context read around each block of the superpixel vote; it must exceed "
        "the reach of most superpixels (on the Sentinel-2 test scene 64 and 128 px left "
        "seams, 192 and 256 px gave identical output whatever the block size).",
    )

    min_vote_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Tile mode: a tile label takes the scene class that covers at least "
        "this share of its pixels in the overlap with tiles already placed.",
    )
    max_vote_distance: float = Field(
        default=0.25,
        gt=0,
        description="Tile mode: a vote counts only when the label's mean stretched band "
        "values lie within this distance (RMS over bands, 0-1 units) of the voted class's "
        "mean, so one tile's merge of two classes does not spread.",
    )
    max_feature_distance: float = Field(
        default=0.1,
        gt=0,
        description="Tile mode: a label without such a vote takes the scene class whose "
        "mean is nearest when within this distance; otherwise it starts a new scene class.",
    )


class VectorizeSection(_Section):
    """Label raster -> polygons (``geoseg.vectorize``)."""

    min_area: float = Field(
        default=16.0,
        ge=0,
        description="Segments smaller than this (in min_area_unit) are merged into their "
        "most similar neighbour before vectorizing, and labels.tif follows (the default, "
        "a 4x4-pixel minimum mapping unit, leaves no speckle); 0: keep all.",
    )
    min_area_unit: Literal["pixels", "m2"] = Field(
        default="pixels", description="Unit of min_area: pixels or m2 (square metres)."
    )
    simplify: float = Field(
        default=0.0,
        ge=0,
        description="Douglas-Peucker tolerance in pixels; neighbours keep their shared "
        "edges. 0: exact pixel edges.",
    )
    block_size: int = Field(
        default=1024, ge=64, description="Side of the blocks polygonized at a time (memory)."
    )
    to_crs: str | None = Field(
        default=None,
        description="Reproject the vector layer, e.g. EPSG:4326; null: the scene's CRS.",
    )

    @model_validator(mode="after")
    def _check(self) -> VectorizeSection:
        if self.to_crs is not None:
            from pyproj import CRS  # not GDAL's: it prints an "ERROR 1" line of its own
            from pyproj.exceptions import CRSError

            try:
                CRS.from_user_input(self.to_crs)
            except CRSError:
                raise ValueError(
                    f"vectorize.to_crs={quote(self.to_crs)}: not a CRS GDAL knows; use e.g. "
                    "EPSG:4326"
                ) from None
        return self


VECTOR_SUFFIXES = (".gpkg", ".shp", ".geojson", ".fgb", ".parquet")


class OutputSection(_Section):
    """Where and what is written."""

    vector: str | None = Field(
        default="segments.gpkg",
        description="Vector layer, in the output directory unless absolute; the extension "
        "picks the format: .gpkg, .shp, .geojson, .fgb or .parquet. null: none.",
    )

    display_bands: list[Annotated[int, Field(ge=1)]] = Field(
        default=[],
        fail_fast=True,  # one error for a list, not one per item
        description="File bands shown as red, green, blue in quicklook.png; []: the "
        "file's colour interpretation or band descriptions, else the first three bands "
        "read.",
    )

    snapshots: list[Annotated[int, Field(ge=1)]] = Field(
        default=[],
        fail_fast=True,  # one error for a list, not one per item
        description="Training iterations shown in training.gif (the label map of the "
        "first training crop, or of the first tile in tile mode), e.g. [1, 2, 4, 8, 16]; "
        "[]: no animation.",
    )
    dir: str | None = Field(
        default=None,
        description="Output directory; {stem} is replaced by the scene's name without "
        "suffix. null: <scene folder>/{stem}_geoseg.",
    )

    @model_validator(mode="after")
    def _check(self) -> OutputSection:
        if self.vector is not None and Path(self.vector).suffix.lower() not in VECTOR_SUFFIXES:
            raise ValueError(
                f"output.vector={quote(self.vector)}: unknown format; use a file name ending in "
                f"{', '.join(VECTOR_SUFFIXES)}, or null for no vector layer"
            )
        if self.dir is not None:
            dir_template(self.dir)
        return self


def dir_template(template: str) -> list[tuple[str, bool]]:
    """``output.dir`` as its pieces: ``(text, True)`` where the scene's stem goes.

    Only a plain ``{stem}`` is a field: no other name, index, conversion or format spec
    (``{stem:>2000000000}`` would build a 2 GB name); ``{{`` and ``}}`` are braces.

    >>> dir_template("out/{stem}_{{x}}")
    [('out/', False), ('', True), ('_{x}', False)]
    """
    where = f"output.dir={quote(template)}"
    if "\0" in template:
        raise ValueError(f"{where}: contains a NUL character, which no path may hold")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:  # a lone brace
        raise ValueError(
            f"{where}: {err}; only {{stem}} may be used, {{{{ and }}}} for a literal brace"
        ) from None
    pieces: list[tuple[str, bool]] = []
    for text, field, spec, conversion in parsed:
        if text and pieces and not pieces[-1][1]:  # "a{{b" comes as "a{", "b"
            pieces[-1] = (pieces[-1][0] + text, False)
        elif text:
            pieces.append((text, False))
        if field is None:
            continue
        if field != "stem" or spec or conversion is not None:
            written = (
                f"{{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            )
            raise ValueError(
                f"{where}: only {{stem}} may be used, not {quote(written)}; write {{{{ and }}}} "
                "for a literal brace"
            )
        pieces.append(("", True))
    return pieces


class RuntimeSection(_Section):
    """Where and how the work runs."""

    seed: int = Field(
        default=0,
        ge=0,
        le=SEED_MAX,
        description=f"Seeds the crops and the network: 0 to {SEED_MAX} (2**32 - 1).",
    )
    device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto (CUDA when available), cpu, cuda or cuda:N.",
    )
    precision: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="Scene mode's prediction on the CPU: bfloat16 runs the network in "
        "bfloat16 (about twice as fast on CPUs with AMX or AVX-512 BF16; labels can differ "
        "where two classes nearly tie); float32 on a CPU without bfloat16 support.",
    )
    executor: Literal["local", "dask"] = Field(
        default="local",
        description="local: this machine (geoseg batch: --workers processes). dask: a "
        "dask.distributed cluster (pip install 'geoseg[dask]'); geoseg batch runs each "
        "scene as a task, geoseg run labels the tiles of its scene as tasks.",
    )
    address: str | None = Field(
        default=None,
        description="Dask scheduler to connect to, e.g. tcp://host:8786; null: start a "
        "LocalCluster of geoseg batch's --workers processes (geoseg run: runtime.workers).",
    )
    workers: int = Field(
        default=2,
        ge=1,
        description="geoseg run with executor dask and no address: worker processes of "
        "the LocalCluster that labels the tiles (geoseg batch: --workers).",
    )
    gdal_cache_mb: int = Field(
        default=256,
        ge=16,
        description="GDAL block cache during a run. It must hold one row of blocks (a "
        "20000-column, 4-band uint16 scene needs 160 MB) or reads repeat.",
    )
    gdal_options: dict[str, str] = Field(
        default_factory=dict,
        description="GDAL configuration options for the run, over geoseg's defaults for "
        "remote scenes (geoseg.io.gdal_env.REMOTE_OPTIONS), e.g. GDAL_HTTP_MAX_RETRY: '5', "
        "AWS_NO_SIGN_REQUEST: 'YES', GDAL_HTTP_HEADERS: 'Authorization: Bearer ...'.",
    )


class Config(_Section):
    """Everything a run needs, section by section."""

    input: InputSection = InputSection()
    normalize: NormalizeSection = NormalizeSection()
    tiling: TilingSection = TilingSection()
    segment: SegmentSection = SegmentSection()
    stitch: StitchSection = StitchSection()
    vectorize: VectorizeSection = VectorizeSection()
    output: OutputSection = OutputSection()
    runtime: RuntimeSection = RuntimeSection()

    @model_validator(mode="after")
    def _check(self) -> Config:
        field = self.segment.params().receptive_field
        if self.tiling.overlap < field:
            raise ValueError(
                f"tiling.overlap={self.tiling.overlap} must be at least the network's "
                f"receptive field ({field} px) so that tiles join without seams"
            )
        return self
