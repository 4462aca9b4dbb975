"""geoseg's QGIS plugin: a Processing provider that runs the installed ``geoseg``
command. No segmentation happens here; see ``provider.py`` and ``algorithms.py``."""


def classFactory(iface):
    from .plugin import GeosegPlugin

    return GeosegPlugin(iface)
