"""Probabilistic linkage of CRM contacts to product users with Splink.

``IdentityLinker`` estimates a Fellegi-Sunter model from the two tables
without labels, writes it as Splink's JSON, and finds for each contact the
best-matching user. Term frequencies come from the users table only, so the
same weights apply in batch and when a single contact is scored later.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from splink import Linker, SettingsCreator, block_on

from leadlink.engine import create_db_api
from leadlink.features.comparisons import COMPARISON_NAMES, COMPARISONS
from leadlink.errors import LinkageError
from leadlink.features.identity import prepare_identity_frame

logger = logging.getLogger(__name__)

# Columns with term-frequency adjustment: agreeing on "smith" is weaker
# evidence than agreeing on "szczepanski".
TF_COLUMNS = ("first_name", "last_name", "city", "email_local")

DEFAULT_THRESHOLD = 0.8

# Agreement on these alone does not tell a person from a namesake: many
# people share "Maria Garcia", and a job title is shared by thousands.
NAME_ONLY_EVIDENCE = frozenset({"first_name", "last_name", "job_title"})


def build_comparisons() -> list:
    """Return the Splink comparisons leadlink uses, strongest level first."""
    return [comparison.to_splink() for comparison in COMPARISONS]


def blocking_rules() -> list:
    """Return the rules that generate candidate pairs for prediction.

    Strong keys first (phone, LinkedIn, personal email, work-email local
    part), then name combinations that still find people whose keys all
    changed: full name, surname with city, and first name with city for a
    surname changed by marriage.
    """
    return [
        block_on("phone"),
        block_on("linkedin"),
        block_on("personal_email"),
        block_on("email_local"),
        block_on("first_name", "last_name"),
        block_on("last_name", "city"),
        block_on("first_name", "city"),
    ]


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


def term_frequency_tables(users: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Compute the share of users holding each value of the TF columns."""
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
    """The best user for each contact and the timings of the run."""

    links: pd.DataFrame
    n_pairs_scored: int
    seconds: dict[str, float]


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

    def __init__(self, model_json: dict | None = None, engine: str = "duckdb", seed: int = 42):
        self.model_json_ = model_json
        self.engine = engine
        self.seed = seed

    @classmethod
    def load(cls, path: str | Path, engine: str = "duckdb") -> "IdentityLinker":
        try:
            model = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise LinkageError(f"Could not read the linkage model {path}: {error}") from error
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

    def _new_linker(self, contacts: pd.DataFrame, users: pd.DataFrame, settings) -> Linker:
        db_api = create_db_api(self.engine)
        left = db_api.register(contacts, dataset_display_name="contacts", table_name="contacts_input")
        right = db_api.register(users, dataset_display_name="users", table_name="users_input")
        linker = Linker([left, right], settings, log_level=None)
        for column, table in term_frequency_tables(users).items():
            registered = db_api.register(table, table_name=f"tf_lookup_{column}")
            linker.table_management.register_term_frequency_lookup(registered, column)
        return linker

    def fit(self, contacts: pd.DataFrame, users: pd.DataFrame) -> "IdentityLinker":
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
        linker = self._new_linker(contacts, users, build_settings())
        deterministic = [block_on("linkedin"), block_on("phone"), block_on("personal_email")]
        try:
            linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.6)
        except Exception as error:  # Splink raises plain exceptions on degenerate data.
            logger.warning("Could not estimate the match prior (%s); using 1 in 10,000 pairs.", error)

        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=self.seed)
        for session_rule in (block_on("first_name", "last_name"), block_on("phone"), block_on("linkedin")):
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(session_rule)
            except Exception as error:  # noqa: BLE001 - one empty session must not stop training
                logger.warning("EM pass blocked on %s was skipped: %s", session_rule, error)

        self.model_json_ = linker.misc.save_model_to_json()
        return self

    def predict_pairs(self, contacts: pd.DataFrame, users: pd.DataFrame, threshold: float = 0.0) -> tuple[pd.DataFrame, dict]:
        """Score every blocked contact-user pair at or above ``threshold``."""
        self._check_fitted()
        started = time.perf_counter()
        linker = self._new_linker(contacts, users, self.model_json_)
        predictions = linker.inference.predict(threshold_match_probability=threshold or None, warning_mode="never")
        pairs = predictions.as_pandas_dataframe()
        seconds = {"predict": time.perf_counter() - started}
        return _orient_pairs(pairs), seconds

    def link(
        self,
        contacts: pd.DataFrame,
        users: pd.DataFrame,
        threshold: float = DEFAULT_THRESHOLD,
        require_evidence_beyond_name: bool = True,
    ) -> LinkResult:
        """Return the best user for each contact with match probability >= threshold.

        With ``require_evidence_beyond_name``, a pair whose only agreeing
        fields are names and title is not a link, however rare the name.
        """
        pairs, seconds = self.predict_pairs(contacts, users, threshold)
        n_scored = len(pairs)
        if require_evidence_beyond_name:
            pairs = pairs[has_evidence_beyond_name(pairs["evidence"])]
        best = best_match_per_contact(pairs)
        return LinkResult(best, n_pairs_scored=n_scored, seconds=seconds)


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


def prepare_for_linkage(contacts: pd.DataFrame, users: pd.DataFrame, default_region: str = "US") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the identity frames of contacts and users for ``IdentityLinker``."""
    return (
        prepare_identity_frame(contacts, "contact_id", default_region),
        prepare_identity_frame(users, "user_id", default_region),
    )


def link_workspace(
    contacts: pd.DataFrame,
    users: pd.DataFrame,
    linker: IdentityLinker | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    default_region: str = "US",
) -> tuple[pd.DataFrame, IdentityLinker, LinkResult | None]:
    """Link contacts to users, estimating the model first when none is given.

    Returns the best match per contact (possibly empty), the linker used and
    the raw result. An empty users table gives no links rather than an error,
    because a workspace without a product user base is still valid.
    """
    if users.empty or contacts.empty:
        logger.info("No users or no contacts: previous-user features will all be zero.")
        empty = pd.DataFrame(columns=["contact_id", "user_id", "match_weight", "match_probability", "evidence"])
        return empty, linker or IdentityLinker(), None

    prepared_contacts, prepared_users = prepare_for_linkage(contacts, users, default_region)
    started = time.perf_counter()
    if linker is None or linker.model_json_ is None:
        linker = IdentityLinker().fit(prepared_contacts, prepared_users)
        logger.info("Estimated the linkage model in %.1f s", time.perf_counter() - started)
    result = linker.link(prepared_contacts, prepared_users, threshold)
    logger.info(
        "Linked %s of %s contacts to a user (match probability >= %.2f) from %s candidate pairs above it",
        f"{len(result.links):,}",
        f"{len(contacts):,}",
        threshold,
        f"{result.n_pairs_scored:,}",
    )
    return result.links, linker, result


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
