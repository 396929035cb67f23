"""Probabilistic linkage of CRM contacts to product users with Splink.

``IdentityLinker`` estimates a Fellegi-Sunter model from the two tables
without labels, writes it as Splink's JSON, and finds for each contact the
best-matching user. Term frequencies come from the users table only, so the
same weights apply in batch and when a single contact is scored later.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from splink import Linker, SettingsCreator, block_on

from leadlink.engine import close_db_api, create_db_api, create_sql_connection
from leadlink.features.comparisons import COMPARISON_NAMES, COMPARISONS
from leadlink.errors import LinkageError
from leadlink.features.identity import prepare_identity_frame
from leadlink.features.people import assign_person_ids, one_record_per_person

logger = logging.getLogger(__name__)

# Columns with term-frequency adjustment: agreeing on "smith" is weaker
# evidence than agreeing on "szczepanski".
TF_COLUMNS = ("first_name", "last_name", "city", "email_local")

DEFAULT_THRESHOLD = 0.8
# Below this many contacts or users, starting a worker process (about 2 s)
# costs more than preparing both tables in one process saves.
PARALLEL_PREPARE_MIN_ROWS = 100_000

# Agreement on these alone does not tell a person from a namesake: many
# people share "Maria Garcia", and a job title is shared by thousands.
NAME_ONLY_EVIDENCE = frozenset({"first_name", "last_name", "job_title"})


def build_comparisons() -> list:
    """Return the Splink comparisons leadlink uses, strongest level first."""
    return [comparison.to_splink() for comparison in COMPARISONS]


# Blocking keys that generate candidate pairs, as tuples of identity
# columns. Strong keys first (phone, LinkedIn, personal email, work-email
# local part), then name combinations that still find people whose keys all
# changed: full name, surname with city, and first name with city for a
# surname changed by marriage. Real-time linkage uses the same keys.
BLOCKING_KEYS = (
    ("phone",),
    ("linkedin",),
    ("personal_email",),
    ("email_local",),
    ("first_name", "last_name"),
    ("last_name", "city"),
    ("first_name", "city"),
    ("date_of_birth",),
)
DEFAULT_MAX_COMPARISONS_PER_RULE = 100_000_000


def blocking_rules() -> list:
    """Return the Splink rules of ``BLOCKING_KEYS``."""
    return [block_on(*key) for key in BLOCKING_KEYS]


def rule_name(key: tuple[str, ...]) -> str:
    return "block_on(" + ", ".join(key) + ")"


def count_comparisons(contacts: pd.DataFrame, users: pd.DataFrame, keys: tuple[tuple[str, ...], ...] = BLOCKING_KEYS) -> dict[str, int]:
    """Count the contact-user pairs each blocking rule generates, exactly.

    For a rule on columns K the count is the sum, over every value of K, of
    contacts with it times users with it. Rows with a null in K join nothing.
    Pairs found by several rules are counted once per rule.
    """
    connection = create_sql_connection()
    counts = {}
    for key in keys:
        columns = ", ".join(key)
        not_null = " AND ".join(f"{column} IS NOT NULL" for column in key)
        connection.register("left_side", contacts[list(key)])
        connection.register("right_side", users[list(key)])
        sql = f"""
            WITH l AS (SELECT {columns}, count(*) AS n FROM left_side WHERE {not_null} GROUP BY ALL),
                 r AS (SELECT {columns}, count(*) AS n FROM right_side WHERE {not_null} GROUP BY ALL)
            SELECT coalesce(sum(l.n * r.n), 0) FROM l JOIN r USING ({columns})
        """
        counts[rule_name(key)] = int(connection.execute(sql).fetchall()[0][0])
        connection.unregister("left_side")
        connection.unregister("right_side")
    connection.close()
    return counts


def check_blocking(contacts: pd.DataFrame, users: pd.DataFrame, max_comparisons_per_rule: int) -> dict[str, int]:
    """Raise LinkageError before linking when a rule would generate too many pairs."""
    counts = count_comparisons(contacts, users)
    too_many = {name: count for name, count in counts.items() if count > max_comparisons_per_rule}
    if too_many:
        listed = ", ".join(f"{name}: {count:,} comparisons" for name, count in too_many.items())
        raise LinkageError(
            f"Blocking would exceed the limit of {max_comparisons_per_rule:,} comparisons per rule ({listed}). "
            "Values shared by very many records (a placeholder name, a default city) are the usual cause; "
            "clean them or raise the limit with --max-comparisons."
        )
    logger.info(
        "Blocking generates %s comparisons in all: %s",
        f"{sum(counts.values()):,}",
        ", ".join(f"{name} {count:,}" for name, count in counts.items()),
    )
    return counts


def build_settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=build_comparisons(),
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )


# People keep several personal addresses and phones, and LinkedIn handles
# get renamed, so two records of one person can disagree on a strong key.
# Unsupervised training rarely meets such pairs and would make disagreement
# all but impossible for a match (m near 0, a weight near -20). These floors
# on m of the "else" level keep one disagreeing key from vetoing a link that
# other evidence supports. They are modelling assumptions, not estimates.
KEY_DISAGREEMENT_M_FLOOR = {"personal_email": 0.10, "phone": 0.15, "linkedin": 0.05, "email_local": 0.30}
# m for a level that EM never saw among likely matches.
UNTRAINED_M = 0.01


def _default_m_values(linker: Linker) -> dict[str, list[float | None]]:
    """Splink's starting m per non-null level, highest for the strongest level."""
    defaults = {}
    for comparison in linker._settings_obj.comparisons:
        levels = [level for level in comparison.comparison_levels if not level.is_null_level]
        defaults[comparison.output_column_name] = [level.default_m_probability for level in levels]
    return defaults


def fill_untrained_parameters(model_json: dict, n_users: int, default_m: dict[str, list] | None = None) -> dict:
    """Give every level an m and a u, and apply the disagreement floors.

    A level EM never trained takes Splink's default m for its position
    (``default_m``), or a small m when there is none. A level with no u
    estimate is one that random pairs never reached, so its u is set to 1 in
    ``n_users``: the chance that a random user shares a near-unique key. m
    and u are then rescaled to sum to 1 per comparison.
    """
    model = json.loads(json.dumps(model_json))
    for comparison in model["comparisons"]:
        name = comparison.get("output_column_name")
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        fallbacks = (default_m or {}).get(name) or [None] * len(levels)
        for level, fallback in zip(levels, fallbacks):
            level.setdefault("m_probability", fallback if fallback else UNTRAINED_M)
            level.setdefault("u_probability", 1.0 / max(n_users, 1))
        floor = KEY_DISAGREEMENT_M_FLOOR.get(name)
        if floor is not None and levels[-1]["m_probability"] < floor:
            levels[-1]["m_probability"] = floor
            _rescale(levels[:-1], "m_probability", 1.0 - floor)
        _rescale(levels, "m_probability", 1.0)
        _rescale(levels, "u_probability", 1.0)
    return model


def _rescale(levels: list[dict], key: str, total: float) -> None:
    current = sum(level[key] for level in levels)
    if current > 0:
        for level in levels:
            level[key] = level[key] * total / current


def term_frequency_tables(users: pd.DataFrame, person_ids: pd.Series | None = None) -> dict[str, pd.DataFrame]:
    """Compute the share of people with each value of the TF columns.

    With ``person_ids``, each person counts once however many user records
    they hold, so a duplicated account does not make a name look common.
    """
    if person_ids is not None:
        users = one_record_per_person(users, person_ids)
    tables = {}
    for column in TF_COLUMNS:
        values = users[column].dropna()
        if values.empty:
            tables[column] = pd.DataFrame({column: pd.Series(dtype="string"), f"tf_{column}": pd.Series(dtype="float64")})
            continue
        shares = values.value_counts(normalize=True)
        tables[column] = pd.DataFrame({column: shares.index.astype("string"), f"tf_{column}": shares.to_numpy()})
    return tables


@dataclass
class LinkResult:
    """The outcome of linking: best links, candidate pairs, counts and timings.

    ``links`` has the best user per contact; ``pairs`` every scored pair at
    or above the threshold, before the best one is chosen; ``comparisons``
    the pairs each blocking rule generated; ``person_ids`` the person of each
    user record.
    """

    links: pd.DataFrame
    pairs: pd.DataFrame
    n_pairs_scored: int
    seconds: dict[str, float]
    comparisons: dict[str, int] = field(default_factory=dict)
    person_ids: pd.Series | None = None


class IdentityLinker:
    """Fit or load a Splink model and link contacts to users.

    Parameters
    ----------
    model_json:
        A Splink model dictionary as written by ``save``; when given, the
        linker predicts with it and ``fit`` is not needed.
    engine:
        The SQL engine for Splink (see ``leadlink.engine``).
    """

    def __init__(
        self,
        model_json: dict | None = None,
        engine: str = "duckdb",
        seed: int = 42,
        max_comparisons_per_rule: int = DEFAULT_MAX_COMPARISONS_PER_RULE,
    ):
        self.model_json_ = model_json
        self.engine = engine
        self.seed = seed
        self.max_comparisons_per_rule = max_comparisons_per_rule

    @classmethod
    def load(cls, path: str | Path, engine: str = "duckdb") -> "IdentityLinker":
        try:
            model = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise LinkageError(f"Could not read the linkage model {path}: {error}") from error
        if not isinstance(model, dict) or "comparisons" not in model or "link_type" not in model:
            raise LinkageError(f"{path} is not a Splink model written by `leadlink link --save-model`.")
        return cls(model_json=model, engine=engine)

    def save(self, path: str | Path) -> Path:
        self._check_fitted()
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.model_json_, indent=2), encoding="utf-8")
        return target

    def _check_fitted(self) -> None:
        if self.model_json_ is None:
            raise LinkageError("The linkage model is not fitted; call fit() or load a saved model first.")

    def _new_linker(self, contacts: pd.DataFrame, users: pd.DataFrame, settings, person_ids: pd.Series | None = None) -> Linker:
        db_api = create_db_api(self.engine)
        left = db_api.register(contacts, dataset_display_name="contacts", table_name="contacts_input")
        right = db_api.register(users, dataset_display_name="users", table_name="users_input")
        linker = Linker([left, right], settings, log_level=None)
        for column, table in term_frequency_tables(users, person_ids).items():
            registered = db_api.register(table, table_name=f"tf_lookup_{column}")
            linker.table_management.register_term_frequency_lookup(registered, column)
        return linker

    def fit(self, contacts: pd.DataFrame, users: pd.DataFrame, person_ids: pd.Series | None = None) -> "IdentityLinker":
        """Estimate the model from prepared contacts and users, without labels.

        u probabilities come from random pairs, which are almost all
        non-matches. m probabilities come from two EM passes: one blocked on
        full name (learns emails, phones and LinkedIn) and one blocked on strong
        keys (learns names), so that no comparison is trained on pairs that
        were selected for agreeing on it.
        """
        if contacts.empty or users.empty:
            raise LinkageError(
                f"Linkage needs contacts and users; got {len(contacts):,} contacts and {len(users):,} users."
            )
        report_column_completeness(contacts, users)
        try:
            self.model_json_ = self._estimate(contacts, users, person_ids)
        except LinkageError:
            raise
        except Exception as error:  # Splink and DuckDB raise many types on degenerate data.
            raise LinkageError(f"Could not estimate the linkage model: {error}") from error
        return self

    def _estimate(self, contacts: pd.DataFrame, users: pd.DataFrame, person_ids: pd.Series | None) -> dict:
        linker = self._new_linker(contacts, users, build_settings(), person_ids)
        deterministic = [block_on("linkedin"), block_on("phone"), block_on("personal_email")]
        try:
            linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.6)
        except Exception as error:  # Splink raises plain exceptions on degenerate data.
            logger.warning("Could not estimate the match prior (%s); using 1 in 10,000 pairs.", error)

        prior = linker._settings_obj._probability_two_random_records_match
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=self.seed)
        sessions = (("first_name", "last_name"), ("phone",), ("linkedin",), ("personal_email",))
        for key in sessions:
            if not (contacts[list(key)].notna().all(axis=1).any() and users[list(key)].notna().all(axis=1).any()):
                logger.info("EM pass blocked on %s skipped: no record has it on both sides", rule_name(key))
                continue
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(block_on(*key))
            except Exception as error:  # noqa: BLE001 - one failed session must not stop training
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                logger.warning("EM pass blocked on %s was skipped: %s", rule_name(key), reason)
        # A failed EM session can leave its own match rate behind as the
        # global prior; the estimate from deterministic rules is the one meant.
        linker._settings_obj._probability_two_random_records_match = prior

        defaults = _default_m_values(linker)
        model = fill_untrained_parameters(linker.misc.save_model_to_json(), n_users=len(users), default_m=defaults)
        close_db_api(linker._db_api)
        return model

    def predict_pairs(
        self, contacts: pd.DataFrame, users: pd.DataFrame, threshold: float = 0.0, person_ids: pd.Series | None = None
    ) -> tuple[pd.DataFrame, dict]:
        """Score every blocked contact-user pair at or above ``threshold``.

        Raises LinkageError before any scoring when a blocking rule would
        generate more than ``max_comparisons_per_rule`` pairs.
        """
        self._check_fitted()
        started = time.perf_counter()
        self.comparisons_ = check_blocking(contacts, users, self.max_comparisons_per_rule)
        linker = self._new_linker(contacts, users, self.model_json_, person_ids)
        predictions = linker.inference.predict(threshold_match_probability=threshold or None, warning_mode="never")
        pairs = _orient_pairs(predictions.as_pandas_dataframe())
        close_db_api(linker._db_api)
        seconds = {"predict": round(time.perf_counter() - started, 3)}
        return pairs, seconds

    def link(
        self,
        contacts: pd.DataFrame,
        users: pd.DataFrame,
        threshold: float = DEFAULT_THRESHOLD,
        require_evidence_beyond_name: bool = True,
        person_ids: pd.Series | None = None,
    ) -> LinkResult:
        """Return the best user for each contact with match probability >= threshold.

        With ``require_evidence_beyond_name``, a pair whose only agreeing
        fields are names and title is not a link, however rare the name.
        """
        pairs, seconds = self.predict_pairs(contacts, users, threshold, person_ids)
        n_scored = len(pairs)
        if require_evidence_beyond_name:
            pairs = pairs[has_evidence_beyond_name(pairs["evidence"])]
        best = best_match_per_contact(pairs)
        return LinkResult(best, pairs, n_pairs_scored=n_scored, seconds=seconds, comparisons=self.comparisons_, person_ids=person_ids)


def _orient_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Put contact ids in ``contact_id`` and user ids in ``user_id`` whatever Splink's order."""
    if pairs.empty:
        return pd.DataFrame(columns=["contact_id", "user_id", "match_weight", "match_probability", "evidence"])
    contacts_left = pairs["source_dataset_l"].eq("contacts")
    contact_id = np.where(contacts_left, pairs["unique_id_l"], pairs["unique_id_r"])
    user_id = np.where(contacts_left, pairs["unique_id_r"], pairs["unique_id_l"])
    weight_columns = [f"mw_{name}" for name in COMPARISON_NAMES if f"mw_{name}" in pairs.columns]
    evidence = _evidence_labels(pairs, weight_columns)
    return pd.DataFrame(
        {
            "contact_id": contact_id,
            "user_id": user_id,
            "match_weight": pairs["match_weight"].to_numpy(dtype="float64"),
            "match_probability": pairs["match_probability"].to_numpy(dtype="float64"),
            "evidence": evidence,
        }
    )


def _evidence_labels(pairs: pd.DataFrame, weight_columns: list[str]) -> np.ndarray:
    """List the comparisons whose match weight speaks for a match, per pair."""
    labels = np.full(len(pairs), "", dtype=object)
    for column in weight_columns:
        agreed = pairs[column].to_numpy(dtype="float64") > 0
        name = column.removeprefix("mw_")
        labels = np.where(agreed, np.where(labels == "", name, labels + "," + name), labels)
    return labels


def has_evidence_beyond_name(evidence: pd.Series) -> pd.Series:
    """Mark pairs that agree on at least one field other than names and title."""
    return evidence.fillna("").map(lambda text: any(field and field not in NAME_ONLY_EVIDENCE for field in text.split(",")))


def best_match_per_contact(pairs: pd.DataFrame) -> pd.DataFrame:
    """Keep the highest-weight user per contact; ties go to the smaller user id."""
    if pairs.empty:
        return pairs.copy()
    ordered = pairs.sort_values(["contact_id", "match_weight", "user_id"], ascending=[True, False, True])
    return ordered.drop_duplicates("contact_id", keep="first").reset_index(drop=True)


def prepare_for_linkage(
    contacts: pd.DataFrame, users: pd.DataFrame, default_region: str = "US", processes: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the identity frames of contacts and users for ``IdentityLinker``.

    Normalising names, emails and phones runs in Python, one value at a
    time. With ``processes=2``, large tables are prepared in two processes:
    the users in a spawned worker while this process prepares the contacts.
    A spawned worker imports the caller's main module again. So a script
    that requests it must keep its top-level work under
    ``if __name__ == "__main__":``, as the ``leadlink`` commands do.
    """
    if processes < 2 or min(len(contacts), len(users)) < PARALLEL_PREPARE_MIN_ROWS:
        return prepare_identity_frame(contacts, "contact_id", default_region), prepare_identity_frame(users, "user_id", default_region)

    return _prepare_users_in_worker(contacts, users, default_region)


def _prepare_users_in_worker(contacts: pd.DataFrame, users: pd.DataFrame, default_region: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prepare the users in a spawned worker process while this process prepares the contacts."""
    # A spawned worker, not a forked one: this process may already run
    # DuckDB or OpenMP threads, whose locks a fork would copy mid-use.
    # daemon=True ends it when this process exits normally or by an exception.
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(
        target=_prepare_users_job, args=(sender, users, default_region, os.getpid()), name="leadlink-prepare-users", daemon=True
    )
    try:
        worker.start()
    except OSError as error:
        logger.warning("Could not start a worker process to prepare the users (%s); preparing them here instead.", error)
        return prepare_identity_frame(contacts, "contact_id", default_region), prepare_identity_frame(users, "user_id", default_region)
    sender.close()

    try:
        prepared_contacts = prepare_identity_frame(contacts, "contact_id", default_region)
        prepared_users = _receive_frame(receiver, worker)
    finally:
        receiver.close()
        if worker.is_alive():
            worker.terminate()
        worker.join()
    if prepared_users is None:
        logger.warning("The worker preparing the users stopped (exit code %s); preparing them here instead.", worker.exitcode)
        prepared_users = prepare_identity_frame(users, "user_id", default_region)
    return prepared_contacts, prepared_users


def _receive_frame(receiver, worker) -> pd.DataFrame | None:
    """Wait for the worker's frame; return None when it exits without sending one, and raise the error it sends."""
    while not receiver.poll(1.0):
        if not worker.is_alive() and not receiver.poll(0):
            return None
    try:
        status, payload = receiver.recv()
    except EOFError:
        return None
    if status == "error":
        raise payload
    return payload


def _prepare_users_job(sender, users: pd.DataFrame, default_region: str, parent_pid: int) -> None:
    """Run in the worker: prepare the users and send the frame, or the error, back through ``sender``."""
    # Ctrl-C reaches the whole process group; the parent handles it and ends this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), name="leadlink-parent-watch", daemon=True).start()
    try:
        result = ("ok", prepare_identity_frame(users, "user_id", default_region))
    except Exception as error:  # noqa: BLE001 - sent to the parent, which raises it
        result = ("error", error)
    sender.send(result)
    sender.close()


def _exit_with_parent(parent_pid: int) -> None:
    """End this process once its parent is gone.

    A parent killed by SIGTERM or SIGKILL runs no clean-up, and the worker
    would otherwise wait forever to hand over its frame, holding its memory.
    """
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def link_workspace(
    contacts: pd.DataFrame,
    users: pd.DataFrame,
    linker: IdentityLinker | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    default_region: str = "US",
    max_comparisons_per_rule: int = DEFAULT_MAX_COMPARISONS_PER_RULE,
    processes: int = 1,
) -> tuple[pd.DataFrame, IdentityLinker, LinkResult | None]:
    """Link contacts to users, estimating the model first when none is given.

    ``processes`` is passed to ``prepare_for_linkage``.

    Returns the best match per contact (possibly empty) with a ``job_change``
    flag, the linker used and the full result. An empty users table gives
    no links rather than an error, because a workspace without a product
    user base is still valid.
    """
    if users.empty or contacts.empty:
        logger.info("No users or no contacts: previous-user features will all be zero.")
        empty = pd.DataFrame(columns=LINK_COLUMNS)
        return empty, linker or IdentityLinker(), None

    started = time.perf_counter()
    prepared_contacts, prepared_users = prepare_for_linkage(contacts, users, default_region, processes)
    if not (_has_identity(prepared_contacts) and _has_identity(prepared_users)):
        logger.warning(
            "Contacts or users carry no name, email, phone or LinkedIn value at all; nobody can be linked, "
            "so previous-user features will all be zero."
        )
        return pd.DataFrame(columns=LINK_COLUMNS), linker or IdentityLinker(), None
    person_ids = assign_person_ids(prepared_users)
    seconds = {"prepare": round(time.perf_counter() - started, 3)}

    if linker is None or linker.model_json_ is None:
        fit_started = time.perf_counter()
        linker = IdentityLinker(max_comparisons_per_rule=max_comparisons_per_rule).fit(prepared_contacts, prepared_users, person_ids)
        seconds["estimate"] = round(time.perf_counter() - fit_started, 3)
        logger.info("Estimated the linkage model in %.1f s", seconds["estimate"])
    else:
        linker.max_comparisons_per_rule = max_comparisons_per_rule

    result = linker.link(prepared_contacts, prepared_users, threshold, person_ids=person_ids)
    result.seconds = {**seconds, **result.seconds}
    result.links = add_job_change(result.links, contacts, users)
    logger.info(
        "Linked %s of %s contacts to a user (match probability >= %.2f); %s pairs scored above the threshold",
        f"{len(result.links):,}",
        f"{len(contacts):,}",
        threshold,
        f"{result.n_pairs_scored:,}",
    )
    return result.links, linker, result


def resolve_linker(
    model_json: Path | None = None, retrain: bool = False, model_uri: str | None = None
) -> tuple[IdentityLinker | None, str, str | None]:
    """Choose the linkage model: a JSON file, a registered model's, or a new one.

    Returns the linker (None means "estimate a new model"), a sentence
    saying which was chosen, and the phone region the registered model was
    trained with, if any. Without a registered model, a new one is
    estimated rather than failing.
    """
    if model_json is not None:
        return IdentityLinker.load(model_json), f"loaded from {model_json}", None
    if retrain:
        return None, "estimated afresh (--retrain)", None

    from leadlink.errors import ModelNotFoundError
    from leadlink.serving.model import load_model

    try:
        registered = load_model(model_uri)
    except ModelNotFoundError as error:
        if model_uri is not None:
            raise
        logger.info("No registered model to take a linkage model from (%s)", error)
        return None, "estimated afresh (no registered model yet)", None
    if registered.scorer.linkage_model is None:
        return None, f"estimated afresh ({registered.uri} has no linkage model)", None
    label = f"{registered.name}/{registered.version}" if registered.name else registered.uri
    region = registered.scorer.spec.get("feature_config", {}).get("default_region")
    return IdentityLinker(model_json=registered.scorer.linkage_model), f"reused from {label}", region


def _has_identity(prepared: pd.DataFrame) -> bool:
    columns = ["first_name", "last_name", "email_local", "personal_email", "phone", "linkedin"]
    return bool(prepared[columns].notna().to_numpy().any())


def with_person_ids(users: pd.DataFrame, result: LinkResult | None) -> pd.DataFrame:
    """Return ``users`` with the ``person_id`` found while linking, when there is one."""
    if result is None or result.person_ids is None or len(result.person_ids) != len(users):
        return users
    return users.assign(person_id=result.person_ids.to_numpy())


LINK_COLUMNS = ["contact_id", "user_id", "match_weight", "match_probability", "evidence", "job_change"]


def add_job_change(links: pd.DataFrame, contacts: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Add ``job_change``: True at another company, False at the same, null if unknown."""
    from leadlink.features.pipeline import same_company_flags

    if links.empty:
        return links.assign(job_change=pd.Series(dtype="boolean"))
    contact_side = links[["contact_id"]].merge(contacts, on="contact_id", how="left")
    user_side = links[["user_id"]].merge(users, on="user_id", how="left")
    same = same_company_flags(contact_side, user_side)
    job_change = pd.array(np.where(np.isnan(same), pd.NA, same == 0), dtype="boolean")
    return links.assign(job_change=job_change)


CORE_IDENTITY_COLUMNS = ("first_name", "last_name", "email_local", "personal_email", "phone", "linkedin", "city", "company_domain", "job_title")


def report_column_completeness(contacts: pd.DataFrame, users: pd.DataFrame, minimum_share: float = 0.01) -> dict[str, dict]:
    """Log identity columns that are almost empty or constant on either side.

    Such columns cannot be trained (Splink keeps default weights for their
    levels) and add nothing to the links; they are reported, not dropped.
    """
    report = {}
    for side, frame in (("contacts", contacts), ("users", users)):
        for column in CORE_IDENTITY_COLUMNS:
            values = frame[column]
            filled = float(values.notna().mean()) if len(values) else 0.0
            distinct = int(values.dropna().nunique())
            report[f"{side}.{column}"] = {"filled": filled, "distinct": distinct}
            if filled < minimum_share:
                logger.warning("Linkage: %s.%s is filled on %.1f%% of rows; its comparison cannot be trained.", side, column, 100 * filled)
            elif distinct == 1:
                logger.warning("Linkage: %s.%s has a single distinct value; its comparison carries no evidence.", side, column)
    return report


def link_quality(links: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Compare predicted links with true (contact_id, user_id) pairs.

    When ``truth`` has an ``evidence`` column, recall is also reported over
    the true links that carry evidence beyond the name, because a link with
    only a shared name cannot be distinguished from a namesake.
    """
    predicted = set(zip(links["contact_id"], links["user_id"]))
    true_pairs = set(zip(truth["contact_id"], truth["user_id"]))
    correct = len(predicted & true_pairs)
    quality = {
        "predicted_links": float(len(predicted)),
        "true_links": float(len(true_pairs)),
        "correct_links": float(correct),
        "precision": correct / len(predicted) if predicted else float("nan"),
        "recall": correct / len(true_pairs) if true_pairs else float("nan"),
    }
    if "evidence" in truth.columns:
        evidence = truth["evidence"].fillna("").astype(str)
        beyond_name = evidence.map(lambda e: any(part and part != "name" for part in e.split(",")))
        strong = set(zip(truth.loc[beyond_name, "contact_id"], truth.loc[beyond_name, "user_id"]))
        quality["true_links_beyond_name"] = float(len(strong))
        quality["recall_beyond_name"] = len(predicted & strong) / len(strong) if strong else float("nan")
    return quality
