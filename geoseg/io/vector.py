"""The only module that writes vector layers: batches of polygons to one file.

The format follows the extension: ``.gpkg`` GeoPackage, ``.shp`` ESRI Shapefile (with
``.prj`` and a UTF-8 ``.cpg``), ``.geojson`` GeoJSON, ``.fgb`` FlatGeobuf (through
GDAL, via pyogrio, appending batch by batch) and ``.parquet`` GeoParquet (pyarrow,
one row group per batch; geometry as WKB with the GeoParquet 1.1 ``geo`` metadata,
written here by hand because GDAL's Parquet driver is not in pyogrio's wheels).

Everything is written in a temporary folder beside the target and moved into place
only when :meth:`VectorWriter.close` succeeds; an error removes it. A GeoPackage also
gets a QGIS ``layer_styles`` table (categorized by ``class_id`` with the quicklook's
palette, so QGIS opens it coloured) and provenance in its metadata tables
(``gpkg_metadata``, through GDAL's layer metadata).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np
import numpy.typing as npt
import shapely

from geoseg.errors import InputError, OutputError
from geoseg.io.output import check_output
from geoseg.render import palette
from geoseg.types import class_name

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["DRIVERS", "VectorWriter", "class_colours", "layer_files", "qgis_style", "read_column"]

DRIVERS = {
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".geojson": "GeoJSON",
    ".fgb": "FlatGeobuf",
    ".parquet": "GeoParquet",
}
"""Vector formats by extension."""

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")
"""The files of one Shapefile layer, named by its stem."""


def layer_files(path: str | os.PathLike[str]) -> list[Path]:
    """The existing files of the layer (or any file) at ``path``: a Shapefile's parts,
    else the file itself.

    >>> layer_files("/nonexistent/a.shp")
    []
    """
    path = Path(path)
    parts = SHAPEFILE_PARTS if path.suffix.lower() == ".shp" else (path.suffix,)
    return [p for p in (path.with_suffix(s) for s in parts) if p.is_file()]


class VectorWriter:
    """Append GeoDataFrame batches to one vector file, published whole at the end.

    Parameters
    ----------
    path
        Target file; its extension picks the format (:data:`DRIVERS`).
    layer
        Layer name where the format has layers (GeoPackage).
    to_crs
        Reproject every batch to this CRS (e.g. ``"EPSG:4326"``) before writing.
    metadata
        Provenance written into a GeoPackage's metadata tables.
    style
        A GeoPackage gets a default QGIS style: ``class_id`` categories coloured by
        :func:`geoseg.render.palette` (the quicklook's colours).

    Examples
    --------
    ::

        with VectorWriter("out/segments.gpkg") as out:
            for batch in vectorize(...):
                out.write(batch)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        layer: str = "segments",
        to_crs: str | None = None,
        metadata: Mapping[str, str] | None = None,
        style: bool = True,
        names: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        self.names = tuple(names)  # class k's name in the QGIS style: names[k - 1]
        suffix = self.path.suffix.lower()
        if suffix not in DRIVERS:
            raise OutputError(
                f"{self.path}: unknown vector format {suffix or '(no extension)'!r}; "
                f"use one of {', '.join(DRIVERS)}"
            )
        check_output(self.path)  # the directory exists and is writable
        self.driver = DRIVERS[suffix]
        self.layer = layer
        self.to_crs = to_crs
        self.metadata = dict(metadata or {})
        self.style = style
        self.count = 0
        self._classes: set[int] = set()
        self._tmpdir = self.path.parent / f".{self.path.name}.part-{os.getpid()}"
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir.mkdir()
        self._tmp = self._tmpdir / self.path.name
        self._parquet: Any = None
        self._closed = False

    def __enter__(self) -> VectorWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, batch: gpd.GeoDataFrame) -> None:
        """Append one batch of features (the first one sets the columns)."""
        import pyogrio  # here, not at import: pandas and a second GDAL, ~90 MB of RSS

        if self.to_crs is not None:
            if batch.crs is None:
                raise OutputError(
                    f"{self.path}: cannot reproject to {self.to_crs}: the polygons have no "
                    "CRS (the scene has none); drop --to-crs"
                )
            batch = batch.to_crs(self.to_crs)
        try:
            if self.driver == "GeoParquet":
                self._write_parquet(batch)
            else:
                first = self.count == 0 and not self._tmp.exists()
                options: dict[str, Any] = {}
                if self.driver == "ESRI Shapefile":
                    options["layer_options"] = {"ENCODING": "UTF-8"}  # writes the .cpg
                if first and self.driver == "GPKG":
                    # 1.2: what GDAL < 3.7 and older QGIS read without a warning
                    options["dataset_options"] = {"VERSION": "1.2"}
                    if self.metadata:
                        options["layer_metadata"] = self.metadata
                pyogrio.write_dataframe(
                    batch,
                    self._tmp,
                    layer=None if self.driver == "ESRI Shapefile" else self.layer,
                    driver=self.driver,
                    append=not first,
                    promote_to_multi=False,
                    **options,
                )
        except (OSError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as err:
            self.abort()
            raise OutputError(f"{self.path}: cannot be written ({err})") from err
        self.count += len(batch)
        if "class_id" in batch:
            self._classes.update(int(c) for c in np.unique(batch["class_id"]))

    def close(self) -> None:
        """Finish the file (style, metadata) and move it into place."""
        if self._closed:
            return
        try:
            if self._parquet is not None:
                self._parquet.close()
            elif not self._tmp.exists():  # no feature at all: an empty layer
                import geopandas as gpd

                self.write(gpd.GeoDataFrame(geometry=[], crs=None))
            if self.driver == "GPKG" and self.style:
                self._write_style()
            for part in sorted(self._tmpdir.iterdir()):
                part.replace(self.path.parent / part.name)
        except OSError as err:
            self.abort()
            raise OutputError(f"{self.path}: cannot be written ({err})") from err
        finally:
            if not self._closed:
                self._closed = True
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    def abort(self) -> None:
        """Drop everything written so far (idempotent)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        self._closed = True
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _write_parquet(self, batch: gpd.GeoDataFrame) -> None:
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(
            pd.DataFrame(batch.drop(columns=batch.geometry.name)), preserve_index=False
        )
        wkb = shapely.to_wkb(np.asarray(batch.geometry.values, dtype=object))
        table = table.append_column("geometry", pa.array(list(wkb), pa.binary()))
        if self._parquet is None:
            crs = None if batch.crs is None else batch.crs.to_json_dict()
            types = sorted(set(batch.geom_type.dropna())) or ["Polygon"]
            geo = {
                "version": "1.1.0",
                "primary_column": "geometry",
                "columns": {"geometry": {"encoding": "WKB", "geometry_types": types, "crs": crs}},
            }
            schema = table.schema.with_metadata({"geo": json.dumps(geo)})
            self._parquet = pq.ParquetWriter(self._tmp, schema)
        self._parquet.write_table(table.cast(self._parquet.schema))

    def _write_style(self) -> None:
        import pandas as pd
        import pyogrio

        classes = sorted(self._classes)
        colours = class_colours(classes, palette(max(classes, default=0) + 1))
        info = pyogrio.read_info(self._tmp, layer=self.layer)
        styles = pd.DataFrame(
            {
                "f_table_catalog": [""],
                "f_table_schema": [""],
                "f_table_name": [self.layer],
                "f_geometry_column": [info["geometry_name"] or "geom"],
                "styleName": ["geoseg classes"],
                "styleQML": [qgis_style(colours, self.names)],
                "styleSLD": [""],
                "useAsDefault": [True],
                "description": ["class_id coloured as geoseg's quicklook"],
                "owner": [""],
                "ui": [""],
                "update_time": [datetime.datetime.now(datetime.timezone.utc)],
            }
        )
        pyogrio.write_dataframe(
            styles, self._tmp, layer="layer_styles", driver="GPKG", layer_options={"FID": "id"}
        )


def qgis_style(colours: Mapping[int, tuple[int, int, int]], names: Sequence[str] = ()) -> str:
    """A QGIS layer style (QML): fills categorized by ``class_id`` with these colours,
    labelled ``class k`` or, for ``k <= len(names)``, ``names[k - 1]``.

    >>> '<category value="3" label="class 3"' in qgis_style({3: (255, 0, 0)})
    True
    >>> '<category value="1" label="water"' in qgis_style({1: (0, 0, 255)}, ["water"])
    True
    """
    categories, symbols = [], []
    for i, (value, rgb) in enumerate(sorted(colours.items())):
        colour = ",".join(str(int(v)) for v in rgb) + ",255"
        label = quoteattr(class_name(value, names) or f"class {value}")
        categories.append(f'<category value="{value}" label={label} symbol="{i}" render="true"/>')
        props = {
            "color": colour,
            "outline_color": "35,35,35,255",
            "outline_width": "0.1",
            "outline_width_unit": "MM",
            "style": "solid",
            "outline_style": "solid",
        }
        options = "".join(
            f'<Option type="QString" name="{k}" value={quoteattr(v)}/>' for k, v in props.items()
        )
        legacy = "".join(f'<prop k="{k}" v={quoteattr(v)}/>' for k, v in props.items())
        symbols.append(
            f'<symbol type="fill" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" pass="0" locked="0">'
            f'<Option type="Map">{options}</Option>{legacy}</layer></symbol>'
        )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="Symbology">'
        '<renderer-v2 type="categorizedSymbol" attr="class_id" symbollevels="0" '
        'enableorderby="0" forceraster="0">'
        f"<categories>{''.join(categories)}</categories>"
        f"<symbols>{''.join(symbols)}</symbols>"
        "</renderer-v2></qgis>\n"
    )


def class_colours(
    classes: npt.ArrayLike, palette: npt.NDArray[np.uint8]
) -> dict[int, tuple[int, int, int]]:
    """``{class_id: (r, g, b)}`` from a palette indexed by class id."""
    return {
        int(c): (int(palette[c][0]), int(palette[c][1]), int(palette[c][2]))
        for c in np.asarray(classes).ravel()
    }


def read_column(
    path: str | os.PathLike[str], column: str, *, layer: str = "segments"
) -> npt.NDArray[Any]:
    """One attribute of every feature of a vector file (no geometry read), e.g. the
    ``n_pixels`` of a run's segments; ``layer`` applies to a GeoPackage only.

    >>> import tempfile, geopandas as gpd
    >>> path = Path(tempfile.mkdtemp()) / "s.gpkg"
    >>> boxes = [shapely.box(0, 0, 1, 1)] * 2
    >>> frame = gpd.GeoDataFrame({"n_pixels": [3, 5]}, geometry=boxes, crs="EPSG:32618")
    >>> with VectorWriter(path) as out:
    ...     out.write(frame)
    >>> read_column(path, "n_pixels").tolist()
    [3, 5]
    """
    path = Path(path)
    driver = DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InputError(f"{path}: unknown vector format; use one of {', '.join(DRIVERS)}")
    if not path.is_file():
        raise InputError(f"{path}: no such vector file; check the path")
    import pyogrio

    try:
        if driver == "GeoParquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path, columns=[column])
            return np.asarray(table.column(column).to_numpy())
        frame = pyogrio.read_dataframe(
            path,
            layer=layer if driver == "GPKG" else None,
            columns=[column],
            read_geometry=False,
        )
    except (OSError, KeyError, ValueError, pyogrio.errors.DataSourceError) as err:
        raise InputError(f"{path}: cannot read column {column!r} ({err})") from err
    if column not in frame:
        raise InputError(f"{path}: no column {column!r}; it has {list(frame.columns)}")
    return frame[column].to_numpy()
