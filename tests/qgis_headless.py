"""Run by Debian's python3 (PyQGIS) from ``tests/test_qgis.py``: the plugin's
``geoseg:run`` in a headless QGIS, as the toolbox runs it. Prints one JSON line.

``cancel``: cancelled once geoseg reports progress, as the Cancel button does; says
whether it was cancelled, the progress seen and the results.
``load``: run to the end, then each layer QGIS would load on completion is loaded and
post-processed as the toolbox does; says each layer's renderer and its classes.

    python3 tests/qgis_headless.py cancel|load PLUGIN_FOLDER SCENE OUTDIR [KEY=VALUE ...]
"""

from __future__ import annotations

import json
import sys

from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

app = QgsApplication([], False)
app.initQgis()
mode, plugins, scene, outdir = sys.argv[1:5]
sys.path[:0] = ["/usr/share/qgis/python/plugins", plugins]
from geoseg_processing.provider import GeosegProvider  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402

Processing.initialize()
provider = GeosegProvider()  # kept: the registry does not own the Python object
QgsApplication.processingRegistry().addProvider(provider)
algorithm = QgsApplication.processingRegistry().createAlgorithmById("geoseg:run")
parameters = {"INPUT": scene, "OUTPUT": outdir}
parameters.update(arg.split("=", 1) for arg in sys.argv[5:])
feedback = QgsProcessingFeedback()
progress: list[float] = []


def on_progress(value: float) -> None:
    progress.append(value)
    if mode == "cancel" and value > 0 and not feedback.isCanceled():
        feedback.cancel()


feedback.progressChanged.connect(on_progress)
context = QgsProcessingContext()
context.setProject(QgsProject.instance())
results, ok = algorithm.run(parameters, context, feedback)
said = {"cancelled": feedback.isCanceled(), "ok": ok, "results": results, "progress": progress}
if mode == "load":
    layers = {}
    for path, details in context.layersToLoadOnCompletion().items():
        raster = path.endswith(".tif")
        layer = QgsRasterLayer(path, details.name) if raster else QgsVectorLayer(path, details.name)
        if details.postProcessor() is not None:
            details.postProcessor().postProcessLayer(layer, context, feedback)
        renderer = layer.renderer()
        if raster:
            classes = [(int(c.value), c.label, c.color.name()) for c in renderer.classes()]
        else:
            classes = [(int(c.value()), c.label(), c.symbol().color().name())
                       for c in renderer.categories()]  # fmt: skip
        layers[details.outputName] = {"valid": layer.isValid(), "renderer": renderer.type(),
                                      "classes": classes}  # fmt: skip
        del renderer, layer  # before QGIS exits: a layer outliving it crashes the exit
    said["layers"] = layers
print(json.dumps(said))
app.exitQgis()
