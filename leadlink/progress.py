"""Progress reporting: a tqdm bar on a terminal, plain log lines elsewhere.

Batch jobs often run under schedulers that write their output to files. A
bar redrawn with carriage returns would fill those files with noise, so off
a terminal each step is logged as one line instead.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

logger = logging.getLogger("leadlink.progress")

Item = TypeVar("Item")


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(items: Iterable[Item], description: str, unit: str = "it", total: int | None = None) -> Iterator[Item]:
    """Yield ``items`` while showing progress on stderr."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if on_terminal():
        yield from tqdm(items, desc=description, unit=unit, total=total, leave=False)
        return

    for done, item in enumerate(items, start=1):
        yield item
        of_total = f" of {total:,}" if total is not None else ""
        logger.info("%s: %s%s %s done", description, f"{done:,}", of_total, unit)


class RowProgress:
    """Count rows as a job processes them, with rows per second.

    On a terminal this is a tqdm bar. Elsewhere it logs one line per
    ``log_every_seconds`` at most, plus a last line on ``close``, so that a
    log file gets a few lines per run instead of one per chunk.
    """

    def __init__(self, description: str, total: int | None = None, unit: str = "rows", log_every_seconds: float = 10.0):
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0
        self.log_every_seconds = log_every_seconds
        self._started = time.perf_counter()
        self._logged_at = self._started
        self._bar = tqdm(desc=description, unit=unit, total=total, leave=False, unit_scale=True) if on_terminal() else None

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def update(self, rows: int) -> None:
        """Add ``rows`` to the count and show or log the progress."""
        self.done += rows
        if self._bar is not None:
            self._bar.update(rows)
            return
        now = time.perf_counter()
        if now - self._logged_at >= self.log_every_seconds:
            self._logged_at = now
            self._log(now)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.done:
            self._log(time.perf_counter())

    def rate(self) -> float:
        """Return the rows per second since the start."""
        elapsed = time.perf_counter() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _log(self, now: float) -> None:
        of_total = f" of {self.total:,}" if self.total else ""
        elapsed = now - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        logger.info("%s: %s%s %s done, %s %s/s", self.description, f"{self.done:,}", of_total, self.unit, f"{rate:,.0f}", self.unit)
