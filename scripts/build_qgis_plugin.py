"""The QGIS plugin as an installable zip (Plugins > Manage and Install Plugins >
Install from ZIP): ``qgis_plugin/geoseg_processing/`` under its own folder name, with
geoseg's version in ``metadata.txt``. Prints the zip's path.

    python scripts/build_qgis_plugin.py [--out dist]
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "qgis_plugin" / "geoseg_processing"


def build(out: Path) -> Path:
    """Write ``out/geoseg_processing.zip`` and return its path."""
    import geoseg

    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{PLUGIN.name}.zip"
    tmp = target.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PLUGIN.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            name = f"{PLUGIN.name}/{path.relative_to(PLUGIN).as_posix()}"
            text = path.read_bytes()
            if path.name == "metadata.txt":
                text = re.sub(rb"(?m)^version=.*$", f"version={geoseg.__version__}".encode(), text)
            archive.writestr(name, text)
    tmp.replace(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    print(build(parser.parse_args().out))


if __name__ == "__main__":
    main()
