"""Batch scoring benchmark: end-to-end time and memory, and the cost of reasons.

Run from the repository root with the project environment:

    .venv/bin/python benchmarks/batch_scoring.py run                      # 50,000 contacts, a few minutes
    .venv/bin/python benchmarks/batch_scoring.py run --contacts 1000000 --users-per-contact 1.0 --workspace /tmp/bench1m
    .venv/bin/python benchmarks/batch_scoring.py reasons --workspace DIR --model DIR --rows 100000

``run`` generates a workspace, or reuses ``--workspace``. It trains a model,
with its linkage model, on a smaller generated workspace unless ``--model``
names a saved model folder. Then it times ``leadlink score`` on the workspace
in a child process, whose peak resident memory comes from the kernel, and
runs the ``reasons`` measurements on the first ``--rows`` contacts.

``reasons`` compares, on the same rows and chunks: the bare booster
``predict``; the model step of batch scoring (encode the features, predict,
calibrate), whose rows per second should be at least 0.8 of the bare
booster's; the reasons (pattern-cached TreeSHAP and phrases), which should
not double the model step; LightGBM's exact TreeSHAP (``pred_contrib``); and
the per-leaf path attribution (Saabas), with the share of rows whose top 3
features match exact TreeSHAP. Exact TreeSHAP runs on at most
``--exact-rows`` rows and is scaled linearly to all rows.

The generator gives about 19 events per contact, so 1,000,000 contacts with
``--users-per-contact 1.0`` is the 1M contacts, 19M events, 1M users case.
Times are wall-clock on whatever machine runs the script. A JSON record goes
to benchmarks/out/batch_scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import scipy.sparse as sparse

OUT = Path(__file__).resolve().parent / "out"
TARGET_SECONDS_1M = 360


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="Generate, train, score end to end, then measure reasons.")
    run.add_argument("--contacts", type=int, default=50_000, help="Contacts in the scored workspace.")
    run.add_argument("--users-per-contact", type=float, default=0.5, help="Size of the user base relative to the contacts.")
    run.add_argument("--train-contacts", type=int, default=20_000, help="Contacts in the workspace the model is trained on.")
    run.add_argument("--workspace", help="Scored workspace folder; generated there when it has no contacts table yet.")
    run.add_argument("--model", help="Saved model folder to score with instead of training one.")
    run.add_argument("--chunk-rows", type=int, default=50_000, help="Rows per scoring chunk.")
    run.add_argument("--rows", type=int, default=100_000, help="Contacts used for the reasons measurements.")
    run.add_argument("--exact-rows", type=int, default=20_000, help="Rows on which exact TreeSHAP runs before scaling.")
    run.add_argument("--skip-reasons", action="store_true", help="Only time the end-to-end run.")
    run.add_argument("--seed", type=int, default=1)
    reasons = commands.add_parser("reasons", help="Measure the model step and the reasons methods on a workspace.")
    reasons.add_argument("--workspace", required=True)
    reasons.add_argument("--model", required=True, help="Saved model folder.")
    reasons.add_argument("--rows", type=int, default=100_000)
    reasons.add_argument("--exact-rows", type=int, default=20_000)
    reasons.add_argument("--chunk-rows", type=int, default=50_000, help="Rows per scoring chunk, as in leadlink score.")
    arguments = parser.parse_args()

    from leadlink.logs import configure_logging

    configure_logging(False)
    record: dict = {"command": arguments.command, "cpu_count": os.cpu_count()}
    if arguments.command == "run":
        record |= run_end_to_end(arguments)
        if not arguments.skip_reasons:
            record["reasons"] = measure_reasons(Path(record["workspace"]), Path(record["model"]), arguments.rows, arguments.exact_rows, arguments.chunk_rows)
    else:
        record["reasons"] = measure_reasons(Path(arguments.workspace), Path(arguments.model), arguments.rows, arguments.exact_rows, arguments.chunk_rows)
    OUT.mkdir(exist_ok=True)
    (OUT / "batch_scoring.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"\nrecord -> {OUT / 'batch_scoring.json'}")


# ---------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------


def run_end_to_end(arguments) -> dict:
    """Prepare the workspace and model, then time ``leadlink score`` in a child process."""
    from leadlink.generator import generate_workspace

    scratch = Path(tempfile.mkdtemp(prefix="leadlink-batch-bench-"))
    workspace = Path(arguments.workspace) if arguments.workspace else scratch / "workspace"
    if (workspace / "contacts.parquet").is_file():
        print(f"reusing the workspace in {workspace}")
    else:
        started = time.perf_counter()
        generate_workspace(workspace, n_contacts=arguments.contacts, seed=arguments.seed, users_per_contact=arguments.users_per_contact)
        print(f"generated {arguments.contacts:,} contacts in {time.perf_counter() - started:.1f} s -> {workspace}")
    model = Path(arguments.model) if arguments.model else train_model(scratch, arguments.train_contacts, arguments.seed + 1)

    out = scratch / "scores.parquet"
    command = [str(Path(sys.executable).with_name("leadlink")), "score", str(workspace), "--model", str(model)]
    command += ["--out", str(out), "--chunk-rows", str(arguments.chunk_rows), "--json"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    tree_peak = TreeMemory(process.pid)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    tree_peak.stop()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"leadlink score failed with status {os.waitstatus_to_exitcode(status)}: {stdout[-2000:]}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    # ru_maxrss is in kilobytes on Linux; it is the peak of the largest single process.
    peak_gb = usage.ru_maxrss / 1024**2
    report_end_to_end(summary, seconds, peak_gb, tree_peak.peak_gb)
    if arguments.workspace and arguments.model:
        shutil.rmtree(scratch)
    else:
        print(f"generated files are in {scratch}; pass --workspace and --model to reuse them, and delete the folder when done")
    return {
        "workspace": str(workspace),
        "model": str(model),
        "summary": summary,
        "wall_seconds": seconds,
        "peak_rss_gb": peak_gb,
        "peak_process_tree_gb": tree_peak.peak_gb,
    }


class TreeMemory:
    """Sample the resident memory of a process and its children, which run at the same time, in a thread."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.peak_gb = 0.0
        self._process = psutil.Process(pid)
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            try:
                processes = [self._process, *self._process.children(recursive=True)]
                total = sum(process.memory_info().rss for process in processes)
            except psutil.Error:
                # A process ended between listing and reading it, so this sample is skipped.
                total = 0
            self.peak_gb = max(self.peak_gb, total / 1024**3)
            self._done.wait(self._interval)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def train_model(scratch: Path, n_contacts: int, seed: int) -> Path:
    """Train a workspace model (with its linkage model) on a generated workspace and save it as a folder."""
    from leadlink.generator import generate_workspace
    from leadlink.serving.model import load_model
    from leadlink.training.workflow import train_workspace

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    started = time.perf_counter()
    generate_workspace(scratch / "train", n_contacts=n_contacts, seed=seed)
    summary = train_workspace(scratch / "train")
    if not summary["registered"]:
        raise SystemExit(f"the training workspace gave no model with signal: {summary['verdict']}")
    folder = load_model(summary["model_uri"]).scorer.save(scratch / "model")
    print(f"trained a model on {n_contacts:,} contacts in {time.perf_counter() - started:.1f} s -> {folder}")
    return folder


def report_end_to_end(summary: dict, seconds: float, peak_gb: float, tree_peak_gb: float) -> None:
    timings = summary["timings"]
    rows = summary["rows"]
    print("\n== end to end: leadlink score ==")
    print(f"  contacts {rows['contacts']['read']:,}, users {rows.get('users', {}).get('read', 0):,}, events {rows.get('events', {}).get('read', 0):,}")
    print(f"  scored {summary['scored']:,}, rejected {summary['rejected']:,}, previous users {summary['previous_users']:,}")
    for step in ("load", "link", "features", "model_encode", "model_predict", "model_contributions", "model_phrases", "write", "score"):
        print(f"  {step:<22} {timings.get(step, 0.0):>9.2f} s")
    print(f"  {'total (process)':<22} {seconds:>9.2f} s   target for 1M contacts: < {TARGET_SECONDS_1M} s")
    print(f"  {'peak RSS':<22} {peak_gb:>9.2f} GB   largest single process")
    print(f"  {'peak RSS, all':<22} {tree_peak_gb:>9.2f} GB   the scoring process and its linkage worker together, sampled every 0.2 s")
    step = timings.get("model_encode", 0.0) + timings.get("model_predict", 0.0)
    reasons = timings.get("model_contributions", 0.0) + timings.get("model_phrases", 0.0)
    print(f"  model step {step:.2f} s, reasons {reasons:.2f} s: reasons add {reasons / max(step, 1e-9):.0%} to the model step, {reasons / seconds:.1%} to the run")


# ---------------------------------------------------------------------------
# Reasons
# ---------------------------------------------------------------------------


def workspace_features(workspace: Path, model_folder: Path, rows: int) -> tuple:
    """Build the features of the first ``rows`` contacts the way batch scoring does."""
    from leadlink.features.linkage import IdentityLinker, link_workspace, with_person_ids
    from leadlink.features.pipeline import FeatureConfig, build_features
    from leadlink.features.workspace import load_workspace
    from leadlink.serving.model import LeadScorer
    from leadlink.serving.workspace_scoring import events_by_chunk
    from leadlink.training.dataset import resolve_as_of

    scorer = LeadScorer.from_dir(model_folder)
    loaded = load_workspace(workspace)
    config = FeatureConfig.from_dict(scorer.spec["feature_config"])
    contacts = loaded.contacts.iloc[:rows]
    links, _, linked = link_workspace(
        contacts, loaded.users, linker=IdentityLinker(model_json=scorer.linkage_model), threshold=config.match_threshold, default_region=config.default_region
    )
    events = events_by_chunk(loaded.events, loaded.contacts["contact_id"], rows)(0)
    moments = pd.DataFrame({"contact_id": contacts["contact_id"].to_numpy()})
    moments["as_of"] = pd.Series([resolve_as_of(loaded, None)] * len(moments), dtype="datetime64[ns, UTC]")
    features = build_features(contacts, events, with_person_ids(loaded.users, linked), links, moments, config)
    return scorer, features


def measure_reasons(workspace: Path, model_folder: Path, rows: int, exact_rows: int, chunk_rows: int = 50_000) -> dict:
    """Time the model step and each reasons method on the same rows and compare their top 3 features.

    The bare booster and the model step run on the same chunks of rows as
    ``leadlink score`` does. Each is the best of three runs; the model step
    starts every run with an empty pattern cache, as a scoring run does.
    """
    from leadlink.serving.batch import ChunkScorer
    from leadlink.serving.contributions import PatternTreeShap, lightgbm_contributions
    from leadlink.serving.model import LeadScorer

    scorer, features = workspace_features(workspace, model_folder, rows)
    booster = scorer.booster
    matrix = scorer.encode_matrix(features)
    n_rows, n_features = matrix.shape
    subset = matrix[: min(exact_rows, n_rows)]
    starts = range(0, n_rows, chunk_rows)

    predict = best_of(lambda: [booster.predict(matrix[start : start + chunk_rows], num_threads=0) for start in starts])
    # A scorer loaded anew has its own booster, so its pattern cache starts empty.
    runs = [model_step_seconds(ChunkScorer(LeadScorer.from_dir(model_folder)), features, starts, chunk_rows) for _ in range(3)]
    step = min(runs, key=lambda seconds: sum(seconds.values()))
    exact_values, exact_subset = timed(lambda: lightgbm_contributions(booster, subset))
    exact = exact_subset * n_rows / len(subset)
    cold_explainer = PatternTreeShap(booster)
    pattern_values, cold = timed(lambda: cold_explainer.contributions(matrix))
    warm = best_of(lambda: cold_explainer.contributions(matrix))
    path_values, path_seconds = timed(lambda: path_attribution(booster, matrix))

    exact_top = top_features(exact_values[:, :n_features])
    record = {
        "rows": n_rows,
        "chunk_rows": chunk_rows,
        "trees": booster.num_trees(),
        "predict_seconds": predict,
        "model_step_seconds": step["encode"] + step["predict"],
        "reasons_seconds": step["contributions"] + step["phrases"],
        "step_parts_seconds": step,
        "exact_treeshap_seconds": exact,
        "patterns_cold_seconds": cold,
        "patterns_warm_seconds": warm,
        "path_attribution_seconds": path_seconds,
        "patterns_max_difference": float(np.abs(pattern_values[: len(subset)] - exact_values).max()),
        "patterns_top3_agreement": agreement(top_features(pattern_values[: len(subset), :n_features]), exact_top),
        "path_top3_agreement": agreement(top_features(path_values[: len(subset), :n_features]), exact_top),
        "path_top1_agreement": float(np.mean(top_features(path_values[: len(subset), :n_features])[:, 0] == exact_top[:, 0])),
    }
    report_reasons(record)
    return record


def model_step_seconds(chunk_scorer, features: pd.DataFrame, starts: range, chunk_rows: int) -> dict:
    """Score the features chunk by chunk, as batch scoring does, and return the seconds of each part."""
    for start in starts:
        chunk_scorer.score(features.iloc[start : start + chunk_rows], joined=True)
    return dict(chunk_scorer.seconds)


def report_reasons(record: dict) -> None:
    predict = record["predict_seconds"]
    step = record["model_step_seconds"]
    parts = record["step_parts_seconds"]
    print(f"\n== model step and reasons: {record['rows']:,} rows in chunks of {record['chunk_rows']:,}, {record['trees']} trees ==")
    lines = [
        ("bare booster predict", predict),
        ("model step: encode", parts["encode"]),
        ("model step: predict and calibrate", parts["predict"]),
        ("model step (encode, predict, calibrate)", step),
        ("reasons: pattern TreeSHAP", parts["contributions"]),
        ("reasons: phrases", parts["phrases"]),
        ("model step with reasons", step + record["reasons_seconds"]),
        ("exact TreeSHAP (pred_contrib), scaled", record["exact_treeshap_seconds"]),
        ("pattern TreeSHAP on all rows, empty cache", record["patterns_cold_seconds"]),
        ("pattern TreeSHAP on all rows, warm cache", record["patterns_warm_seconds"]),
        ("path attribution (Saabas)", record["path_attribution_seconds"]),
    ]
    for label, seconds in lines:
        print(f"  {label:<42} {seconds:>8.3f} s  {seconds / predict:>7.2f}x predict  {record['rows'] / seconds:>12,.0f} rows/s")
    print(f"  model step rows/s / bare booster rows/s: {predict / step:.2f}   target >= 0.8")
    print(f"  model step with reasons / model step:    {(step + record['reasons_seconds']) / step:.2f}   target < 2 (reasons must not double it)")
    print(f"  pattern TreeSHAP max difference from pred_contrib: {record['patterns_max_difference']:.1e}")
    print(f"  top-3 feature sets equal to exact TreeSHAP: patterns {record['patterns_top3_agreement']:.1%}, path attribution {record['path_top3_agreement']:.1%}")
    print(f"  top feature equal to exact TreeSHAP's, path attribution: {record['path_top1_agreement']:.1%}")


def best_of(function, repeats: int = 3) -> float:
    return min(timed(function)[1] for _ in range(repeats))


def timed(function) -> tuple:
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def top_features(values: np.ndarray) -> np.ndarray:
    return np.argsort(-np.abs(values), axis=1, kind="stable")[:, :3]


def agreement(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.mean([set(a) == set(b) for a, b in zip(first, second)]))


def path_attribution(booster, matrix: np.ndarray) -> np.ndarray:
    """Return per-leaf path attributions (Saabas): each split adds the change of the node mean to its feature.

    Node means are weighted by the training rows in each leaf, as TreeSHAP's
    expected values are, so the attributions also add up to the raw score.
    """
    n_features = booster.num_feature()
    blocks = []
    for tree in booster.dump_model()["tree_info"]:
        blocks.append(leaf_paths(tree["tree_structure"], tree["num_leaves"], n_features))
    offsets = np.cumsum([0] + [len(block) for block in blocks[:-1]])
    table = np.vstack(blocks)
    leaves = booster.predict(matrix, pred_leaf=True, num_threads=0).reshape(len(matrix), -1) + offsets
    n_trees = leaves.shape[1]
    indicator = sparse.csr_matrix(
        (np.ones(leaves.size), leaves.ravel(), np.arange(0, leaves.size + 1, n_trees)), shape=(len(matrix), len(table))
    )
    return indicator @ table


def leaf_paths(root: dict, n_leaves: int, n_features: int) -> np.ndarray:
    """Return one row per leaf: the path attribution of each feature, plus the tree's mean in the last column."""
    table = np.zeros((n_leaves, n_features + 1))
    if "leaf_index" in root:
        table[:, n_features] = root["leaf_value"]
        return table
    means = {}

    def mean(node: dict) -> tuple[float, float]:
        if "leaf_index" in node:
            return node["leaf_value"], node["leaf_count"]
        left_value, left_count = mean(node["left_child"])
        right_value, right_count = mean(node["right_child"])
        count = left_count + right_count
        means[id(node)] = (left_value * left_count + right_value * right_count) / count if count else 0.0
        return means[id(node)], count

    mean(root)
    stack = [(root, np.zeros(n_features + 1))]
    stack[0][1][n_features] = means[id(root)]
    while stack:
        node, path = stack.pop()
        if "leaf_index" in node:
            table[node["leaf_index"]] = path
            continue
        for side in ("left_child", "right_child"):
            child = node[side]
            child_mean = child["leaf_value"] if "leaf_index" in child else means[id(child)]
            step = path.copy()
            step[node["split_feature"]] += child_mean - means[id(node)]
            stack.append((child, step))
    return table


if __name__ == "__main__":
    main()
