"""Screenshots for the README, taken in a real QGIS under Xvfb with Debian's PyQGIS:
the geoseg:run dialog, and a run's outputs loaded as QGIS loads them (the label
raster with its colour table, the GeoPackage with its own default style) over the
scene. Run by Debian's python3, geoseg on PATH:

    xvfb-run -s "-screen 0 1400x900x24" python3 scripts/qgis_screenshots.py SCENE RUN_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer

ROOT = Path(__file__).resolve().parents[1]
app = QgsApplication([], True)
app.initQgis()
sys.path[:0] = ["/usr/share/qgis/python/plugins", str(ROOT / "qgis_plugin")]
from geoseg_processing.algorithms import show_classes  # noqa: E402
from geoseg_processing.provider import GeosegProvider  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402
from processing.gui.AlgorithmDialog import AlgorithmDialog  # noqa: E402
from qgis.core import QgsLayerTreeModel  # noqa: E402
from qgis.gui import QgsLayerTreeMapCanvasBridge, QgsLayerTreeView, QgsMapCanvas  # noqa: E402
from qgis.PyQt.QtWidgets import QHBoxLayout, QWidget  # noqa: E402

scene, run_dir, out = (Path(a) for a in sys.argv[1:4])
out.mkdir(parents=True, exist_ok=True)
Processing.initialize()
provider = GeosegProvider()
QgsApplication.processingRegistry().addProvider(provider)

project = QgsProject.instance()
layers = [
    QgsVectorLayer(f"{run_dir / 'segments.gpkg'}|layername=segments", "geoseg segments", "ogr"),
    QgsRasterLayer(str(run_dir / "labels.tif"), "geoseg labels"),
    QgsRasterLayer(str(scene), "scene"),
]
for layer in layers:
    assert layer.isValid(), layer.name()
show_classes(layers[1], yaml.safe_load((run_dir / "run.yaml").read_text())["classes"]["count"])
project.addMapLayers(layers, False)
for layer in layers:  # top to bottom
    project.layerTreeRoot().addLayer(layer)
project.layerTreeRoot().findLayer(layers[0].id()).setItemVisibilityChecked(False)  # the labels show

algorithm = QgsApplication.processingRegistry().createAlgorithmById("geoseg:run")
dialog = AlgorithmDialog(algorithm)
if hasattr(dialog, "setParameters"):
    dialog.setParameters({"INPUT": layers[2].id(), "CLASSES": 6})
dialog.resize(900, 760)
dialog.show()
for _ in range(20):
    app.processEvents()
dialog.grab().save(str(out / "qgis_run_dialog.png"))
dialog.close()

window = QWidget()
row = QHBoxLayout(window)
tree = QgsLayerTreeView()
model = QgsLayerTreeModel(project.layerTreeRoot())  # kept: the view does not own it
tree.setModel(model)
tree.setFixedWidth(260)
canvas = QgsMapCanvas()
bridge = QgsLayerTreeMapCanvasBridge(project.layerTreeRoot(), canvas)
row.addWidget(tree)
row.addWidget(canvas)
window.resize(1200, 760)
window.show()
canvas.setDestinationCrs(layers[2].crs())
canvas.setExtent(layers[2].extent())
canvas.refresh()
canvas.waitWhileRendering()
for _ in range(20):
    app.processEvents()
canvas.waitWhileRendering()
window.grab().save(str(out / "qgis_result.png"))
print(out / "qgis_run_dialog.png", out / "qgis_result.png")
app.exitQgis()
