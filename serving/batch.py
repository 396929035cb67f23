"""Batch scoring of a workspace or a lead table into a file, one chunk of rows at a time.

Each output row carries the lead's id, its calibrated probability, a 0-100
score, the rules grade and MQL flag when the model has a rules config, the
previous-user link (workspace mode) and the top reasons as text. Rows are
written in input order as each chunk is scored, to a temporary file that is
renamed into place at the end (see ``serving.stream``). Rows that cannot be
scored go to a rejects file with their row number, column, value and reason.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import expit

from leadlink.errors import LeadlinkError
from leadlink.progress import RowProgress
from leadlink.serving.contributions import (
    MIN_ROWS_FOR_PATTERNS,
    PatternTreeShap,
    lightgbm_contributions,
)
from leadlink.serving.export import EXPORT_FIELDS, CrmExportWriter, parse_crm_columns
from leadlink.serving.model import LeadScorer, ResolvedModel, load_model
from leadlink.serving.reasons import REASON_COUNT, joined_reasons, top_reasons
from leadlink.serving.stream import (
    DEFAULT_CHUNK_ROWS,
    REJECT_COLUMNS,
    AtomicTableWriter,
    RejectsWriter,
    count_rows,
    read_chunks,
)

logger = logging.getLogger(__name__)

# The CRM export offers the same fields, with the id under "id".
OUTPUT_COLUMNS = ["contact_id", *EXPORT_FIELDS[1:]]
_COLUMN_TYPES = {
    "contact_id": pa.string(),
    "probability": pa.float64(),
    "score": pa.int64(),
    "grade": pa.string(),
    "is_mql": pa.bool_(),
    "previous_user": pa.bool_(),
    "matched_user_id": pa.string(),
    "match_probability": pa.float64(),
    "reasons": pa.string(),
    "model_version": pa.string(),
}
REASON_METHODS = ("patterns", "lightgbm")
TOP_ROWS_KEPT = 10


@dataclass
class ScoringOptions:
    """Settings of a batch scoring run shared by workspace and table mode."""

    chunk_rows: int = DEFAULT_CHUNK_ROWS
    rejects_path: Path | None = None
    # "patterns" caches TreeSHAP per decision pattern and "lightgbm" runs
    # LightGBM's pred_contrib on every row. Both are exact, as serving.reasons explains.
    reasons_method: str = "patterns"
    crm_export: Path | None = None
    crm_columns: str | None = None
    top: int = TOP_ROWS_KEPT
    # Processes that prepare contacts and users for linkage (see prepare_for_linkage).
    linkage_processes: int = 1

    def __post_init__(self) -> None:
        if self.chunk_rows < 1:
            raise LeadlinkError(f"--chunk-rows must be at least 1; got {self.chunk_rows}.")
        if self.reasons_method not in REASON_METHODS:
            raise LeadlinkError(f"reasons_method must be one of {REASON_METHODS}; got {self.reasons_method!r}.")


# ---------------------------------------------------------------------------
# Model step: probabilities and reasons for a frame of features
# ---------------------------------------------------------------------------

_explainers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_explainers_lock = threading.Lock()


def _explainer_for(scorer: LeadScorer) -> PatternTreeShap:
    """Return the pattern cache of the scorer's booster, shared by every call on that booster."""
    with _explainers_lock:
        explainer = _explainers.get(scorer.booster)
        if explainer is None:
            explainer = PatternTreeShap(scorer.booster)
            _explainers[scorer.booster] = explainer
    return explainer


class ChunkScorer:
    """Score frames of features with one model: probabilities, contributions and reasons.

    ``seconds`` adds up the time spent in encoding, prediction, contributions
    and phrasing over all calls, for the benchmark and the run summary.
    """

    def __init__(
        self,
        scorer: LeadScorer,
        method: str = "patterns",
        display_names: dict[str, str] | None = None,
        kinds: dict[str, str] | None = None,
        top_k: int = REASON_COUNT,
    ):
        self.scorer = scorer
        self.method = method
        self.display_names = display_names
        self.kinds = kinds
        self.top_k = top_k
        self.seconds = {"encode": 0.0, "predict": 0.0, "contributions": 0.0, "phrases": 0.0}

    def score(self, features: pd.DataFrame, joined: bool = False) -> tuple[np.ndarray, list[list[str]] | np.ndarray]:
        """Return calibrated probabilities and the top reasons of each row, as lists or (``joined``) as "; "-joined texts."""
        started = time.perf_counter()
        matrix = self.scorer.encode_matrix(features)
        encoded = time.perf_counter()
        # The numeric matrix gives the same predictions as the encoded frame
        # (category codes in the model's level order) without pandas' checks.
        booster_probability = self.scorer.booster.predict(matrix, num_threads=0) if len(matrix) else np.zeros(0)
        probability = np.clip(self.scorer.calibration.apply(booster_probability), 0.0, 1.0)
        predicted = time.perf_counter()

        contributions = self._contributions(matrix, booster_probability)
        explained = time.perf_counter()
        phrase = joined_reasons if joined else top_reasons
        reasons = phrase(features, contributions, self.scorer.feature_names, self.top_k, self.display_names, self.kinds)
        phrased = time.perf_counter()

        self.seconds["encode"] += encoded - started
        self.seconds["predict"] += predicted - encoded
        self.seconds["contributions"] += explained - predicted
        self.seconds["phrases"] += phrased - explained
        return probability, reasons

    def _contributions(self, matrix: np.ndarray, booster_probability: np.ndarray) -> np.ndarray:
        if self.method == "lightgbm" or len(matrix) < MIN_ROWS_FOR_PATTERNS:
            return lightgbm_contributions(self.scorer.booster, matrix, threads=1 if len(matrix) < MIN_ROWS_FOR_PATTERNS else 0)

        explainer = _explainer_for(self.scorer)
        contributions = explainer.contributions(matrix)
        if explainer.sigmoid is None:
            return contributions
        # Local accuracy: the contributions must add up to the prediction, and
        # a row that fails is recomputed by LightGBM. This catches a pattern
        # that leads to the wrong leaf, not one that is wrong only at splits
        # off the row's path; the tests compare full values with pred_contrib.
        expected = expit(explainer.sigmoid * contributions.sum(axis=1))
        wrong = ~np.isclose(expected, booster_probability, rtol=0.0, atol=1e-9)
        if wrong.any():
            logger.warning(
                "Cached TreeSHAP values of %s row(s) do not add up to the prediction; recomputing them with LightGBM.",
                f"{int(wrong.sum()):,}",
            )
            contributions[wrong] = lightgbm_contributions(self.scorer.booster, matrix[wrong])
        return contributions


def score_frame(
    scorer: LeadScorer,
    features: pd.DataFrame,
    top_k: int = REASON_COUNT,
    display_names: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
    method: str = "patterns",
) -> tuple[np.ndarray, list[list[str]]]:
    """Return calibrated probabilities and the top reasons for each row."""
    return ChunkScorer(scorer, method, display_names, kinds, top_k).score(features)


def model_version_label(model: ResolvedModel) -> str:
    """Return "name/version" for a registered model, else the model's URI or folder."""
    if model.name and model.version:
        return f"{model.name}/{model.version}"
    return model.uri


# ---------------------------------------------------------------------------
# Output files
# ---------------------------------------------------------------------------


def check_output_path(out: Path) -> None:
    """Fail before any work when the output cannot be written as asked."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise LeadlinkError(f"Output file {out} must end in .csv or .parquet.")
    if out.is_dir():
        raise LeadlinkError(f"Output {out} is a folder; give a file name ending in .csv or .parquet.")


def write_table_atomically(frame: pd.DataFrame, out: Path) -> Path:
    """Write CSV or Parquet to a temporary name, then rename it into place.

    A crash midway leaves only the temporary file, never a complete-looking
    output with rows missing.
    """
    check_output_path(out)
    with AtomicTableWriter(out) as writer:
        writer.write(frame)
    return out


def default_rejects_path(out: Path) -> Path:
    return out.with_name(out.stem + ".rejects.csv")


def _check_distinct_paths(paths: dict[str, Path | None]) -> None:
    seen: dict[Path, str] = {}
    for role, path in paths.items():
        if path is None:
            continue
        resolved = path.resolve()
        if resolved in seen:
            raise LeadlinkError(f"{seen[resolved]} and {role} both name {path}; give each its own file.")
        seen[resolved] = role


def _output_schema(columns: list[str], id_type: pa.DataType) -> pa.Schema:
    return pa.schema([(name, _COLUMN_TYPES.get(name, id_type)) for name in columns])


@dataclass
class _Outputs:
    """The files one run writes: scores, rejects and the optional CRM export."""

    scores: AtomicTableWriter
    rejects: RejectsWriter
    crm: CrmExportWriter | None = None
    top_kept: int = TOP_ROWS_KEPT
    top: pd.DataFrame | None = None

    def write(self, output: pd.DataFrame) -> None:
        self.scores.write(output)
        if self.crm is not None:
            self.crm.write(output)
        best = output.nlargest(self.top_kept, "probability", keep="first")
        merged = best if self.top is None else pd.concat([self.top, best], ignore_index=True)
        self.top = merged.nlargest(self.top_kept, "probability", keep="first").reset_index(drop=True)

    def close(self) -> Path | None:
        self.scores.close()
        if self.crm is not None:
            self.crm.close()
        return self.rejects.close()

    def abort(self) -> None:
        self.scores.abort()
        self.rejects.abort()
        if self.crm is not None:
            self.crm.abort()

    def top_rows(self, columns: list[str]) -> pd.DataFrame:
        return self.top if self.top is not None else pd.DataFrame(columns=columns)


def _open_outputs(out: Path, schema: pa.Schema, rejects_path: Path, options: ScoringOptions, id_column: str, available: list[str]) -> _Outputs:
    crm = None
    if options.crm_export is not None:
        mapping = parse_crm_columns(options.crm_columns, available, id_column)
        crm = CrmExportWriter(options.crm_export, mapping, id_column)
    return _Outputs(AtomicTableWriter(out, schema=schema), RejectsWriter(rejects_path), crm, max(options.top, TOP_ROWS_KEPT))


def _export_fields(columns: list[str], id_column: str) -> list[str]:
    return ["id" if column == id_column else column for column in columns]


def _check_crm_options(options: ScoringOptions, columns: list[str], id_column: str) -> None:
    """Raise for an invalid CRM export path or column mapping before any scoring work."""
    if options.crm_export is None:
        return
    if options.crm_export.suffix.lower() != ".csv":
        raise LeadlinkError(f"--crm-export {options.crm_export} must end in .csv.")
    parse_crm_columns(options.crm_columns, _export_fields(columns, id_column), id_column)


def workspace_output_columns(scorer: LeadScorer) -> list[str]:
    """Return the output columns of workspace scoring: grade and is_mql only when the model has a rules config."""
    has_rules = bool(scorer.spec.get("rules"))
    return [column for column in OUTPUT_COLUMNS if has_rules or column not in ("grade", "is_mql")]


# ---------------------------------------------------------------------------
# Workspace mode
# ---------------------------------------------------------------------------


def score_workspace(
    path: str | Path,
    out: str | Path,
    as_of: str | None = None,
    model_uri: str | None = None,
    rejects_path: Path | None = None,
    options: ScoringOptions | None = None,
) -> dict:
    """Score every contact of a workspace as of ``as_of`` and write ``out``, chunk by chunk."""
    from leadlink.serving.workspace_scoring import score_workspace_chunks

    options = options or ScoringOptions()
    out_path = Path(out)
    check_output_path(out_path)
    rejects_file = rejects_path or options.rejects_path or default_rejects_path(out_path)
    _check_distinct_paths({"--out": out_path, "--rejects": rejects_file, "--crm-export": options.crm_export})
    started = time.perf_counter()
    model = load_model(model_uri)
    if model.scorer.mode != "workspace":
        raise LeadlinkError(
            f"Model {model.uri} was trained on a lead table; score a table with `leadlink score --table FILE`."
        )
    _check_crm_options(options, workspace_output_columns(model.scorer), "contact_id")
    return score_workspace_chunks(Path(path), out_path, rejects_file, model, as_of, options, started)


# ---------------------------------------------------------------------------
# Table mode
# ---------------------------------------------------------------------------


def score_table(
    path: str | Path,
    out: str | Path,
    model_uri: str | None = None,
    id_column: str | None = None,
    model_name: str = "leadlink-table",
    options: ScoringOptions | None = None,
) -> dict:
    """Score a one-row-per-lead table with a model trained by ``train --table``, chunk by chunk.

    Lead-table models carry no rules config, so the output has no grade or
    MQL columns. Without an id column, rows are identified by their row
    number in the file (column ``row``).
    """
    from leadlink.serving.table_scoring import check_table_columns, score_table_chunk
    from leadlink.training import table as lead_table

    options = options or ScoringOptions()
    table_path, out_path = Path(path), Path(out)
    check_output_path(out_path)
    rejects_file = options.rejects_path or default_rejects_path(out_path)
    _check_distinct_paths({"--table": table_path, "--out": out_path, "--rejects": rejects_file, "--crm-export": options.crm_export})
    started = time.perf_counter()
    model = load_model(model_uri, model_name=model_name)
    scorer = model.scorer
    if scorer.mode != "table":
        raise LeadlinkError(f"Model {model.uri} was trained on a workspace; score a workspace folder instead of --table.")

    schema = lead_table.TableSchema.from_dict(scorer.spec["table"])
    id_column = id_column or schema.id_column
    output_id = id_column or "row"
    columns = [output_id, "probability", "score", "reasons", "model_version"]
    id_type = pa.int64() if id_column is None else pa.string()
    version = model_version_label(model)
    kinds = {column.name: column.kind for column in schema.columns}
    chunk_scorer = ChunkScorer(scorer, options.reasons_method, schema.display_names, kinds)
    outputs = _open_outputs(out_path, _output_schema(columns, id_type), rejects_file, options, output_id, _export_fields(columns, output_id))

    counts = {"read": 0, "scored": 0, "rejected": 0}
    try:
        with RowProgress("Scoring leads", total=count_rows(table_path)) as progress:
            for number, chunk in enumerate(read_chunks(table_path, options.chunk_rows, id_column)):
                if number == 0:
                    check_table_columns(chunk.frame, table_path, id_column, schema)
                output, rejects = score_table_chunk(chunk, table_path, schema, id_column, output_id, chunk_scorer, version)
                outputs.rejects.add(rejects)
                outputs.write(output)
                counts["read"] += len(chunk.frame) + len(chunk.rejects)
                counts["scored"] += len(output)
                progress.update(len(chunk.frame) + len(chunk.rejects))
        if counts["read"] == 0:
            raise LeadlinkError(f"Lead table {table_path} has a header but no rows to score.")
        counts["rejected"] = counts["read"] - counts["scored"]
        rejects_written = outputs.close()
    except BaseException:
        outputs.abort()
        raise

    seconds = round(time.perf_counter() - started, 2)
    _log_run("leads", counts, seconds, version, out_path, rejects_written)
    return {
        "output": str(out_path),
        "rows": dict(counts),
        **counts,
        "rejects_file": str(rejects_written) if rejects_written else None,
        "crm_export": str(options.crm_export) if options.crm_export else None,
        "model_version": version,
        "model_uri": model.uri,
        "reasons_method": options.reasons_method,
        "seconds": seconds,
        "timings": {f"model_{key}": round(value, 3) for key, value in chunk_scorer.seconds.items()},
        "top": outputs.top_rows(columns),
    }


def _log_run(kind: str, counts: dict, seconds: float, version: str, out: Path, rejects: Path | None) -> None:
    logger.info(
        "Read %s %s, scored %s, rejected %s in %.1f s with model %s -> %s",
        f"{counts['read']:,}",
        kind,
        f"{counts['scored']:,}",
        f"{counts['rejected']:,}",
        seconds,
        version,
        out,
    )
    if rejects is not None:
        logger.warning("Rejected rows and their reasons are in %s", rejects)


__all__ = [
    "OUTPUT_COLUMNS",
    "REJECT_COLUMNS",
    "ChunkScorer",
    "ScoringOptions",
    "check_output_path",
    "model_version_label",
    "score_frame",
    "score_table",
    "score_workspace",
    "write_table_atomically",
]
