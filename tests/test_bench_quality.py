"""``scripts/bench_quality.py --compare``: two outputs paired run by run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def _row(image: str, seed: int, ari: float, miou: float, method: str = "default") -> dict:
    return {
        "image": image,
        "method": method,
        "K": 5,
        "seed": seed,
        "ari": ari,
        "nmi": 0.5,
        "miou": miou,
        "boundary_f1": 0.5,
        "classes": 6,
    }


def test_compare_pairs_the_runs_both_hold(tmp_path: Path) -> None:
    base = [_row("a", 0, 0.30, 0.40), _row("a", 1, 0.20, 0.30), _row("b", 0, 0.50, 0.50)]
    # a variant stopped after two runs, one of them a method the base lacks
    new = [_row("a", 1, 0.25, 0.20), _row("a", 0, 0.40, 0.40, method="fork")]
    files = []
    for name, rows in (("base", base), ("new", new)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, {"summary": {}}]))
        files.append(path)
    out = subprocess.run(
        [sys.executable, ROOT / "scripts" / "bench_quality.py", "--compare", *files],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout)["compare"]
    assert result["runs"] == 1
    assert result["mean_change"] == {"ari": 0.05, "miou": -0.1, "boundary_f1": 0.0}
    assert result["pairs"][0]["ari"] == [0.2, 0.25]
