"""The plugin object QGIS loads: it registers the provider in the Processing registry
(also under ``qgis_process``, which calls ``initProcessing``)."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import GeosegProvider


class GeosegPlugin:
    def __init__(self, iface: object) -> None:
        self.iface = iface
        self.provider: GeosegProvider | None = None

    def initProcessing(self) -> None:
        if self.provider is None:
            self.provider = GeosegProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
