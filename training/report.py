"""An offline HTML page that compares models by their metrics and evaluation plots.

The page is one file: figures are embedded as base64 PNG images and the style
sheet is inline, so it opens without a network connection. A
Content-Security-Policy meta tag also stops the browser from running scripts
or loading anything that is not embedded.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from leadlink.training.plots import PNG_DPI

logger = logging.getLogger(__name__)

HIGHER_IS_BETTER = frozenset({"roc_auc", "pr_auc", "average_precision", "lift_top_decile", "gain_top_decile"})
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece"})
COUNT_COLUMNS = frozenset({"n", "n_positive", "n_negative"})
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MISSING_TEXT = "n/a"

_STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{padding:0.3em 0.8em;border-bottom:1px solid #ddd}"
    "td.number{text-align:right;font-variant-numeric:tabular-nums}"
    "th{text-align:left}section{margin-top:2em}img{max-width:100%}"
    ".legend{color:#555;font-size:0.9em}"
)
_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def write_comparison_report(
    path: str | Path,
    title: str,
    summary: pd.DataFrame,
    figures: Mapping[str, Figure | Path],
    notes: Iterable[str] = (),
) -> Path:
    """Write an HTML page with the metrics table, the figures and the notes to ``path``.

    ``summary`` has one row per model, indexed by display name, and one
    column per metric. ``figures`` maps each heading to a matplotlib Figure
    or to a PNG file. Figures are rendered without being cleared, so the
    caller can still use them. Every text from the arguments is HTML-escaped.

    The parent folder is created if missing. The file is written to a
    temporary name in that folder and then renamed, so readers never see a
    partial page. Raises IsADirectoryError if ``path`` is a directory, and
    ValueError if a figure file is not a PNG or a metric column appears twice.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write the report to {target} because it is a directory. Pass a file path.")
    if summary.columns.duplicated().any():
        duplicates = sorted({str(column) for column in summary.columns[summary.columns.duplicated()]})
        raise ValueError(f"summary has duplicate metric columns {duplicates}. Give each metric one column.")
    if isinstance(notes, str):
        notes = [notes]

    page = _render_page(str(title), summary, figures, list(notes))
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, page)
    logger.info("Wrote the comparison report for %d models to %s", len(summary), target)
    return target


def _render_page(title: str, summary: pd.DataFrame, figures: Mapping[str, Figure | Path], notes: list[str]) -> str:
    escaped_title = html.escape(title)
    sections = "".join(_figure_section(heading, figure) for heading, figure in figures.items())
    note_items = "".join(f"<li>{html.escape(str(note))}</li>" for note in notes)
    notes_block = f"<section><h2>Notes</h2><ul>{note_items}</ul></section>" if notes else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_SECURITY_POLICY}">'
        f"<title>{escaped_title}</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{escaped_title}</h1>\n"
        f"<section><h2>Metrics</h2>{_summary_table(summary)}{_bold_legend(summary)}</section>\n"
        f"{notes_block}{sections}</body></html>\n"
    )


def _summary_table(summary: pd.DataFrame) -> str:
    """Render the summary as a table, with the best value of each known metric in bold."""
    if summary.empty:
        return "<p>No models to compare.</p>"

    index_name = html.escape(str(summary.index.name or "model"))
    header = f"<th>{index_name}</th>" + "".join(f"<th>{html.escape(str(column))}</th>" for column in summary.columns)
    best_rows = {column: _best_rows(summary[column]) for column in summary.columns}

    rows = []
    for position, name in enumerate(summary.index):
        cells = [f"<th>{html.escape(str(name))}</th>"]
        for column in summary.columns:
            cells.append(_cell(summary[column], position, position in best_rows[column]))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell(column: pd.Series, position: int, is_best: bool) -> str:
    value = column.iloc[position]
    if not _is_number(value):
        text = MISSING_TEXT if _is_missing(value) else str(value)
        return f"<td>{html.escape(text)}</td>"

    if _is_count_column(column):
        text = f"{float(value):,.0f}"
    else:
        text = f"{float(value):.3f}"
    if is_best:
        text = f"<strong>{text}</strong>"
    return f'<td class="number">{text}</td>'


def _best_rows(column: pd.Series) -> set[int]:
    """Return the row positions that hold the best value of a known metric column.

    Counts and unknown columns have no best value. Nor does a column with
    fewer than two numeric values, because there is nothing to compare. Every
    row that ties with the best value is included.
    """
    name = str(column.name)
    if name not in HIGHER_IS_BETTER and name not in LOWER_IS_BETTER:
        return set()

    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(values)
    if finite.sum() < 2:
        return set()

    best = values[finite].max() if name in HIGHER_IS_BETTER else values[finite].min()
    ties = finite & np.isclose(values, best, rtol=1e-12, atol=0)
    return set(np.flatnonzero(ties).tolist())


def _bold_legend(summary: pd.DataFrame) -> str:
    higher = [column for column in summary.columns if column in HIGHER_IS_BETTER]
    lower = [column for column in summary.columns if column in LOWER_IS_BETTER]
    if not higher and not lower:
        return ""

    parts = []
    if higher:
        parts.append(f"highest {', '.join(higher)}")
    if lower:
        parts.append(f"lowest {', '.join(lower)}")
    return f'<p class="legend">Bold marks the best model per metric: {html.escape(" and ".join(parts))}.</p>'


def _is_count_column(column: pd.Series) -> bool:
    name = str(column.name)
    return name in COUNT_COLUMNS or name.startswith("n_") or pd.api.types.is_integer_dtype(column)


def _is_number(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating)) and np.isfinite(value)


def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        # pd.isna returns an array for list-like values, which are not missing.
        return False


def _figure_section(heading: str, figure: Figure | Path | str) -> str:
    encoded = base64.b64encode(_png_bytes(heading, figure)).decode("ascii")
    escaped = html.escape(str(heading))
    return f'<section><h2>{escaped}</h2><img src="data:image/png;base64,{encoded}" alt="{escaped}"></section>\n'


def _png_bytes(heading: str, figure: Figure | Path | str) -> bytes:
    """Render a figure to PNG bytes, or read a PNG file and check its signature."""
    if isinstance(figure, Figure):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
        return buffer.getvalue()

    data = Path(figure).read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"figure {heading!r} at {figure} is not a PNG file. Pass a PNG path or a matplotlib Figure.")
    return data


def _write_atomically(target: Path, text: str) -> None:
    """Write ``text`` to a new file beside ``target`` and rename it over ``target``.

    The temporary file is opened in exclusive mode, so it gets the usual
    permissions from the umask and never overwrites another writer's file.
    """
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
