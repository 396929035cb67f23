"""Helpers shared by the benchmark scripts: output folder, peak memory, and the figure report."""

from __future__ import annotations

import json
import resource
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def peak_memory_gb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def report(prefix: str, name: str, rows: list[tuple[str, str, str]], record: dict, figure_width: int = 14) -> None:
    """Print figures beside their targets and save the record as ``out/<prefix>_<name>.json``."""
    print(f"\n== {name} ==")
    width = max(len(label) for label, _, _ in rows)
    for label, figure, target in rows:
        print(f"  {label:<{width}}  {figure:>{figure_width}}   target: {target}")
    OUT.mkdir(exist_ok=True)
    (OUT / f"{prefix}_{name}.json").write_text(json.dumps(record, indent=2, default=str))
