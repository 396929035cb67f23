"""Batch scoring of a workspace or a lead table into a file."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leadlink.errors import LeadlinkError
from leadlink.features.linkage import IdentityLinker, link_workspace, with_person_ids
from leadlink.features.pipeline import FeatureConfig, build_features
from leadlink.features.workspace import load_workspace
from leadlink.serving.model import LeadScorer, ResolvedModel, load_model
from leadlink.serving.reasons import top_reasons
from leadlink.training.dataset import resolve_as_of

logger = logging.getLogger(__name__)

OUTPUT_COLUMNS = [
    "contact_id",
    "probability",
    "score",
    "previous_user",
    "matched_user_id",
    "match_probability",
    "reasons",
    "model_version",
]


def score_frame(
    scorer: LeadScorer, features: pd.DataFrame, top_k: int = 3, display_names: dict[str, str] | None = None
) -> tuple[np.ndarray, list[list[str]]]:
    """Return calibrated probabilities and the top reasons for each row."""
    matrix = scorer.encode(features)
    raw = scorer.predict_raw(matrix)
    probability = np.clip(scorer.calibration.apply(raw), 0.0, 1.0)
    contributions = scorer.contributions(matrix)
    reasons = top_reasons(features, contributions, scorer.feature_names, top_k, display_names)
    return probability, reasons


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
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.partial")
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(temporary, index=False)
    else:
        frame.to_csv(temporary, index=False)
    os.replace(temporary, out)
    return out


def model_version_label(model: ResolvedModel) -> str:
    if model.name and model.version:
        return f"{model.name}/{model.version}"
    return model.uri


def score_workspace(
    path: str | Path,
    out: str | Path,
    as_of: str | None = None,
    model_uri: str | None = None,
    rejects_path: Path | None = None,
) -> dict:
    """Score every contact of a workspace as of ``as_of`` and write ``out``."""
    check_output_path(Path(out))
    started = time.perf_counter()
    model = load_model(model_uri)
    scorer = model.scorer
    if scorer.mode != "workspace":
        raise LeadlinkError(
            f"Model {model.uri} was trained on a lead table; score a table with `leadlink score --table FILE`."
        )

    workspace = load_workspace(path)
    out_path = Path(out)
    rejects = workspace.write_problems(rejects_path or out_path.with_name(out_path.stem + ".rejects.csv"))
    moment = resolve_as_of(workspace, as_of)
    config = FeatureConfig.from_dict(scorer.spec["feature_config"])

    if workspace.contacts.empty:
        logger.warning("Workspace %s has no usable contacts; writing an empty output.", path)
        write_table_atomically(pd.DataFrame(columns=OUTPUT_COLUMNS), out_path)
        return {
            "output": str(out_path), "rows": workspace.summary(), "scored": 0, "rejected": workspace.n_rejected,
            "rejects_file": str(rejects) if rejects else None, "model_version": model_version_label(model),
            "model_uri": model.uri, "as_of": moment.isoformat(), "previous_users": 0, "seconds": 0.0,
            "top": pd.DataFrame(columns=OUTPUT_COLUMNS),
        }

    linker = IdentityLinker(model_json=scorer.linkage_model) if scorer.linkage_model else None
    links, _, linked = link_workspace(
        workspace.contacts, workspace.users, linker=linker, threshold=config.match_threshold, default_region=config.default_region
    )
    users = with_person_ids(workspace.users, linked)
    moments = pd.DataFrame({"contact_id": workspace.contacts["contact_id"].to_numpy()})
    moments["as_of"] = pd.Series([moment] * len(moments), dtype="datetime64[ns, UTC]")
    features = build_features(workspace.contacts, workspace.events, users, links, moments, config)

    probability, reasons = score_frame(scorer, features)
    matched = moments[["contact_id"]].merge(links[["contact_id", "user_id"]], on="contact_id", how="left")
    output = pd.DataFrame(
        {
            "contact_id": moments["contact_id"].to_numpy(),
            "probability": probability,
            "score": np.rint(probability * 100).astype(int),
            "previous_user": features["previous_user"].to_numpy() >= 1,
            "matched_user_id": matched["user_id"].where(features["previous_user"].to_numpy() >= 1).to_numpy(),
            "match_probability": features["match_probability"].to_numpy(),
            "reasons": ["; ".join(r) for r in reasons],
            "model_version": model_version_label(model),
        }
    )
    output = output.sort_values("probability", ascending=False, kind="stable").reset_index(drop=True)
    write_table_atomically(output, out_path)
    seconds = round(time.perf_counter() - started, 2)
    logger.info("Scored %s contacts in %.1f s with model %s -> %s", f"{len(output):,}", seconds, model_version_label(model), out_path)
    return {
        "output": str(out_path),
        "rows": workspace.summary(),
        "scored": len(output),
        "rejected": workspace.n_rejected,
        "rejects_file": str(rejects) if rejects else None,
        "model_version": model_version_label(model),
        "model_uri": model.uri,
        "as_of": moment.isoformat(),
        "previous_users": int(output["previous_user"].sum()),
        "seconds": seconds,
        "top": output.head(10),
    }


def score_table(
    path: str | Path, out: str | Path, model_uri: str | None = None, id_column: str | None = None, model_name: str = "leadlink-table"
) -> dict:
    """Score a one-row-per-lead table with a model trained by ``train --table``."""
    from leadlink.training import table as lead_table

    check_output_path(Path(out))
    started = time.perf_counter()
    model = load_model(model_uri, model_name=model_name)
    scorer = model.scorer
    if scorer.mode != "table":
        raise LeadlinkError(f"Model {model.uri} was trained on a workspace; score a workspace folder instead of --table.")

    schema = lead_table.TableSchema.from_dict(scorer.spec["table"])
    raw = lead_table.read_lead_table(path)
    id_column = id_column or schema.id_column
    if id_column is not None and id_column not in raw.columns:
        raise LeadlinkError(f"Lead table {path} has no id column {id_column!r}; pass --id with one of {list(raw.columns)}.")

    if raw.empty:
        raise LeadlinkError(f"Lead table {path} has a header but no rows to score.")
    features, cleared = lead_table.table_features_with_counts(raw, schema)
    probability, reasons = score_frame(scorer, features, display_names=schema.display_names)
    ids = raw[id_column].to_numpy() if id_column else np.arange(len(raw)) + 2
    output = pd.DataFrame(
        {
            id_column or "row": ids,
            "probability": probability,
            "score": np.rint(probability * 100).astype(int),
            "reasons": ["; ".join(r) for r in reasons],
            "model_version": model_version_label(model),
        }
    )
    out_path = Path(out)
    write_table_atomically(output, out_path)
    seconds = round(time.perf_counter() - started, 2)
    logger.info("Scored %s leads in %.1f s with model %s -> %s", f"{len(output):,}", seconds, model_version_label(model), out_path)
    return {
        "output": str(out_path),
        "rows": {"read": len(raw), "scored": len(output), "rejected": 0, "values_cleared": sum(cleared.values())},
        "values_cleared": cleared,
        "scored": len(output),
        "model_version": model_version_label(model),
        "model_uri": model.uri,
        "seconds": seconds,
        "top": output.sort_values("probability", ascending=False).head(10),
    }
