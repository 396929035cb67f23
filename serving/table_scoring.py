"""Table-mode scoring of one chunk: features, rejected values and output rows.

A lead table's values are text or typed values from a CSV or Parquet file.
They are converted as in training (``training.table``), except that a value
the model cannot use rejects its row instead of being scored as missing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from leadlink.errors import LeadlinkError
from leadlink.serving.batch import ChunkScorer
from leadlink.serving.stream import Chunk
from leadlink.training import table as lead_table

logger = logging.getLogger(__name__)


def check_table_columns(frame: pd.DataFrame, path: Path, id_column: str | None, schema: lead_table.TableSchema) -> None:
    """Raise when the id column or every model column is missing, and warn about missing model columns."""
    if id_column is not None and id_column not in frame.columns:
        raise LeadlinkError(f"Lead table {path} has no id column {id_column!r}; pass --id with one of {list(frame.columns)}.")
    missing = [column.source for column in schema.columns if column.source not in frame.columns]
    if missing and len(missing) == len(schema.columns):
        raise LeadlinkError(
            f"The table has none of the model's {len(schema.columns)} columns (such as {missing[:3]}); it cannot be scored with this model."
        )
    if missing:
        logger.warning("Lead table lacks %d model column(s), scored as missing: %s", len(missing), missing)


_TYPE_PROBLEMS = {
    "numeric": "not a number, and the model needs a number here",
    "boolean": "not a yes/no value (yes/no, true/false or 1/0), and the model needs one here",
}


def table_chunk_features(frame: pd.DataFrame, schema: lead_table.TableSchema) -> tuple[pd.DataFrame, list[tuple[np.ndarray, str, str]]]:
    """Convert a chunk of a lead table to model features and find the values the model cannot use.

    Returns the features and, per problem, the row positions, the column and
    the reason. Placeholder values ("Select", "N/A") count as missing, as in
    training. A value that is present but unreadable as a number or yes/no,
    or an infinite number, is a problem: its row is rejected rather than
    scored as if the value were missing.
    """
    features: dict[str, pd.Series] = {}
    problems: list[tuple[np.ndarray, str, str]] = []
    for column in schema.columns:
        if column.source in frame.columns:
            raw = frame[column.source]
        else:
            raw = pd.Series(None, index=frame.index, dtype="object")
        cleaned = lead_table.clean_values(raw)
        converted = lead_table.convert_column(cleaned, column.kind)
        if column.kind in _TYPE_PROBLEMS:
            unreadable = (converted.isna() & cleaned.notna()).to_numpy()
            if unreadable.any():
                problems.append((np.flatnonzero(unreadable), column.source, _TYPE_PROBLEMS[column.kind]))
            infinite = np.isinf(converted.to_numpy(dtype="float64", na_value=np.nan))
            if infinite.any():
                problems.append((np.flatnonzero(infinite), column.source, "an infinite number; the model needs a finite one"))
        features[column.name] = converted
    return pd.DataFrame(features, index=frame.index), problems


def score_table_chunk(chunk: Chunk, path: Path, schema: lead_table.TableSchema, id_column: str | None, output_id: str, chunk_scorer: ChunkScorer, version: str):
    """Score one chunk of a lead table and return its output rows and its reject records."""
    frame = chunk.frame.reset_index(drop=True)
    rejects = list(chunk.rejects)
    ids = id_text(frame[id_column]) if id_column else pd.Series(chunk.row_numbers, dtype="int64")
    rejected = np.zeros(len(frame), dtype=bool)
    if id_column:
        no_id = ids.isna().to_numpy()
        rejected |= no_id
        for position in np.flatnonzero(no_id):
            rejects.append(_table_reject(path, chunk.row_numbers[position], None, id_column, frame.at[position, id_column], "the id is missing"))

    features, problems = table_chunk_features(frame, schema)
    for positions, column, reason in problems:
        rejected[positions] = True
        for position in positions:
            rejects.append(_table_reject(path, chunk.row_numbers[position], ids.iloc[position], column, frame.at[position, column], reason))

    keep = np.flatnonzero(~rejected)
    probability, reasons = chunk_scorer.score(features.iloc[keep].reset_index(drop=True), joined=True)
    finite = np.isfinite(probability)
    for position in keep[~finite]:
        rejects.append(_table_reject(path, chunk.row_numbers[position], ids.iloc[position], None, None, "the model returned no finite probability"))
    scored_positions = keep[finite]
    output = pd.DataFrame(
        {
            output_id: ids.iloc[scored_positions].to_numpy(),
            "probability": probability[finite],
            "score": np.rint(probability[finite] * 100).astype("int64"),
            "reasons": reasons[finite],
            "model_version": version,
        }
    )
    return output, rejects


def id_text(values: pd.Series) -> pd.Series:
    """Return ids as text, with blanks as missing.

    Whole-number floats lose their ".0", because Parquet stores integer ids
    with nulls as floats.
    """

    def one(value):
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            return None
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        text = str(value).strip()
        return text or None

    return pd.Series([one(value) for value in values.tolist()], index=values.index, dtype=object)


def _table_reject(path: Path, row: int, row_id, column: str | None, value, reason: str) -> dict:
    value_text = None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return {"table": path.name, "row": int(row), "id": row_id, "column": column, "value": value_text, "reason": reason, "severity": "rejected"}
