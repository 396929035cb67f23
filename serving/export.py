"""CRM export: a CSV of scores keyed by the CRM id, with the column names the CRM import expects.

The mapping from scoring fields to CRM column names comes from
``--crm-columns``, either inline (``id=Lead_ID,probability=Lead_Score__c``) or
from a TOML or JSON file that maps field to column name. Only mapped fields
are exported, in the mapping's order, and the id is required. The file is
UTF-8, probabilities have a fixed number of decimals, flags read true/false
and reasons are joined with "; ".
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pandas as pd
import pyarrow as pa

from leadlink.errors import LeadlinkError
from leadlink.serving.stream import AtomicTableWriter

PROBABILITY_DECIMALS = 4
# Scoring fields a CRM export can carry; "id" is the lead's id column.
EXPORT_FIELDS = (
    "id",
    "probability",
    "score",
    "grade",
    "is_mql",
    "previous_user",
    "matched_user_id",
    "match_probability",
    "reasons",
    "model_version",
)
DEFAULT_FIELDS = ("id", "probability", "score", "grade", "is_mql", "reasons")
_FLAG_FIELDS = ("is_mql", "previous_user")


def parse_crm_columns(spec: str | None, available: list[str], id_column: str) -> dict[str, str]:
    """Return the field-to-column mapping for the export.

    ``spec`` is None (the default fields under their own names, the id under
    ``id_column``), an inline list ``field=Column,...``, or the path of a
    ``.toml`` or ``.json`` file holding one table or object of field to
    column name. ``available`` lists the fields this run produces. Raises
    LeadlinkError for an unknown or unavailable field, an empty or repeated
    column name, or a mapping without the id.
    """
    if spec is None:
        mapping = {field: (id_column if field == "id" else field) for field in DEFAULT_FIELDS if field in available}
    elif spec.strip().lower().endswith((".toml", ".json")):
        mapping = _read_mapping_file(Path(spec.strip()))
    else:
        mapping = _parse_inline(spec)
    _check_mapping(mapping, available)
    return mapping


def _parse_inline(spec: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        field, separator, column = item.partition("=")
        if not separator:
            raise LeadlinkError(f"--crm-columns item {item.strip()!r} is invalid; write field=Column, for example probability=Lead_Score__c.")
        field = field.strip()
        if field in mapping:
            raise LeadlinkError(f"--crm-columns maps the field {field!r} twice; map each field once.")
        mapping[field] = column.strip()
    return mapping


def _read_mapping_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LeadlinkError(f"CRM column mapping file {path} not found.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LeadlinkError(f"Could not read the CRM column mapping file {path}: {error}") from None
    try:
        values = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise LeadlinkError(f"CRM column mapping file {path} is not valid {path.suffix[1:].upper()}: {error}") from None
    if not isinstance(values, dict) or not all(isinstance(value, str) for value in values.values()):
        raise LeadlinkError(f"CRM column mapping file {path} must map each field to a column name (text), such as probability = \"Lead_Score__c\".")
    return {str(field).strip(): value.strip() for field, value in values.items()}


def _check_mapping(mapping: dict[str, str], available: list[str]) -> None:
    unknown = [field for field in mapping if field not in EXPORT_FIELDS]
    if unknown:
        raise LeadlinkError(f"--crm-columns names unknown field(s) {unknown}; fields are {', '.join(EXPORT_FIELDS)}.")
    missing = [field for field in mapping if field not in available]
    if missing:
        raise LeadlinkError(
            f"--crm-columns asks for {missing}, which this run does not produce; it produces {', '.join(available)}. "
            "Grade and is_mql need a model with a rules config; previous-user fields need a workspace."
        )
    if "id" not in mapping:
        raise LeadlinkError("--crm-columns must map the id field, because the CRM matches rows by id (for example id=Lead_ID).")
    empty = [field for field, column in mapping.items() if not column]
    if empty:
        raise LeadlinkError(f"--crm-columns gives no column name for {empty}.")
    columns = list(mapping.values())
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    if repeated:
        raise LeadlinkError(f"--crm-columns uses the column name(s) {repeated} more than once; give each field its own column.")


def crm_frame(output: pd.DataFrame, mapping: dict[str, str], id_column: str) -> pd.DataFrame:
    """Turn a chunk of scoring output into CRM rows, formatted as text."""
    columns = {}
    for field, column in mapping.items():
        source = output[id_column] if field == "id" else output[field]
        columns[column] = _format(field, source)
    return pd.DataFrame(columns)


def _format(field: str, values: pd.Series) -> pd.Series:
    if field in ("probability", "match_probability"):
        numbers = pd.to_numeric(values, errors="coerce")
        text = numbers.map(lambda value: f"{value:.{PROBABILITY_DECIMALS}f}", na_action="ignore")
        return text.astype(object).where(numbers.notna(), "")
    if field in _FLAG_FIELDS:
        return values.map(lambda value: "true" if value else "false").astype(object)
    return values.astype(object).where(values.notna(), "")


class CrmExportWriter:
    """Write CRM rows chunk by chunk to a CSV file, atomically like the scoring output."""

    def __init__(self, path: Path, mapping: dict[str, str], id_column: str):
        if path.suffix.lower() != ".csv":
            raise LeadlinkError(f"--crm-export {path} must end in .csv.")
        self.path = path
        self.mapping = mapping
        self.id_column = id_column
        schema = pa.schema([(column, pa.string()) for column in mapping.values()])
        self._writer = AtomicTableWriter(path, schema=schema)

    def write(self, output: pd.DataFrame) -> None:
        self._writer.write(crm_frame(output, self.mapping, self.id_column))

    def close(self) -> Path:
        return self._writer.close()

    def abort(self) -> None:
        self._writer.abort()
