"""Model benchmarks: accuracy against known truth, the leakage guard on real data, training speed.

Run from the repository root with the project environment:

    .venv/bin/python benchmarks/model.py oracle --contacts 100000
    .venv/bin/python benchmarks/model.py xeducation
    .venv/bin/python benchmarks/model.py speed --rows 1000000 --features 60

``oracle`` compares the rolling-origin backtest with the generator's true
win probabilities on the same test deals. ``xeducation`` trains on the public
X Education lead table with and without the columns the leakage guard flags.
``speed`` times fitting one calibrated model on synthetic data and prints,
as a same-run baseline, a plain LightGBM fit of the same number of rounds.
Each command prints its figures beside their targets and writes a JSON
record to benchmarks/out/.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from leadlink.generator import generate_workspace
from common import OUT, SHARED, peak_memory_gb
from common import report as shared_report
from leadlink.logs import configure_logging
from leadlink.training.backtest import MODEL, RULES, run_backtest
from leadlink.training.evaluation import classification_metrics
from leadlink.training.train import default_params, fit_scorer
from leadlink.training.workflow import TrainingOptions, prepare_workspace, train_table

def report(name: str, rows: list[tuple[str, str, str]], record: dict) -> None:
    shared_report("model", name, rows, record, figure_width=12)


def oracle(arguments) -> None:
    """Backtest a workspace with known true probabilities and compare with the truth."""
    folder = Path(arguments.workspace) if arguments.workspace else Path(tempfile.mkdtemp(prefix="leadlink-bench-")) / "workspace"
    if not (folder / "contacts.parquet").is_file():
        generate_workspace(folder, n_contacts=arguments.contacts, seed=arguments.seed)
    started = time.perf_counter()
    prepared = prepare_workspace(folder, options=TrainingOptions(folds=arguments.folds))
    data = prepared.data
    result = run_backtest(data.features, data.labels, data.kinds, data.folds, data.split, data.order, data.rules_points)
    seconds = time.perf_counter() - started

    truth = pd.read_parquet(folder / "truth" / "deals.parquet")
    tested = result.predictions.assign(deal_id=prepared.examples["deal_id"].to_numpy()[result.predictions["position"]])
    tested = tested.merge(truth, on="deal_id", how="left", validate="one_to_one")
    labels = tested["label"].to_numpy()
    oracle_auc = roc_auc_score(labels, tested["true_probability"])
    drawn_auc = roc_auc_score(labels, tested["drawn_probability"])
    model, rules = result.pooled[MODEL], result.pooled[RULES]
    oracle_metrics = classification_metrics(labels, tested["true_probability"].to_numpy())

    true_links_auc = None
    if arguments.true_links:
        true_links_auc = _backtest_with_true_links(folder, prepared)

    record = {
        "true_links_auc": true_links_auc,
        "workspace": str(folder),
        "test_deals": len(tested),
        "folds": len(result.folds),
        "model": model,
        "rules": rules,
        "logistic": result.pooled["logistic regression"],
        "oracle_auc": oracle_auc,
        "oracle_ece": oracle_metrics["ece"],
        "drawn_oracle_auc": drawn_auc,
        "seconds": seconds,
    }
    report(
        "oracle",
        [
            ("test deals (pooled folds)", f"{len(tested):,}", "-"),
            ("model backtest ROC AUC", f"{model['roc_auc']:.4f}", "-"),
            ("oracle ROC AUC (true probability)", f"{oracle_auc:.4f}", "-"),
            ("model / oracle", f"{model['roc_auc'] / oracle_auc:.3f}", ">= 0.97"),
            ("model ECE", f"{model['ece']:.4f}", "< 0.03"),
            ("oracle ECE (noise floor)", f"{oracle_metrics['ece']:.4f}", "-"),
            ("rules score ROC AUC", f"{rules['roc_auc']:.4f}", "below the model"),
            ("model - rules ROC AUC", f"{model['roc_auc'] - rules['roc_auc']:+.4f}", "> 0"),
            ("top-decile lift, model / rules", f"{model['lift_top_decile']:.2f} / {rules['lift_top_decile']:.2f}", "model higher"),
            ("logistic regression ROC AUC", f"{result.pooled['logistic regression']['roc_auc']:.4f}", "-"),
            ("oracle incl. per-deal noise draw", f"{drawn_auc:.4f}", "no model can see it"),
            *(
                [("model / oracle with the true links", f"{true_links_auc / oracle_auc:.3f}", "diagnostic: linkage's share of the gap")]
                if true_links_auc
                else []
            ),
            ("seconds (link, features, backtest)", f"{seconds:.0f}", "-"),
            ("peak memory GB", f"{peak_memory_gb():.2f}", "-"),
        ],
        record,
    )


def _backtest_with_true_links(folder: Path, prepared) -> float:
    """Return the backtest ROC AUC when features use the generator's true links instead of Splink's."""
    from leadlink.features.pipeline import build_features
    from leadlink.features.workspace import load_workspace

    workspace = load_workspace(folder)
    links = pd.read_parquet(folder / "truth" / "links.parquet")[["contact_id", "user_id"]].assign(match_probability=1.0)
    features = build_features(workspace.contacts, workspace.events, workspace.users, links, prepared.examples)
    data = prepared.data
    features = features[data.features.columns]
    result = run_backtest(features, data.labels, data.kinds, data.folds, data.split, data.order)
    return result.metric("roc_auc")


def xeducation(arguments) -> None:
    """Train on X Education with the leakage guard, then with every flagged column kept."""
    path = Path(arguments.table) if arguments.table else SHARED / "xeducation" / "Leads.csv"
    if not path.is_file():
        sys.exit(f"{path} not found; pass --table PATH to the X Education Leads.csv file.")
    guarded = train_table(path, "Converted", "Prospect ID", TrainingOptions(model_name="bench-xeducation"))
    flagged = [row["display_name"] for row in guarded["leakage"]]
    kept = train_table(path, "Converted", "Prospect ID", TrainingOptions(model_name="bench-xeducation", keep_features=tuple(flagged)))
    report(
        "xeducation",
        [
            ("columns flagged by the guard", ", ".join(flagged) or "none", "the columns sales fills in"),
            ("ROC AUC without them (default)", f"{guarded['metrics']['roc_auc']:.4f}", "-"),
            ("ROC AUC with them kept", f"{kept['metrics']['roc_auc']:.4f}", "-"),
            ("ECE without them", f"{guarded['metrics']['ece']:.4f}", "-"),
        ],
        {"flagged": guarded["leakage"], "without": guarded["metrics"], "with": kept["metrics"]},
    )


def speed(arguments) -> None:
    """Time fitting one calibrated model on ``--rows`` x ``--features`` synthetic examples."""
    rng = np.random.default_rng(arguments.seed)
    n, k = arguments.rows, arguments.features
    values = rng.normal(size=(n, k)).astype("float32")
    values[rng.random((n, k)) < 0.1] = np.nan  # engagement and previous-use features are often missing
    weights = rng.normal(scale=0.3, size=k)
    logit = np.nan_to_num(values) @ weights + 0.5 * np.nan_to_num(values[:, 0]) * np.nan_to_num(values[:, 1]) - 1
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    features = pd.DataFrame(values, columns=[f"f{i:02d}" for i in range(k)])
    kinds = dict.fromkeys(features.columns, "numeric")
    print(f"data: {n:,} rows x {k} features, {labels.mean():.1%} positive; peak memory so far {peak_memory_gb():.2f} GB")

    started = time.perf_counter()
    scorer = fit_scorer(features, labels, kinds, np.arange(n))
    fit_seconds = time.perf_counter() - started
    rounds = scorer.spec["best_iteration"] + 50  # early stopping trains 50 rounds past the best one

    started = time.perf_counter()
    plain = {**default_params(n), "num_threads": 0, "seed": arguments.seed}
    lgb.train(plain, lgb.Dataset(values, label=labels), num_boost_round=rounds)
    baseline_seconds = time.perf_counter() - started

    report(
        "speed",
        [
            ("fit_scorer seconds", f"{fit_seconds:.1f}", "< 180"),
            ("boosting rounds (incl. early-stop patience)", f"{rounds}", "-"),
            ("plain lgb.train, same rounds, seconds", f"{baseline_seconds:.1f}", "same-run baseline"),
            ("fit_scorer / plain", f"{fit_seconds / baseline_seconds:.2f}", "-"),
            ("peak memory GB", f"{peak_memory_gb():.2f}", "-"),
        ],
        {"rows": n, "features": k, "fit_seconds": fit_seconds, "rounds": rounds, "baseline_seconds": baseline_seconds, "peak_gb": peak_memory_gb()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("oracle", help="backtest against the generator's true probabilities")
    command.add_argument("--contacts", type=int, default=100_000)
    command.add_argument("--seed", type=int, default=3)
    command.add_argument("--folds", type=int, default=4)
    command.add_argument("--workspace", help="reuse (or create) the workspace in this folder")
    command.add_argument("--true-links", action="store_true", help="also backtest with the generator's true links, to size linkage's share of the gap")
    command.set_defaults(run=oracle)
    command = commands.add_parser("xeducation", help="leakage guard on the X Education lead table")
    command.add_argument("--table", help="path to Leads.csv (default: ../shared/data/xeducation/Leads.csv)")
    command.set_defaults(run=xeducation)
    command = commands.add_parser("speed", help="time to fit one model on synthetic data")
    command.add_argument("--rows", type=int, default=1_000_000)
    command.add_argument("--features", type=int, default=60)
    command.add_argument("--seed", type=int, default=0)
    command.set_defaults(run=speed)

    arguments = parser.parse_args()
    configure_logging()
    arguments.run(arguments)


if __name__ == "__main__":
    main()
