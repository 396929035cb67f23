"""The ``leadlink`` command-line tool.

Each subcommand logs progress to stderr, prints a human summary to stdout,
and with ``--json`` prints a machine-readable summary as the last line.
Errors a user can fix end the command with a one-line message and exit
status 2, not a stack trace.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from leadlink.errors import LeadlinkError
from leadlink.logs import configure_logging, mask_personal_data

app = typer.Typer(
    name="leadlink",
    help="Lead scoring that recognises people who used the product before.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output keeps long lines whole instead of wrapping them at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200, markup=False, highlight=False)
logger = logging.getLogger("leadlink.cli")
CONTACT_COLUMNS = frozenset({"email", "personal_email", "phone", "contact_id", "user_id"})
WORKSPACE_MODEL_NAME = "leadlink"
TABLE_MODEL_NAME = "leadlink-table"
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def say(text: str) -> None:
    """Print a line of output; values from data files are never read as markup."""
    console.print(text, soft_wrap=True)


def fail(message: str) -> None:
    console.print(Text("error: ", style="bold red") + Text(str(message)), soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print a machine-readable JSON summary as the last line.")
VerboseOption = typer.Option(False, "--verbose", "-v", help="Log debug details.")


def _command(function):
    """Set up logging and turn LeadlinkError into a message and exit status 2."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        configure_logging(kwargs.get("verbose", False))
        try:
            return function(*args, **kwargs)
        except (LeadlinkError, ValueError) as error:
            fail(str(error))
            raise typer.Exit(code=2) from None
        except OSError as error:
            # Unwritable or missing paths: name the file and the reason.
            where = f" {error.filename}" if error.filename else ""
            fail(f"could not access{where}: {error.strerror or error}")
            raise typer.Exit(code=2) from None

    return wrapper


def _linkage_processes() -> int:
    """Return how many processes prepare records for linkage: two when the machine has two cores or more."""
    return min(2, os.cpu_count() or 1)


def _print_json(summary: dict) -> None:
    sys.stdout.write(json.dumps(_jsonable(summary), default=str) + "\n")


def _jsonable(value):
    """Make a summary JSON-safe: frames become records, NaN becomes null."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return _jsonable(value.to_dict("records"))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _jsonable(value.item())
    return value


def _print_counts(rows: dict) -> None:
    table = Table(title="Rows per table")
    for column in ("table", "read", "used", "rejected", "values cleared"):
        table.add_column(column, justify="right" if column != "table" else "left")
    for name, counts in rows.items():
        table.add_row(Text(name), *(Text(f"{counts.get(key, 0):,}") for key in ("read", "used", "rejected", "values_cleared")))
    console.print(table)


def _check_input_choice(workspace: Path | None, table: Path | None, as_of: str | None) -> None:
    """Raise unless exactly one input is given and --as-of fits it."""
    from leadlink.training.dataset import parse_as_of

    if (workspace is None) == (table is None):
        raise LeadlinkError("Give either a WORKSPACE folder or --table FILE, not both or neither.")
    if as_of is None:
        return
    if table is not None:
        raise LeadlinkError("--as-of applies to workspaces; a lead table has no timestamps to cut at.")
    parse_as_of(as_of)


@app.command()
@_command
def generate(
    out: Path = typer.Option(..., "--out", help="Folder to write the demo workspace into."),
    contacts: int = typer.Option(20_000, "--contacts", min=100, help="Number of CRM contacts to generate."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same workspace."),
    file_format: str = typer.Option("parquet", "--format", help="Table file format: parquet or csv."),
    json_output: bool = JsonOption,
    verbose: bool = VerboseOption,
):
    """Write a realistic demo workspace, with its truth in OUT/truth/."""
    from leadlink.generator import generate_workspace

    summary = generate_workspace(out, n_contacts=contacts, seed=seed, file_format=file_format, progress=sys.stderr.isatty())
    say(f"Wrote demo workspace to {out}: " + ", ".join(f"{k} {v:,}" for k, v in summary.get("rows", {}).items()))
    if json_output:
        _print_json(summary)


@app.command()
@_command
def validate(
    workspace: Path = typer.Argument(..., help="Workspace folder with contacts, users, events and deals tables."),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help="CSV file for problems (default: WORKSPACE/rejects.csv)."),
    show: int = typer.Option(20, "--show", help="Number of problems to print."),
    json_output: bool = JsonOption,
    verbose: bool = VerboseOption,
):
    """Check a workspace against the contract; exit 1 when any row is rejected."""
    from leadlink.features.workspace import load_workspace

    loaded = load_workspace(workspace)
    written = loaded.write_problems(rejects or workspace / "rejects.csv")
    _print_counts(loaded.summary())
    if not loaded.problems.empty:
        say(f"{len(loaded.problems):,} problem(s); the first {min(show, len(loaded.problems))}:")
        for problem in loaded.problems.head(show).itertuples(index=False):
            # The rejects file keeps values as they are; the terminal masks emails and phones.
            value = mask_personal_data(str(problem.value)) if problem.column in CONTACT_COLUMNS or "@" in str(problem.value) else problem.value
            say(f"  {problem.table} row {problem.row} column {problem.column}: value {value!r}, expected {problem.expected} ({problem.severity})")
        say(f"All problems are in {written}")
    else:
        say("The workspace is valid.")
    if json_output:
        _print_json({"rows": loaded.summary(), "problems": len(loaded.problems), "rejects_file": str(written) if written else None})
    if loaded.n_rejected:
        raise typer.Exit(code=1)


@app.command()
@_command
def link(
    workspace: Path = typer.Argument(..., help="Workspace folder."),
    out: Path = typer.Option(..., "--out", help="Output file for the best user per contact (.parquet or .csv)."),
    threshold: float = typer.Option(0.8, "--threshold", min=0.0, max=1.0, help="Minimum match probability for a link."),
    retrain: bool = typer.Option(False, "--retrain", help="Estimate a new linkage model instead of reusing the registered one."),
    model: Optional[str] = typer.Option(None, "--model", help="Registered model whose linkage model to reuse (default: newest)."),
    model_json: Optional[Path] = typer.Option(None, "--model-json", help="Reuse a Splink model saved with --save-model."),
    save_model: Optional[Path] = typer.Option(None, "--save-model", help="Write the Splink model JSON to this file."),
    all_pairs: Optional[Path] = typer.Option(
        None, "--all-pairs", help="Also write every pair at or above the threshold that has evidence beyond the name."
    ),
    report: Optional[Path] = typer.Option(None, "--report", help="Write an HTML report with Splink's charts to this file."),
    max_comparisons: int = typer.Option(100_000_000, "--max-comparisons", min=1, help="Refuse a blocking rule that generates more pairs."),
    default_region: Optional[str] = typer.Option(
        None, "--default-region", help="ISO country code for phone numbers without a country code (default: the reused model's, else US)."
    ),
    truth: Optional[Path] = typer.Option(None, "--truth", help="True links (contact_id, user_id) to report precision and recall."),
    json_output: bool = JsonOption,
    verbose: bool = VerboseOption,
):
    """Link contacts to product users with Splink and write the best match per contact."""

    from leadlink.features.linkage import link_quality, link_workspace, prepare_for_linkage, resolve_linker
    from leadlink.features.workspace import load_workspace
    from leadlink.serving.batch import check_output_path, write_table_atomically

    check_output_path(out)
    if all_pairs is not None:
        check_output_path(all_pairs)
        if all_pairs.resolve() == out.resolve():
            raise LeadlinkError(f"--out and --all-pairs both name {out}; give the pairs their own file.")
    if retrain and (model is not None or model_json is not None):
        raise LeadlinkError("--retrain estimates a new model; leave out --model and --model-json, or leave out --retrain.")
    truth_table = _read_truth(truth) if truth is not None else None
    loaded = load_workspace(workspace, require=("contacts", "users"), tables=("contacts", "users"))
    rejects = loaded.write_problems(workspace / "rejects.csv")
    linker, source, model_region = resolve_linker(model_json=model_json, retrain=retrain, model_uri=model)
    default_region = (default_region or model_region or "US").upper()
    say(f"Linkage model: {source}")
    links, linker, result = link_workspace(
        loaded.contacts,
        loaded.users,
        linker=linker,
        threshold=threshold,
        default_region=default_region,
        max_comparisons_per_rule=max_comparisons,
        processes=_linkage_processes(),
    )
    write_table_atomically(links, out)
    if all_pairs is not None and result is not None:
        write_table_atomically(result.pairs, all_pairs)
    if save_model:
        linker.save(save_model)

    summary = {
        "output": str(out),
        "linkage_model": source,
        "rows": loaded.summary(),
        "linked_contacts": len(links),
        "job_changes": int(links["job_change"].fillna(False).sum()) if len(links) else 0,
        "pairs_above_threshold": result.n_pairs_scored if result else 0,
        "comparisons_per_rule": result.comparisons if result else {},
        "seconds": result.seconds if result else {},
        "rejects_file": str(rejects) if rejects else None,
    }
    say(f"Linked {len(links):,} of {len(loaded.contacts):,} contacts to a product user -> {out}")
    if truth is not None:
        quality = link_quality(links, truth_table)
        summary["quality"] = quality
        say(
            f"Against {truth}: precision {quality['precision']:.3f}, recall {quality['recall']:.3f}"
            + (f", recall beyond name-only links {quality['recall_beyond_name']:.3f}" if "recall_beyond_name" in quality else "")
        )
    if report is not None and result is not None:
        from leadlink.features.linkage_report import write_linkage_report

        prepared_contacts, prepared_users = prepare_for_linkage(loaded.contacts, loaded.users, default_region)
        facts = {key: summary[key] for key in ("linkage_model", "linked_contacts", "job_changes", "pairs_above_threshold")}
        write_linkage_report(report, linker, prepared_contacts, prepared_users, threshold, facts, result.person_ids)
        summary["report"] = str(report)
        say(f"Report -> {report}")
    if json_output:
        _print_json(summary)


def _read_truth(path: Path):
    """Read true links before any work, so a bad file fails fast."""
    import pandas as pd

    from leadlink.features.workspace import read_table_file

    table = read_table_file(path) if path.suffix.lower() in (".csv", ".parquet") else None
    if table is None:
        raise LeadlinkError(f"--truth {path} must be a .csv or .parquet file.")
    if not {"contact_id", "user_id"} <= set(table.columns):
        raise LeadlinkError(f"--truth {path} needs contact_id and user_id columns; it has {list(table.columns)}.")
    if table.empty:
        raise LeadlinkError(f"--truth {path} has no rows.")
    return pd.DataFrame(table)


@app.command()
@_command
def train(
    workspace: Optional[Path] = typer.Argument(None, help="Workspace folder (or use --table)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Train on outcomes known before this ISO 8601 time (default: latest in the workspace)."),
    table: Optional[Path] = typer.Option(None, "--table", help="A one-row-per-lead table to train on instead of a workspace."),
    label: Optional[str] = typer.Option(None, "--label", help="Label column of --table (1/0, yes/no, won/lost)."),
    id_column: Optional[str] = typer.Option(None, "--id", help="Id column of --table, kept out of the features."),
    population: str = typer.Option("deals", "--population", help="'deals': one example per closed deal as of its creation; 'contacts': one per contact as of its creation."),
    horizon_days: float = typer.Option(90.0, "--horizon-days", help="With --population contacts: a win counts when the deal closes within this many days."),
    maturity_days: Optional[float] = typer.Option(None, "--maturity-days", help="Leave out deals created within this many days of --as-of (default: the 95th percentile sales cycle)."),
    folds: int = typer.Option(4, "--folds", min=1, max=20, help="Backtest folds: cut-offs over the newest 40% of examples (random folds for --table)."),
    tune: int = typer.Option(0, "--tune", min=0, help="Optuna trials to tune LightGBM on data older than the backtest (0: no tuning)."),
    keep_feature: list[str] = typer.Option([], "--keep-feature", help="Keep a feature the leakage guard flags (repeatable; feature or column name)."),
    leakage_auc: float = typer.Option(0.90, "--leakage-auc", min=0.5, max=1.0, help="Flag a feature whose single-feature ROC AUC reaches this value."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Rules-score TOML file for the baseline (default: the packaged rules)."),
    model_name: Optional[str] = typer.Option(
        None, "--model-name", help="Registered model name in MLflow (default: leadlink for workspaces, leadlink-table for tables)."
    ),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help="CSV file for rejected rows (default: beside the input)."),
    default_region: str = typer.Option("US", "--default-region", help="ISO country code for phone numbers without a country code; kept with the model."),
    seed: int = typer.Option(0, "--seed", help="Seed for LightGBM, Optuna and, for tables, the random folds."),
    json_output: bool = JsonOption,
    verbose: bool = VerboseOption,
):
    """Backtest and train a calibrated LightGBM conversion model, log it to MLflow and register it as challenger."""
    from leadlink.features.pipeline import FeatureConfig
    from leadlink.training.workflow import TrainingOptions, train_table, train_workspace

    _check_input_choice(workspace, table, as_of)
    if model_name is not None and not MODEL_NAME_PATTERN.match(model_name):
        raise LeadlinkError(f"--model-name {model_name!r} is invalid; use letters, digits, '.', '_' and '-' (at most 100 characters).")
    default_name = TABLE_MODEL_NAME if table is not None else WORKSPACE_MODEL_NAME
    options = TrainingOptions(
        model_name=model_name or default_name,
        folds=folds,
        seed=seed,
        tune_trials=tune,
        keep_features=tuple(keep_feature),
        leakage_auc=leakage_auc,
        rejects_path=rejects,
    )
    if table is not None:
        if not label:
            raise LeadlinkError("--table needs --label COLUMN naming the conversion column.")
        summary = train_table(table, label, id_column, options=options)
    else:
        if label or id_column:
            raise LeadlinkError("--label and --id apply to --table; a workspace's label is each deal's outcome.")
        summary = train_workspace(
            workspace,
            as_of=as_of,
            config=FeatureConfig(default_region=default_region),
            options=options,
            population=population,
            horizon_days=horizon_days,
            maturity_days=maturity_days,
            rules_path=rules,
        )

    _print_training_summary(summary)
    if json_output:
        _print_json(summary)


def _print_training_summary(summary: dict) -> None:
    n_folds = len(summary["folds"]) // (len(summary["baselines"]) + 1)
    table = Table(title=f"Backtest ({summary['split']} split, {n_folds} fold{'s' if n_folds != 1 else ''})")
    for column in ("scorer", "examples", "ROC AUC", "PR AUC", "log loss", "Brier", "ECE", "top-decile lift"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for name, metrics in {"model": summary["metrics"], **summary["baselines"]}.items():
        table.add_row(
            Text(name),
            f"{int(metrics['n']):,}",
            *(f"{metrics[key]:.3f}" for key in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top_decile")),
        )
    console.print(table)
    for flag in summary["leakage"]:
        action = "kept" if flag["kept"] else "left out"
        say(f"leakage guard: {flag['display_name']} {action} (single-feature AUC {flag['single_feature_auc']:.3f}): {flag['reasons']}")
    for note in summary.get("notes", []):
        say(f"  note: {note}")
    if summary["registered"]:
        say(f"Registered {summary['model_uri']} as challenger (run {summary['run_id']}); `leadlink compare` and `leadlink promote` are next.")
    else:
        say(f"Not registered: no signal above the base rate ({summary['verdict']}). Run {summary['run_id']} keeps the details.")


@app.command()
@_command
def compare(
    model_name: str = typer.Option(WORKSPACE_MODEL_NAME, "--model-name", help="Registered model to compare versions of."),
    recent: int = typer.Option(3, "--recent", min=0, help="Also show this many newest versions without an alias."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write an HTML report with the backtest plots to this file."),
    json_output: bool = JsonOption,
    verbose: bool = VerboseOption,
):
    """Compare champion, challenger and recent versions on their backtest metrics."""
    from leadlink.training import registry, tracking

    tracking.configure_mlflow()
    runs = registry.registered_runs(model_name, recent)
    frame = registry.comparison_frame(runs)
    _print_comparison(frame, model_name)
    if report is not None:
        written = registry.write_comparison(report, model_name, runs, frame)
        say(f"Wrote {written}")
    if json_output:
        _print_json({"model": model_name, "versions": frame.reset_index().to_dict("records")})


def _print_comparison(frame, model_name: str) -> None:
    table = Table(title=f"{model_name}: backtest metrics (higher is better except log loss, Brier and ECE)")
    table.add_column("model")
    for column in frame.columns:
        table.add_column(column, justify="right")
    for label, row in frame.iterrows():
        cells = [Text(str(label))]
        for column, value in row.items():
            cells.append(Text(_cell(value)))
        table.add_row(*cells)
    console.print(table)


def _cell(value) -> str:
    if isinstance(value, float):
        return "-" if not math.isfinite(value) else f"{value:.3f}"
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@app.command()
@_command
def promote(
    model_name: str = typer.Option(WORKSPACE_MODEL_NAME, "--model-name", help="Registered model whose champion alias moves."),
    version: Optional[str] = typer.Option(None, "--version", help="Version to promote (default: the challenger)."),
    metric: str = typer.Option("roc_auc", "--metric", help="Backtest metric the candidate must not be worse on (roc_auc, pr_auc, log_loss, brier, ece, ...)."),
    force: bool = typer.Option(False, "--force", help="Promote even when the candidate is worse on --metric."),
    json_output: bool = JsonOption,
    verbose: bool = VerboseOption,
):
    """Make a version the champion that scoring and serving use by default."""
    from leadlink.training import registry, tracking

    tracking.configure_mlflow()
    result = registry.promote(model_name, version=version, metric=metric, force=force)
    if not result["changed"]:
        say(result["message"])
    elif result["previous"] is None:
        say(f"{model_name} version {result['champion']} is now the champion (there was none); backtest {metric} {result['candidate_value']:.4f}.")
    else:
        say(
            f"{model_name} version {result['champion']} is now the champion, replacing version {result['previous']}: "
            f"backtest {metric} {result['candidate_value']:.4f} against {result['champion_value']:.4f}."
        )
    if json_output:
        _print_json(result)


@app.command()
@_command
def score(
    workspace: Optional[Path] = typer.Argument(None, help="Workspace folder (or use --table)."),
    out: Path = typer.Option(..., "--out", help="Output file (.parquet or .csv)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Score as of this ISO 8601 time (default: latest in the workspace)."),
    model: Optional[str] = typer.Option(
        None, "--model", help="Model URI (models:/name/3, models:/name@alias) or folder; default: the champion of leadlink, or of leadlink-table with --table."
    ),
    table: Optional[Path] = typer.Option(None, "--table", help="Score a one-row-per-lead table (.csv or .parquet) instead of a workspace."),
    id_column: Optional[str] = typer.Option(None, "--id", help="Id column of --table (default: the one used in training)."),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help="CSV file for rejected rows (default: OUT's name with .rejects.csv)."),
    chunk_rows: int = typer.Option(50_000, "--chunk-rows", min=1, help="Rows scored and written per chunk. Memory use grows with it."),
    exact_reasons: bool = typer.Option(
        False,
        "--exact-reasons",
        help="Compute reasons with LightGBM's TreeSHAP on every row, which costs 26 to 55 times a prediction on a 120-tree model. "
        "The default gives the same values from a cache per tree decision pattern.",
    ),
    crm_export: Optional[Path] = typer.Option(None, "--crm-export", help="Also write a CSV keyed by CRM id for import into the CRM."),
    crm_columns: Optional[str] = typer.Option(
        None,
        "--crm-columns",
        help="CRM column names: field=Column pairs (id=Lead_ID,probability=Lead_Score__c,grade=Grade__c,reasons=Score_Reasons__c) "
        "or a .toml or .json mapping file. Fields: id, probability, score, grade, is_mql, previous_user, matched_user_id, "
        "match_probability, reasons, model_version.",
    ),
    top: int = typer.Option(0, "--top", min=0, help="Print the N highest-scored leads."),
    json_output: bool = JsonOption,
    verbose: bool = VerboseOption,
):
    """Score every lead with its probability, score, grade, previous-user link and reasons.

    Rows are scored and written in chunks, in input order, to a temporary file
    renamed to OUT at the end. Rows that cannot be scored go to the rejects
    file with their row number, column, value and reason. Lead-table output
    has no grade or MQL columns, because table models carry no rules config.
    """
    from leadlink.serving.batch import ScoringOptions, score_table, score_workspace

    _check_input_choice(workspace, table, as_of)
    if crm_columns is not None and crm_export is None:
        raise LeadlinkError("--crm-columns sets the columns of --crm-export; add --crm-export FILE.csv.")
    options = ScoringOptions(
        chunk_rows=chunk_rows,
        rejects_path=rejects,
        reasons_method="lightgbm" if exact_reasons else "patterns",
        crm_export=crm_export,
        crm_columns=crm_columns,
        top=max(top, 10),
        linkage_processes=_linkage_processes(),
    )
    if table is not None:
        summary = score_table(table, out, model_uri=model, id_column=id_column, model_name=TABLE_MODEL_NAME, options=options)
    else:
        summary = score_workspace(workspace, out, as_of=as_of, model_uri=model, options=options)
        say(f"Scored as of {summary['as_of']}")

    _print_score_counts(summary)
    if top:
        _print_top(summary["top"].head(top))
    if json_output:
        summary = {key: value for key, value in summary.items() if key != "top"}
        _print_json(summary)


def _print_score_counts(summary: dict) -> None:
    say(
        f"Read {summary['read']:,} leads, scored {summary['scored']:,}, rejected {summary['rejected']:,} "
        f"with {summary['model_version']} -> {summary['output']}"
    )
    if summary["rejects_file"]:
        say(f"Rejected rows and their reasons: {summary['rejects_file']}")
    if summary["crm_export"]:
        say(f"CRM export: {summary['crm_export']}")


def _print_top(top) -> None:
    table = Table(title=f"Top {len(top)} leads", show_lines=False)
    id_column = top.columns[0]
    table.add_column(Text(str(id_column)), no_wrap=True)
    table.add_column("probability", justify="right")
    if "grade" in top.columns:
        table.add_column("grade")
    if "previous_user" in top.columns:
        table.add_column("previous user")
    table.add_column("reasons")
    for row in top.to_dict("records"):
        cells = [str(row[id_column]), f"{row['probability']:.2f}"]
        if "grade" in top.columns:
            cells.append(f"{row['grade']}{' MQL' if row.get('is_mql') else ''}")
        if "previous_user" in top.columns:
            cells.append("yes" if row["previous_user"] else "no")
        cells.append(row["reasons"].replace("; ", "\n"))
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


@app.command()
@_command
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on. An address other than loopback requires API keys."
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port to listen on."),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help="Model URI or folder; default: the champion (newest version while there is none), reloaded when the champion moves.",
    ),
    workspace: Optional[Path] = typer.Option(
        None, "--workspace", help="Workspace whose users table contacts are linked against (default: the one the model was trained on)."
    ),
    api_keys_file: Optional[Path] = typer.Option(
        None,
        "--api-keys-file",
        envvar="LEADLINK_API_KEYS_FILE",
        help="File with one API key per line ('#' starts a comment), added to the comma-separated keys in LEADLINK_API_KEYS.",
    ),
    strict_fields: bool = typer.Option(
        False, "--strict-fields", envvar="LEADLINK_STRICT_FIELDS", help="Reject request fields outside the contract with 422 instead of ignoring them."
    ),
    max_body_bytes: int = typer.Option(
        1024 * 1024, "--max-body-bytes", min=1, envvar="LEADLINK_MAX_BODY_BYTES", help="Maximum request body size in bytes; larger bodies get 413."
    ),
    max_batch_size: int = typer.Option(
        100, "--max-batch-size", min=1, envvar="LEADLINK_MAX_BATCH_SIZE", help="Maximum number of contacts in one POST /v1/score/batch request."
    ),
    reload_interval: float = typer.Option(
        30.0,
        "--reload-interval",
        min=0.0,
        envvar="LEADLINK_RELOAD_INTERVAL",
        help="Seconds between checks of the registry for a new champion version; 0 turns reloading off.",
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        envvar="LEADLINK_WORKERS",
        help="Worker processes. Above 1, the model and users index load once before the port opens and the workers share them.",
    ),
    verbose: bool = VerboseOption,
):
    """Serve scores over HTTP: POST /v1/score and /v1/score/batch, /healthz, /readyz, /metrics, OpenAPI docs at /docs."""
    import os

    # This must run before LightGBM and prometheus_client are imported.
    metrics_dir = None
    if workers > 1:
        from leadlink.serving.workers import prepare_worker_environment

        metrics_dir = prepare_worker_environment()

    import uvicorn

    from leadlink.serving.api import BENCH_ENDPOINTS_ENV, ServiceSettings, check_model_available, create_app, env_flag
    from leadlink.serving.auth import API_KEYS_ENV, is_loopback_host, load_api_keys
    from leadlink.serving.telemetry import configure_service_logging
    from leadlink.serving.workers import UVICORN_OPTIONS, serve_workers

    configure_service_logging(verbose)
    api_keys = load_api_keys(os.environ.get(API_KEYS_ENV), api_keys_file)
    if not api_keys and not is_loopback_host(host):
        raise LeadlinkError(
            f"--host {host} accepts connections from other machines, but no API keys are configured; "
            f"set {API_KEYS_ENV} or --api-keys-file, or listen on 127.0.0.1."
        )
    check_model_available(model, workspace)
    settings = ServiceSettings(
        api_keys=api_keys,
        max_body_bytes=max_body_bytes,
        max_batch_size=max_batch_size,
        strict_fields=strict_fields,
        reload_interval=reload_interval,
        bench_endpoints=env_flag(os.environ, BENCH_ENDPOINTS_ENV),
    )
    application = create_app(workspace, model_uri=model, settings=settings, metrics_dir=metrics_dir)
    logger.info("Starting the HTTP service on %s port %d (authentication %s).", host, port, "on" if api_keys else "off")
    if workers == 1:
        uvicorn.run(application, host=host, port=port, **UVICORN_OPTIONS)
        logger.info("The HTTP service stopped.")
        return
    status = serve_workers(application, host, port, workers, metrics_dir)
    logger.info("The HTTP service stopped.")
    if status != 0:
        raise typer.Exit(code=status)


if __name__ == "__main__":
    app()
