"""Training and scoring on a plain lead table: one row per lead, any columns.

Column types are inferred from the values: numbers, yes/no flags, and
categories. Placeholder values that web forms store ("Select", "N/A", "-")
count as missing. Columns that cannot help a model (empty, constant, or a
unique identifier per row) are dropped, and each drop is reported.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from unidecode import unidecode

from leadlink.errors import LeadlinkError, TrainingError
from leadlink.features.workspace import read_table_file

logger = logging.getLogger(__name__)

PLACEHOLDERS = frozenset({"select", "n/a", "na", "none", "null", "nan", "-", "--", "?", "unknown", "not provided", "not specified"})
_YES = frozenset({"yes", "y", "true", "t", "1"})
_NO = frozenset({"no", "n", "false", "f", "0"})
NUMERIC_SHARE = 0.95
# A text column with more distinct values than this share of rows is an
# identifier or free text, not a category a tree model can learn from.
IDENTIFIER_SHARE = 0.9


@dataclass
class TableColumn:
    source: str
    name: str
    kind: str  # numeric, boolean or categorical


@dataclass
class TableSchema:
    """The mapping from raw table columns to model features, stored with the model."""

    columns: list[TableColumn]
    label: str | None
    id_column: str | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "columns": [vars(column) for column in self.columns],
            "label": self.label,
            "id_column": self.id_column,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, values: dict) -> "TableSchema":
        return cls([TableColumn(**c) for c in values["columns"]], values.get("label"), values.get("id_column"), values.get("notes", []))

    @property
    def display_names(self) -> dict[str, str]:
        return {column.name: column.source for column in self.columns}


def feature_name(source: str, position: int) -> str:
    """Return a LightGBM-safe feature name for a column header of any form.

    LightGBM rejects JSON punctuation in feature names, so headers such as
    "Total Time (min)" or "Città" become ASCII slugs, numbered to stay unique.
    """
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", unidecode(str(source))).strip("_").lower()
    return f"c{position:03d}_{slug[:40] or 'column'}"


def clean_values(series: pd.Series) -> pd.Series:
    """Trim text and turn empty strings and placeholder values into missing."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    text = series.astype("string").str.strip()
    is_placeholder = text.str.lower().isin(PLACEHOLDERS).fillna(False) | text.eq("").fillna(False)
    return text.mask(is_placeholder)


def infer_kind(values: pd.Series) -> str | None:
    """Return numeric, boolean or categorical; None for a column without values."""
    present = values.dropna()
    if present.empty:
        return None
    if pd.api.types.is_numeric_dtype(values):
        return "boolean" if set(present.unique()) <= {0, 1} else "numeric"
    lowered = present.astype(str).str.lower()
    if set(lowered.unique()) <= (_YES | _NO):
        return "boolean"
    numbers = pd.to_numeric(present.astype(str).str.replace(",", "", regex=False), errors="coerce")
    if numbers.notna().mean() >= NUMERIC_SHARE:
        return "numeric"
    return "categorical"


def convert_column(values: pd.Series, kind: str) -> pd.Series:
    """Return the column as model input: floats for numbers and flags, text otherwise."""
    if kind == "numeric":
        if pd.api.types.is_numeric_dtype(values):
            return values.astype("float64")
        return pd.to_numeric(values.astype("string").str.replace(",", "", regex=False), errors="coerce").astype("float64")
    if kind == "boolean":
        lowered = values.astype("string").str.lower().str.strip().str.removesuffix(".0")
        result = pd.Series(np.nan, index=values.index)
        result[lowered.isin(_YES).fillna(False)] = 1.0
        result[lowered.isin(_NO).fillna(False)] = 0.0
        return result
    return values.astype("object").where(values.notna(), None)


def infer_schema(table: pd.DataFrame, label: str | None, id_column: str | None) -> TableSchema:
    """Decide which columns become features and of which kind."""
    columns: list[TableColumn] = []
    notes: list[str] = []
    for position, source in enumerate(table.columns):
        if source in (label, id_column):
            continue
        values = clean_values(table[source])
        kind = infer_kind(values)
        present = values.dropna()
        if kind is None:
            notes.append(f"dropped column '{source}': empty after removing placeholder values")
            continue
        if present.nunique() <= 1:
            notes.append(f"dropped column '{source}': one value only ({present.iloc[0]!r})")
            continue
        if _looks_like_identifier(convert_column(present, kind), kind, len(table)):
            notes.append(f"dropped column '{source}': a different value on almost every row, like an identifier")
            continue
        if kind == "categorical" and _looks_like_contact_data(present):
            notes.append(f"dropped column '{source}': it holds email addresses or phone numbers, which are personal data, not features")
            continue
        if kind == "categorical" and _names_a_person(source):
            notes.append(f"dropped column '{source}': it holds people's names, which are personal data, not features")
            continue
        columns.append(TableColumn(str(source), feature_name(source, position), kind))
    for note in notes:
        logger.info("Lead table: %s", note)
    return TableSchema(columns, label, id_column, notes)


def _looks_like_identifier(present: pd.Series, kind: str, n_rows: int) -> bool:
    if n_rows < 50 or kind == "boolean":
        return False
    distinct_share = present.nunique() / n_rows
    if kind == "categorical":
        return distinct_share > IDENTIFIER_SHARE
    whole_numbers = np.allclose(present.astype(float) % 1, 0)
    return whole_numbers and present.nunique() == len(present) and distinct_share > IDENTIFIER_SHARE


_EMAIL_LIKE = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_PHONE_LIKE = r"^\+?[\d\s().-]{7,}$"


# Headers of columns holding a person's name; names identify people and
# would end up in the model's category levels and MLflow artifacts.
_PERSON_NAME_HEADER = re.compile(
    r"^(first|last|given|family|middle|full|contact|lead|customer|person)?[\s_-]*(name|surname|forename)s?$|^(vorname|nachname|prenom|nom|nombre|apellidos?)$",
    re.IGNORECASE,
)


def _names_a_person(header: object) -> bool:
    folded = unidecode(str(header)).strip()
    return bool(_PERSON_NAME_HEADER.match(folded))


def _looks_like_contact_data(present: pd.Series) -> bool:
    """True when most values are email addresses or phone numbers."""
    text = present.astype(str).str.strip()
    share = (text.str.match(_EMAIL_LIKE) | text.str.match(_PHONE_LIKE)).mean()
    return bool(share >= 0.5)


def table_features(table: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Apply ``schema`` to a raw table; a column absent from it is all missing."""
    features, _ = table_features_with_counts(table, schema)
    return features


def table_features_with_counts(table: pd.DataFrame, schema: TableSchema) -> tuple[pd.DataFrame, dict[str, int]]:
    """Apply ``schema`` and count, per column, values that could not be read.

    Raises LeadlinkError when the table has none of the model's columns,
    because every row would get the same score.
    """
    missing = [c.source for c in schema.columns if c.source not in table.columns]
    if len(missing) == len(schema.columns):
        raise LeadlinkError(f"The table has none of the model's {len(schema.columns)} columns (such as {missing[:3]}); it cannot be scored with this model.")
    if missing:
        logger.warning("Lead table lacks %d model column(s), scored as missing: %s", len(missing), missing)
    features, cleared = {}, {}
    for column in schema.columns:
        raw = table[column.source] if column.source in table.columns else pd.Series(None, index=table.index, dtype="object")
        cleaned = clean_values(raw)
        converted = convert_column(cleaned, column.kind)
        unreadable = int((converted.isna() & cleaned.notna()).sum())
        if unreadable:
            cleared[column.source] = unreadable
            logger.warning("Lead table column %r: %s value(s) are not %s and were treated as missing", column.source, f"{unreadable:,}", column.kind)
        features[column.name] = converted
    return pd.DataFrame(features, index=table.index), cleared


def parse_labels(values: pd.Series) -> pd.Series:
    """Map label values to 1 or 0; anything else becomes missing."""
    lowered = values.astype("string").str.strip().str.lower().str.removesuffix(".0")
    positive = lowered.isin(_YES | {"won", "converted", "positive"}).fillna(False)
    negative = lowered.isin(_NO | {"lost", "not converted", "negative"}).fillna(False)
    labels = pd.Series(np.nan, index=values.index)
    labels[positive] = 1.0
    labels[negative] = 0.0
    return labels


def read_lead_table(path: str | Path) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise LeadlinkError(f"Lead table {file} does not exist.")
    if file.suffix not in (".csv", ".parquet"):
        raise LeadlinkError(f"Lead table {file} must be a .csv or .parquet file.")
    return read_table_file(file)


def check_columns(table: pd.DataFrame, path: str | Path, label: str | None, id_column: str | None) -> None:
    for role, column in (("label", label), ("id", id_column)):
        if column is not None and column not in table.columns:
            raise TrainingError(f"Lead table {path} has no {role} column {column!r}; its columns are {list(table.columns)}.")


def split_labelled_rows(table: pd.DataFrame, path: str | Path, label: str) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Return usable rows, their labels, and the rejected rows with reasons."""
    if table.empty:
        raise TrainingError(f"Lead table {path} has a header but no rows.")
    labels = parse_labels(table[label])
    usable = labels.notna()
    if not usable.any():
        seen = table[label].dropna().astype(str).unique()[:10].tolist()
        raise TrainingError(
            f"No row of {path} has a readable label in column {label!r}; found values {seen}. "
            "Expected 1/0, yes/no, true/false, won/lost or converted/not converted."
        )
    rejects = pd.DataFrame(
        {
            "table": str(path),
            "row": np.flatnonzero(~usable.to_numpy()) + 2,
            "id": None,
            "column": label,
            "value": table.loc[~usable, label].astype("string").to_numpy(),
            "expected": "a label: 1/0, yes/no, true/false or won/lost",
            "severity": "rejected",
        }
    )
    return table.loc[usable], labels[usable].astype(int).to_numpy(), rejects
