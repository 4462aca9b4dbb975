"""The "geoseg" Processing provider: its algorithms and its one setting, the path of
the geoseg command (empty: ``geoseg`` on PATH), as the OTB provider has its folder."""

from __future__ import annotations

from processing.core.ProcessingConfig import ProcessingConfig, Setting
from qgis.core import QgsProcessingProvider

from .algorithms import EvaluateAlgorithm, PlanAlgorithm, RunAlgorithm, VectorizeAlgorithm

COMMAND_SETTING = "GEOSEG_COMMAND"


def configured_command() -> str:
    """The provider's setting: the geoseg executable's path, or ``""``."""
    return str(ProcessingConfig.getSetting(COMMAND_SETTING) or "")


class GeosegProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "geoseg"

    def name(self) -> str:
        return "geoseg"

    def longName(self) -> str:
        return "geoseg: unsupervised segmentation of satellite scenes"

    def load(self) -> bool:
        ProcessingConfig.addSetting(
            Setting(
                self.name(),
                COMMAND_SETTING,
                "geoseg command (empty: geoseg on PATH)",
                "",
                valuetype=Setting.FILE,
            )
        )
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        ProcessingConfig.removeSetting(COMMAND_SETTING)

    def loadAlgorithms(self) -> None:
        for algorithm in (RunAlgorithm, VectorizeAlgorithm, EvaluateAlgorithm, PlanAlgorithm):
            self.addAlgorithm(algorithm())
