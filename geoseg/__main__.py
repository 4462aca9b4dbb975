"""``python -m geoseg``: the same as the ``geoseg`` command."""

from geoseg.cli import app

if __name__ == "__main__":
    app()
