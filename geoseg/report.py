"""``report.html``: one self-contained page that sums up a run.

The page holds the quicklook (inlined as a ``data:`` URI) with a legend of the classes
(colour, id, area, share of the valid area), a histogram of segment sizes, the class
boundary density on tile seams against lines near them, per-stage timings, counts, the
resolved configuration and the package versions. Plain HTML with inline CSS and
hand-drawn SVG: it opens anywhere, offline, and loads nothing from elsewhere.

Everything is computed from the run's outputs on disk, a window at a time: label pixel
counts block by block, seam statistics from the rows and columns around each cut, and
only the ``n_pixels`` column of the vector layer.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import yaml
from rasterio.windows import Window

from geoseg.io.labels import class_counts
from geoseg.io.output import atomic_path
from geoseg.io.raster_read import SceneReader
from geoseg.io.vector import read_column
from geoseg.measure import pixel_area_m2
from geoseg.render import bars_svg, histogram_svg, palette
from geoseg.seams import SEAM_CONTROL, WindowReader, seam_boundary_ratio_windowed
from geoseg.types import class_name

if TYPE_CHECKING:  # the run's record, read here; the run imports this module
    from geoseg.run.record import RunRecord, VectorSummary

__all__ = ["REPORT", "SEAM_CONTROL", "write_report"]

logger = logging.getLogger(__name__)

REPORT = "report.html"
"""The report's file name inside a run's output directory."""

"""Control lines for the seam figures: parallel to a seam, 8 to 40 px away."""


def write_report(
    outdir: str | Path,
    record: RunRecord,
    *,
    row_cuts: npt.ArrayLike,
    col_cuts: npt.ArrayLike,
    vector_path: Path | None = None,
) -> Path:
    """Write ``OUTDIR/report.html`` from a run's outputs and its record.

    Parameters
    ----------
    outdir
        A run's output directory holding ``labels.tif`` and ``quicklook.png``.
    record
        The run's record (what ``run_scene`` writes as ``run.yaml``).
    row_cuts, col_cuts
        Tile seams (:func:`geoseg.tiling.seam_cuts`); both empty for a single tile.
    vector_path
        Where the vector layer is now, when not yet where the record says (a staged run).

    Returns
    -------
    Path
        The page, written under a temporary name and renamed.
    """
    outdir = Path(outdir)
    labels_path = outdir / "labels.tif"
    with SceneReader(labels_path, bands=[1]) as labels:
        info = labels.info

        def read(window: Window) -> npt.NDArray[np.int32]:
            return labels.read(window)[0][0].astype(np.int32) - 1  # -1: nodata

        seams = _seam_section(read, (info.height, info.width), row_cuts, col_cuts)
    counts = class_counts(labels_path)
    area = pixel_area_m2(info.transform, info.crs, (info.height, info.width))
    vector = record.vector
    sizes = None
    if vector is not None:
        vector_path = Path(vector.path) if vector_path is None else vector_path
        if not vector_path.is_absolute() and not vector_path.exists():
            vector_path = outdir / vector_path
        sizes = read_column(vector_path, "n_pixels")
    body = [
        _header(record, info.width, info.height, info.transform, info.crs),
        _counts_section(record, counts),
        _classes_section(
            outdir / "quicklook.png",
            counts,
            area,
            georeferenced=info.crs is not None,
            names=record.classes.names,
        ),
        _tree_section(record.classes.count, record.classes.tree),
        _sizes_section(sizes, vector),
        seams,
        _timings_section(record.timings_s),
        _config_section(record),
    ]
    page = _PAGE.format(
        title=_e(f"geoseg report: {Path(record.scene).name}"),
        css=_CSS,
        body="\n".join(body),
    )
    path = outdir / REPORT
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.debug("wrote %s", path)
    return path


# --- sections ---------------------------------------------------------------------------


def _header(record: RunRecord, width: int, height: int, transform: Any, crs: Any) -> str:
    scene = record.scene
    res_x, res_y = abs(transform.a), abs(transform.e)
    if crs is None:
        unit = " (pixel coordinates)"
    elif crs.is_geographic:
        unit = " degrees"
    else:
        unit = f" {crs.linear_units or 'map units'}"
    rows = [
        ("scene", scene),
        ("size", f"{width:,} x {height:,} px"),
        ("CRS", crs.to_string() if crs is not None else "none (pixel coordinates)"),
        ("pixel size", f"{res_x:g} x {res_y:g}{unit}"),
    ]
    return (
        f"<header><h1>geoseg run report</h1>"
        f"<p class=sub>{_e(Path(scene).name)}</p>{_kv_table(rows)}</header>"
    )


def _counts_section(record: RunRecord, counts: npt.NDArray[np.int64]) -> str:
    tiles, vector = record.tiles, record.vector
    total = record.timings_s.get("total")
    cards = [
        ("tiles", _int(tiles.total)),
        ("classes", f"{int(np.count_nonzero(counts[1:])):,}"),
        ("polygons", _int(vector.features) if vector is not None else "none"),
        ("valid pixels", f"{int(counts[1:].sum()):,}"),
        ("run time", f"{total:,.1f} s" if isinstance(total, int | float) else "-"),
    ]
    notes = []
    if tiles.skipped_nodata:
        notes.append(f"{_int(tiles.skipped_nodata)} tiles skipped (all nodata)")
    if tiles.resumed:
        notes.append(f"{_int(tiles.resumed)} tiles resumed from an interrupted run")
    cells = "".join(
        f"<div class=card><div class=num>{_e(value)}</div><div class=lab>{_e(label)}</div></div>"
        for label, value in cards
    )
    extra = f"<p class=note>{_e('; '.join(notes))}</p>" if notes else ""
    return f"<section><div class=cards>{cells}</div>{extra}</section>"


def _classes_section(
    quicklook: Path,
    counts: npt.NDArray[np.int64],
    pixel_m2: float,
    *,
    georeferenced: bool,
    names: Sequence[str] = (),
) -> str:
    if quicklook.is_file():
        data = base64.b64encode(quicklook.read_bytes()).decode("ascii")
        figure = (
            f'<figure><img alt="quicklook: the scene beside its classes" '
            f'src="data:image/png;base64,{data}">'
            "<figcaption>left: the scene in its colour bands; right: its classes "
            "(nodata black)</figcaption></figure>"
        )
    else:
        figure = f"<p class=note>no quicklook ({_e(quicklook.name)} is missing)</p>"
    valid = int(counts[1:].sum())
    colours = palette(max(256, counts.size))
    rows = []
    for k in np.flatnonzero(counts[1:]) + 1:
        r, g, b = (int(v) for v in colours[k])
        share = 100.0 * counts[k] / valid
        rows.append(
            f'<tr class=cls data-class="{k}">'
            f'<td><span class=sw style="background:rgb({r},{g},{b})"></span></td>'
            f"<td>{_e(class_name(int(k), names) or f'class {k}')}</td>"
            f"<td class=r>{_e(_area(counts[k] * pixel_m2, georeferenced))}</td>"
            f"<td class=r>{_e(f'{counts[k]:,}')}</td>"
            f"<td class=share>{_e(f'{share:.2f} %')}</td>"
            f'<td class=bar><span style="width:{share:.2f}%;background:rgb({r},{g},{b})">'
            "</span></td></tr>"
        )
    rows.append(
        "<tr class=tot><td></td><td>valid area</td>"
        f"<td class=r>{_e(_area(valid * pixel_m2, georeferenced))}</td>"
        f"<td class=r>{valid:,}</td><td class=share>100.00 %</td><td></td></tr>"
    )
    if counts[0]:
        rows.append(
            "<tr class=nod><td><span class=sw style='background:#000'></span></td>"
            "<td>nodata</td>"
            f"<td class=r>{_e(_area(counts[0] * pixel_m2, georeferenced))}</td>"
            f"<td class=r>{int(counts[0]):,}</td><td class=share>-</td><td></td></tr>"
        )
    legend = (
        "<table class=legend><thead><tr><th></th><th>class</th><th class=r>area</th>"
        "<th class=r>pixels</th><th class=r>share</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return f"<section><h2>Classes</h2>{figure}{legend}</section>"


def _tree_section(count: int, tree: list[list[int]]) -> str:
    """The classes' merge tree, cut by cut: which groups join at each step."""
    head = "<section><h2>Class tree</h2>"
    if not tree:
        return f"{head}<p class=note>no class tree in this run (tile mode, scribbled " \
            "classes, or a preset without class merging)</p></section>"  # fmt: skip
    groups = {k: [k] for k in range(1, count + 1)}
    rows = []
    for step, (a, b) in enumerate(tree, start=1):
        keep, drop = sorted((a, b))
        joined = sorted(groups[keep] + groups.pop(drop))
        groups[keep] = joined
        rows.append(
            f"<tr><td class=r>{count - step}</td>"
            f"<td>{_e(' + '.join(str(k) for k in joined))}</td></tr>"
        )
    table = (
        "<table><thead><tr><th class=r>classes</th><th>the classes one group holds after this cut "
        f"(labels.tif ids)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    note = (
        "<p class=note>Fewer, coarser classes without training again: "
        "<code>geoseg reclass RUN --classes K</code> joins the groups above, down to K.</p>"
    )
    return f"{head}{note}{table}</section>"


def _sizes_section(sizes: npt.NDArray[Any] | None, vector: VectorSummary | None) -> str:
    head = "<section><h2>Segment sizes</h2>"
    if sizes is None or vector is None:
        return (
            f"{head}<p class=note>no vector layer in this run (output.vector is off)</p></section>"
        )
    if sizes.size == 0:
        return f"{head}<p class=note>the vector layer has no polygons</p></section>"
    sizes = np.asarray(sizes, np.float64)
    stats = (
        f"{sizes.size:,} polygons in {Path(vector.path).name}; pixels per polygon: "
        f"median {np.median(sizes):,.0f}, mean {sizes.mean():,.1f}, largest {sizes.max():,.0f}"
    )
    return f"{head}<p>{_e(stats)}</p>{histogram_svg(sizes)}</section>"


def _seam_section(
    read: WindowReader, shape: tuple[int, int], row_cuts: npt.ArrayLike, col_cuts: npt.ArrayLike
) -> str:
    head = "<section><h2>Tile seams</h2>"
    rows_cut = np.asarray(row_cuts, np.int64).ravel()
    cols_cut = np.asarray(col_cuts, np.int64).ravel()
    if rows_cut.size == 0 and cols_cut.size == 0:
        return f"{head}<p class=note>one tile: no seams</p></section>"
    ratio, seam, near = seam_boundary_ratio_windowed(
        read, shape, row_cuts=rows_cut, col_cuts=cols_cut, control=SEAM_CONTROL
    )
    near_text = f"lines {SEAM_CONTROL[0]}-{SEAM_CONTROL[1]} px from a seam"
    table = _kv_table(
        [
            ("seams", f"{rows_cut.size} between tile rows, {cols_cut.size} between tile columns"),
            ("boundary density on seams", f"{seam:.4f}"),
            (f"boundary density on {near_text}", f"{near:.4f}"),
            ("ratio", "inf" if math.isinf(ratio) else f"{ratio:.3f}"),
        ]
    )
    scale = max(seam, near, 1e-12)
    bars = bars_svg(
        [("on seams", seam, "#d95f02"), ("near seams", near, "#1b9e77")],
        scale=scale,
        value_text=lambda v: f"{v:.4f}",
    )
    verdict = (
        "Share of 4-adjacent valid pixel pairs of different classes. A seamless mosaic has "
        "a ratio near 1; well above 1, the tiles show in the labels."
    )
    return f"{head}<p class=note>{_e(verdict)}</p>{table}{bars}</section>"


def _timings_section(timings: Mapping[str, Any]) -> str:
    head = "<section><h2>Timings</h2>"
    stages = [(str(k), float(v)) for k, v in timings.items() if k != "total"]
    if not stages:
        return f"{head}<p class=note>no timings recorded</p></section>"
    total = float(timings.get("total", sum(v for _, v in stages)))
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class=r>{seconds:,.2f}</td>"
        f"<td class=r>{100 * seconds / total if total > 0 else 0:.1f} %</td></tr>"
        for name, seconds in stages
    )
    table = (
        "<table class=data><thead><tr><th>stage</th><th class=r>seconds</th>"
        f"<th class=r>of total</th></tr></thead><tbody>{rows}"
        f"<tr class=tot><td>total</td><td class=r>{total:,.2f}</td><td class=r>100.0 %</td>"
        "</tr></tbody></table>"
    )
    bars = bars_svg(
        [(name, seconds, "#4c78a8") for name, seconds in stages],
        scale=max(max(v for _, v in stages), 1e-9),
        value_text=lambda v: f"{v:,.2f} s",
    )
    return f"{head}<div class=split>{table}{bars}</div></section>"


def _config_section(record: RunRecord) -> str:
    config = yaml.safe_dump(record.config, sort_keys=False)
    versions = record.versions
    source = record.classes.source
    parts = ["<section><h2>Configuration</h2>"]
    if source:
        parts.append(f"<p class=note>class ids: {_e(source)}</p>")
    parts.append(f"<pre>{_e(config)}</pre></section>")
    parts.append(
        "<section><h2>Versions</h2>"
        f"{_kv_table([(str(k), str(v)) for k, v in versions.items()])}</section>"
    )
    return "".join(parts)


# --- text -------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _int(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, int | float) else "-"


def _kv_table(rows: Iterable[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class=kv><tbody>{cells}</tbody></table>"


def _area(m2: float, georeferenced: bool) -> str:
    """An area in km² from 0.1 km² up, else m² (map units² without a CRS)."""
    if not georeferenced:
        return f"{m2:,.0f} units²"
    if m2 >= 1e5:
        return f"{m2 / 1e6:,.2f} km²"
    return f"{m2:,.0f} m²"


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1f2328;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { margin: 0; font-size: 24px; }
.sub { margin: 2px 0 12px; color: #57606a; font-size: 15px; }
section { background: #fff; border: 1px solid #d8dee4; border-radius: 8px;
  padding: 16px 20px; margin: 16px 0; }
h2 { margin: 0 0 12px; font-size: 17px; }
figure { margin: 0 0 14px; }
figure img { display: block; width: 100%; height: auto; max-height: 720px;
  object-fit: contain; object-position: left top; image-rendering: pixelated; }
figcaption, .note { color: #57606a; font-size: 13px; }
table { border-collapse: collapse; }
th, td { padding: 4px 10px; text-align: left; vertical-align: middle; }
.kv th { color: #57606a; font-weight: 500; padding-left: 0; }
.kv td { font-variant-numeric: tabular-nums; word-break: break-all; }
.legend, .data { font-variant-numeric: tabular-nums; }
.legend thead th, .data thead th { border-bottom: 1px solid #d8dee4; color: #57606a;
  font-weight: 500; }
.legend tbody tr:nth-child(even), .data tbody tr:nth-child(even) { background: #f6f8fa; }
.r, .share { text-align: right; }
.tot td { border-top: 1px solid #d8dee4; font-weight: 600; }
.nod td { color: #57606a; }
.sw { display: inline-block; width: 18px; height: 18px; border-radius: 3px;
  border: 1px solid rgba(0, 0, 0, .25); vertical-align: middle; }
.bar { width: 220px; }
.bar span { display: block; height: 10px; border-radius: 2px; min-width: 1px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { flex: 1 1 150px; background: #f6f8fa; border-radius: 6px; padding: 10px 14px; }
.card .num { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .lab { color: #57606a; font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.split { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
svg.chart { max-width: 100%; height: auto; font-size: 12px; fill: #1f2328; }
svg.chart text { fill: #1f2328; }
pre { background: #f6f8fa; border-radius: 6px; padding: 12px; overflow: auto;
  max-height: 480px; font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""
