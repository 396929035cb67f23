"""Per-request latency of the HTTP scoring steps: linkage, online features, prediction and reasons.

Run from the repository root with the project environment:

    .venv/bin/python benchmarks/online_features.py                        # 100,000 users
    .venv/bin/python benchmarks/online_features.py --users 1000000 --workspace /tmp/online1m

The script generates a workspace with about ``--users`` users, or reuses
``--workspace``. It trains a model with its linkage model on a smaller
generated workspace unless ``--model`` names a saved model folder or an
MLflow model URI. It then builds the ``ScoringService`` of the HTTP service
and times each step for ``--requests`` contacts of the workspace, one
contact per call, after a warm-up:

* (a) ``RealtimeLinker.link_record``: the best user among the users in memory;
* (b) ``OnlineFeatureBuilder.features``: one feature row;
* (c) prediction: encoding the row and the calibrated booster probability;
* (d) reasons: ``score_frame`` on a one-row frame, as the service ran it
  before, and the service's path (``pred_contrib`` and ``top_reasons``);
* the whole ``ScoringService.score`` call.

It also times the batch feature path (``build_features``) for one row, on the
first ``--batch-requests`` contacts, and one request of ``--batch-size``
contacts on both paths. Times are wall-clock on whatever machine runs the
script, in one thread. A JSON record goes to benchmarks/out/online_features.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leadlink.features.pipeline import build_features
from leadlink.features.workspace import load_workspace
from leadlink.generator import generate_workspace
from leadlink.serving.batch import score_frame
from leadlink.serving.model import load_model
from leadlink.serving.reasons import top_reasons
from leadlink.serving.scoring import ContactIn, ScoringService, _event_records

OUT = Path(__file__).resolve().parent / "out"
REQUEST_CONTACTS = 20_000
MAX_EVENTS_PER_REQUEST = 200
WARMUP_REQUESTS = 200
CONTACT_FIELDS = (
    "first_name", "last_name", "email", "personal_email", "phone", "linkedin_url", "job_title",
    "company_name", "company_domain", "industry", "employee_count", "annual_revenue", "country", "city", "created_at",
)
STEPS = ("link", "features", "prediction", "reasons_score_frame", "reasons_service", "service_score")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="Approximate number of users to link against (default: 100,000).")
    parser.add_argument("--workspace", type=Path, help="Workspace folder: generated there when it has no contacts table, else reused.")
    parser.add_argument("--model", help="Saved model folder or MLflow model URI (default: train one on a generated workspace).")
    parser.add_argument("--requests", type=int, default=2_000, help="Contacts timed one per call (default: 2,000).")
    parser.add_argument("--batch-requests", type=int, default=200, help="Contacts timed on the batch feature path (default: 200).")
    parser.add_argument("--batch-size", type=int, default=100, help="Contacts in the one multi-contact request timed on both paths (default: 100).")
    parser.add_argument("--seed", type=int, default=5, help="Seed of the generated workspaces and of the sample of contacts.")
    args = parser.parse_args(argv)
    if min(args.users, args.requests, args.batch_requests, args.batch_size) < 1:
        parser.error("--users, --requests, --batch-requests and --batch-size must be positive.")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scratch = None if args.workspace and args.model else Path(tempfile.mkdtemp(prefix="leadlink-online-bench-"))
    workspace = prepare_workspace(args.workspace or scratch / "workspace", args.users, args.seed)
    model = load_model(args.model) if args.model else train_model(scratch, args.seed + 1)

    loaded = load_workspace(workspace)
    started = time.perf_counter()
    service = ScoringService(model, loaded.users)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    type(service.feature_builder)(service.users, service.config)
    feature_index_seconds = time.perf_counter() - started
    print(f"service built in {build_seconds:.1f} s over {len(loaded.users):,} users (feature index alone {feature_index_seconds:.2f} s)")

    requests = request_contacts(loaded, max(args.requests, args.batch_size), args.seed)
    steps = time_steps(service, requests[: args.requests])
    batch_one_row = time_batch_rows(service, requests[: args.batch_requests])
    multi = time_multi_contact_request(service, requests[: args.batch_size])

    record = report(steps, batch_one_row, multi, args)
    record.update(
        {
            "measured_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "cpus": os.cpu_count(),
            "users": len(loaded.users),
            "workspace": str(workspace),
            "model": model.uri,
            "service_build_seconds": round(build_seconds, 2),
            "feature_index_seconds": round(feature_index_seconds, 2),
            # ru_maxrss is in kilobytes on Linux.
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
            "events_per_request_median": float(np.median([len(contact.events) for contact in requests[: args.requests]])),
        }
    )
    OUT.mkdir(exist_ok=True)
    (OUT / "online_features.json").write_text(json.dumps(record, indent=2))
    print(f"\nrecord -> {OUT / 'online_features.json'}")
    if scratch is not None:
        print(f"generated files are in {scratch}; pass --workspace and --model to reuse them, and delete the folder when done")
    return 0


def prepare_workspace(folder: Path, n_users: int, seed: int) -> Path:
    """Generate a workspace of about ``n_users`` users unless ``folder`` already contains one."""
    if (folder / "contacts.parquet").is_file():
        print(f"reusing the workspace in {folder}")
        return folder
    # The generator needs at least 0.24 users per contact.
    n_contacts = min(REQUEST_CONTACTS, int(n_users / 0.24))
    started = time.perf_counter()
    generate_workspace(folder, n_contacts=n_contacts, seed=seed, users_per_contact=n_users / n_contacts)
    print(f"generated {n_contacts:,} contacts and about {n_users:,} users in {time.perf_counter() - started:.1f} s -> {folder}")
    return folder


def train_model(scratch: Path, seed: int):
    """Train a workspace model with its linkage model on a generated workspace of 20,000 contacts."""
    from leadlink.training.workflow import train_workspace

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{scratch / 'mlflow.db'}"
    started = time.perf_counter()
    generate_workspace(scratch / "train", n_contacts=20_000, seed=seed)
    summary = train_workspace(scratch / "train")
    if not summary["registered"]:
        raise SystemExit(f"the training workspace gave no model with signal: {summary['verdict']}")
    print(f"trained a model on 20,000 contacts in {time.perf_counter() - started:.1f} s")
    return load_model(summary["model_uri"])


def request_contacts(loaded, count: int, seed: int) -> list[ContactIn]:
    """Sample contacts with their latest events as request bodies, scored as of the last event in the workspace."""
    events = loaded.events
    as_of = events["occurred_at"].max() if len(events) else pd.Timestamp.now(tz="UTC")
    events_of = {key: group.sort_values("occurred_at").tail(MAX_EVENTS_PER_REQUEST) for key, group in events.groupby("contact_id")}
    contacts = []
    for row in loaded.contacts.sample(n=min(count, len(loaded.contacts)), random_state=seed).to_dict("records"):
        own = events_of.get(row["contact_id"])
        records = [] if own is None else own[["event_type", "occurred_at", "url"]].to_dict("records")
        fields = {name: _value(row.get(name)) for name in CONTACT_FIELDS}
        contact_events = [{name: _value(value) for name, value in event.items()} for event in records]
        contacts.append(ContactIn(contact_id=row["contact_id"], events=contact_events, as_of=as_of, **fields))
    return contacts


def _value(value):
    return None if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)) else value


def time_steps(service: ScoringService, contacts: list[ContactIn]) -> dict[str, np.ndarray]:
    """Time each step of scoring one contact, for every contact after a warm-up, and return the milliseconds per step."""
    scorer = service.model.scorer
    threshold = service.config.match_threshold
    timings = {step: [] for step in STEPS}
    for index, contact in enumerate([*contacts[:WARMUP_REQUESTS], *contacts]):
        started = time.perf_counter()
        fields = contact.model_dump(exclude={"events", "as_of"})
        link = service.linker.link_record(fields, threshold) if service.linker is not None else None
        linked = time.perf_counter()
        row = service.feature_builder.features(fields, _event_records(contact), link, contact.as_of)
        featured = time.perf_counter()
        matrix = service.row_scorer.matrix([row])
        service.row_scorer.probabilities(matrix)
        predicted = time.perf_counter()
        score_frame(scorer, pd.DataFrame([row]))
        explained_in_batch = time.perf_counter()
        contributions = scorer.booster.predict(matrix, pred_contrib=True, num_threads=1)
        top_reasons(service.row_scorer.frame([row]), contributions, scorer.feature_names)
        explained = time.perf_counter()
        service.score([contact])
        scored = time.perf_counter()
        if index < WARMUP_REQUESTS:
            continue
        moments = (started, linked, featured, predicted, explained_in_batch, explained, scored)
        for step, begin, end in zip(STEPS, moments, moments[1:]):
            timings[step].append((end - begin) * 1000)
    return {step: np.array(values) for step, values in timings.items()}


def batch_path_features(service: ScoringService, contacts: list[ContactIn]) -> pd.DataFrame:
    """Build features with the batch pipeline, as ``ScoringService.score`` did before the online path."""
    keys = [str(position) for position in range(len(contacts))]
    rows = [{**contact.model_dump(exclude={"events", "as_of"}), "contact_id": key} for key, contact in zip(keys, contacts)]
    contact_frame = pd.DataFrame(rows)
    contact_frame["created_at"] = pd.to_datetime(contact_frame["created_at"], utc=True)
    pairs = [(key, event) for key, contact in zip(keys, contacts) for event in _event_records(contact)]
    events = pd.DataFrame(
        {
            "contact_id": [key for key, _ in pairs],
            "event_type": [event["event_type"] for _, event in pairs],
            "occurred_at": pd.to_datetime([event["occurred_at"] for _, event in pairs], utc=True),
            "url": [event["url"] for _, event in pairs],
        }
    )
    found = [(key, service.linker.link_record(row, service.config.match_threshold) if service.linker else None) for key, row in zip(keys, rows)]
    links = pd.DataFrame(
        [{"contact_id": key, "user_id": link["user_id"], "match_probability": link["match_probability"]} for key, link in found if link],
        columns=["contact_id", "user_id", "match_probability"],
    )
    moments = pd.DataFrame({"contact_id": keys, "as_of": pd.Series([contact.as_of for contact in contacts], dtype="datetime64[ns, UTC]")})
    return build_features(contact_frame, events, service.users, links, moments, service.config)


def time_batch_rows(service: ScoringService, contacts: list[ContactIn]) -> np.ndarray:
    """Time linkage plus ``build_features`` for one contact per call and return the milliseconds."""
    for contact in contacts[:5]:
        batch_path_features(service, [contact])
    timings = []
    for contact in contacts:
        started = time.perf_counter()
        batch_path_features(service, [contact])
        timings.append((time.perf_counter() - started) * 1000)
    return np.array(timings)


def time_multi_contact_request(service: ScoringService, contacts: list[ContactIn], repeats: int = 5) -> dict[str, float]:
    """Time one multi-contact request on the service's path and on the batch path, and return the median milliseconds."""
    online, batch = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        service.score(contacts)
        online.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        score_frame(service.model.scorer, batch_path_features(service, contacts))
        batch.append((time.perf_counter() - started) * 1000)
    return {"contacts": len(contacts), "service_ms": float(np.median(online)), "batch_path_ms": float(np.median(batch))}


def _percentiles(values: np.ndarray) -> dict[str, float]:
    return {f"p{q}_ms": round(float(np.percentile(values, q)), 3) for q in (50, 95, 99)}


def report(steps: dict[str, np.ndarray], batch_one_row: np.ndarray, multi: dict[str, float], args) -> dict:
    """Print the percentiles of each step and the ratios against the batch path, and return them."""
    labels = {
        "link": "(a) link: RealtimeLinker.link_record",
        "features": "(b) online features",
        "prediction": "(c) prediction: encode + booster + calibration",
        "reasons_score_frame": "(d) reasons: score_frame on one row",
        "reasons_service": "(d) reasons: pred_contrib + top_reasons",
        "service_score": "ScoringService.score, one contact",
    }
    print(f"\n{len(steps['link']):,} contacts, one per call, after {WARMUP_REQUESTS} warm-up calls")
    print(f"{'step':<50} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}")
    record = {"steps": {}}
    for step, label in labels.items():
        figures = _percentiles(steps[step])
        record["steps"][step] = figures
        print(f"{label:<50} {figures['p50_ms']:>9.3f} {figures['p95_ms']:>9.3f} {figures['p99_ms']:>9.3f}")

    batch = _percentiles(batch_one_row)
    record["batch_path_one_row"] = batch
    print(f"{'link + build_features (batch path), one contact':<50} {batch['p50_ms']:>9.3f} {batch['p95_ms']:>9.3f} {batch['p99_ms']:>9.3f}")
    online = _percentiles(steps["link"] + steps["features"])
    ratio = batch["p50_ms"] / online["p50_ms"]
    record["batch_over_online_features_p50"] = round(ratio, 1)
    print(f"\nlink + features, one contact: batch path p50 / online path p50 = {ratio:.0f}x ({len(batch_one_row):,} contacts on the batch path)")
    record["multi_contact_request"] = multi
    print(
        f"one request of {multi['contacts']} contacts, linkage to reasons: service {multi['service_ms']:.1f} ms, "
        f"batch path (build_features + score_frame) {multi['batch_path_ms']:.1f} ms"
    )
    return record


if __name__ == "__main__":
    raise SystemExit(main())
