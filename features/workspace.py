"""The workspace contract: which tables a workspace contains and how they are checked.

A workspace is a folder with one file per table, ``<table>.csv`` or
``<table>.parquet``. ``load_workspace`` reads every table present, coerces each
known column to its type, and sorts problems into two kinds:

* a row that cannot be used (missing or duplicate id, unparseable required
  timestamp, unknown outcome, reference to a contact that does not exist) is
  removed and recorded as ``rejected``;
* a value in an optional column that cannot be parsed is set to null and
  recorded as ``value_cleared``; the row is kept.

Every problem names the table, the row number in the file, the column, the
value and what was expected, so nothing disappears without a trace.
"""

from __future__ import annotations

import csv
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadlink.errors import WorkspaceError

logger = logging.getLogger(__name__)

TABLE_NAMES = ("contacts", "users", "events", "deals")
SUPPORTED_SUFFIXES = (".csv", ".parquet")
OUTCOMES = ("won", "lost", "open")
KNOWN_EVENT_TYPES = (
    "page_view",
    "product_page_view",
    "pricing_page_view",
    "demo_request",
    "trial_signup",
    "email_open",
    "email_click",
    "email_bounce",
    "webinar_registered",
    "webinar_attended",
    "content_download",
    "chat",
    "form_submit",
    "unsubscribe",
)
_TRUE_WORDS = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE_WORDS = {"false", "f", "no", "n", "0", "0.0"}

# Row numbers in messages count the header as line 1, so the first data row
# of a CSV file is row 2, as a spreadsheet or text editor shows it.
_FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: str  # one of: id, text, timestamp, integer, number, boolean
    required: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    unique_id: str | None = None

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _text(*names: str) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(n, "text") for n in names)


_PERSON_COLUMNS = _text(
    "first_name",
    "last_name",
    "email",
    "personal_email",
    "phone",
    "linkedin_url",
    "job_title",
    "company_name",
    "company_domain",
    # Rare in B2B systems but strong evidence where present.
    "date_of_birth",
    "postcode",
    "address",
)

CONTRACT: dict[str, TableSpec] = {
    "contacts": TableSpec(
        "contacts",
        (
            ColumnSpec("contact_id", "id", required=True),
            *_PERSON_COLUMNS,
            *_text("industry"),
            ColumnSpec("employee_count", "integer"),
            ColumnSpec("annual_revenue", "number"),
            *_text("country", "city"),
            ColumnSpec("created_at", "timestamp"),
        ),
        unique_id="contact_id",
    ),
    "users": TableSpec(
        "users",
        (
            ColumnSpec("user_id", "id", required=True),
            *_PERSON_COLUMNS,
            *_text("country", "city"),
            ColumnSpec("signed_up_at", "timestamp"),
            ColumnSpec("last_active_at", "timestamp"),
            ColumnSpec("active_days", "integer"),
            ColumnSpec("is_admin", "boolean"),
            *_text("plan"),
        ),
        unique_id="user_id",
    ),
    "events": TableSpec(
        "events",
        (
            ColumnSpec("contact_id", "id", required=True),
            ColumnSpec("event_type", "text", required=True),
            ColumnSpec("occurred_at", "timestamp", required=True),
            *_text("url"),
        ),
    ),
    "deals": TableSpec(
        "deals",
        (
            ColumnSpec("deal_id", "id", required=True),
            ColumnSpec("contact_id", "id", required=True),
            ColumnSpec("created_at", "timestamp", required=True),
            ColumnSpec("closed_at", "timestamp"),
            ColumnSpec("outcome", "text", required=True),
            ColumnSpec("amount", "number"),
        ),
        unique_id="deal_id",
    ),
}

PROBLEM_COLUMNS = ["table", "row", "id", "column", "value", "expected", "severity"]


@dataclass
class TableCounts:
    read: int = 0
    used: int = 0
    rejected: int = 0
    values_cleared: int = 0


@dataclass
class Workspace:
    """The validated tables of a workspace and the problems found in them.

    Every table is present after loading; a table without a file is empty
    with the contract's columns. ``row_number`` is kept on each table so a
    later step can still point at the row in the file.
    """

    path: Path
    tables: dict[str, pd.DataFrame]
    problems: pd.DataFrame
    counts: dict[str, TableCounts] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def contacts(self) -> pd.DataFrame:
        return self.tables["contacts"]

    @property
    def users(self) -> pd.DataFrame:
        return self.tables["users"]

    @property
    def events(self) -> pd.DataFrame:
        return self.tables["events"]

    @property
    def deals(self) -> pd.DataFrame:
        return self.tables["deals"]

    @property
    def n_rejected(self) -> int:
        return sum(c.rejected for c in self.counts.values())

    def _timestamp_columns(self):
        for table_name, spec in CONTRACT.items():
            table = self.tables[table_name]
            for column in spec.columns:
                if column.kind == "timestamp" and len(table):
                    yield table[column.name]

    def latest_timestamp(self, not_after: pd.Timestamp | None = None) -> pd.Timestamp | None:
        """Return the latest timestamp in the workspace, optionally ignoring later ones."""
        candidates = []
        for values in self._timestamp_columns():
            if not_after is not None:
                values = values[values <= not_after]
            value = values.max()
            if pd.notna(value):
                candidates.append(value)
        return max(candidates) if candidates else None

    def count_timestamps_after(self, moment: pd.Timestamp) -> int:
        return int(sum((values > moment).sum() for values in self._timestamp_columns()))

    def write_problems(self, path: Path) -> Path | None:
        """Write every rejected row and cleared value to ``path`` as CSV."""
        if self.problems.empty:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.problems.to_csv(path, index=False)
        return path

    def summary(self) -> dict:
        """Return row counts of the tables read from files."""
        return {
            name: {
                "read": c.read,
                "used": c.used,
                "rejected": c.rejected,
                "values_cleared": c.values_cleared,
            }
            for name, c in self.counts.items()
            if name in self.files
        }


def find_table_file(workspace: Path, table: str) -> Path | None:
    """Return the file holding ``table`` in ``workspace``, or None if absent."""
    matches = [workspace / f"{table}{suffix}" for suffix in SUPPORTED_SUFFIXES]
    present = [p for p in matches if p.is_file()]
    if len(present) > 1:
        raise WorkspaceError(
            f"Workspace {workspace} has both {present[0].name} and {present[1].name}; "
            f"keep exactly one file for table '{table}'."
        )
    return present[0] if present else None


OVERLONG_COLUMN = "__overlong_row__"


def read_table_file(path: Path) -> pd.DataFrame:
    """Read a CSV (UTF-8) or Parquet file, with every CSV column as text.

    Header names are stripped of surrounding spaces. A CSV row with more
    fields than the header is marked in the ``OVERLONG_COLUMN`` column
    unless its extra fields are empty (a trailing delimiter), so that the
    caller can reject it instead of losing the extra values silently.
    """
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = _read_csv_text(path)
    except UnicodeDecodeError as error:
        raise WorkspaceError(f"Could not read {path}: it is not UTF-8 ({error.reason} at byte {error.start}); save it as UTF-8.") from error
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise WorkspaceError(f"Could not read {path}: {error}") from error
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def _read_csv_text(path: Path) -> pd.DataFrame:
    # Text first: types are coerced column by column afterwards so that a bad
    # value is reported with its row instead of failing the whole read.
    # index_col=False keeps a trailing delimiter from turning the first
    # column into the index and shifting every value one column left.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], index_col=False)
        except pd.errors.ParserError:
            # Some row has more fields than the header: read it record by
            # record instead, so that the row can be rejected, not the file.
            return _read_csv_records(path)
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        frame[OVERLONG_COLUMN] = _overlong_rows(path, len(frame.columns))
    return frame


def _read_csv_records(path: Path) -> pd.DataFrame:
    """Read a CSV with Python's csv module, cutting rows to the header's width."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [name for name in next(reader, [])]
        while header and header[-1].strip() == "":
            header.pop()  # a trailing delimiter on the header line
        width = len(header)
        rows, overlong = [], []
        for record in reader:
            if not record:
                continue
            overlong.append(len(record) > width and any(value.strip() for value in record[width:]))
            rows.append((record + [""] * width)[:width])
    frame = pd.DataFrame(rows, columns=header, dtype="string")
    frame = frame.mask(frame.eq(""))
    frame[OVERLONG_COLUMN] = np.array(overlong, dtype=bool)
    return frame


def _overlong_rows(path: Path, n_fields: int) -> np.ndarray:
    """Mark data rows that carry non-empty values beyond the header's fields."""
    marks = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for record in reader:
            if not record:
                continue
            marks.append(len(record) > n_fields and any(value.strip() for value in record[n_fields:]))
    return np.array(marks, dtype=bool)


class _ProblemLog:
    """Collects problems of one table with the row numbers of its file.

    Values are reported as the file stores them (``original``), not as
    they read after type coercion.
    """

    def __init__(self, table: str, id_column: str | None, original: pd.DataFrame | None = None):
        self.table = table
        self.id_column = id_column
        self.original = original
        self.frames: list[pd.DataFrame] = []

    def add(self, frame: pd.DataFrame, mask: pd.Series, column: str, expected: str, severity: str) -> None:
        if not mask.any():
            return
        source = self.original if self.original is not None and self.original.index.equals(frame.index) else frame
        bad = source.loc[mask]
        ids = bad[self.id_column] if self.id_column and self.id_column in bad else pd.Series(None, index=bad.index)
        values = bad[column] if column in bad else pd.Series(None, index=bad.index)
        self.frames.append(
            pd.DataFrame(
                {
                    "table": self.table,
                    "row": bad["row_number"].to_numpy(),
                    "id": ids.astype("string").to_numpy(),
                    "column": column,
                    "value": values.astype("string").to_numpy(),
                    "expected": expected,
                    "severity": severity,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.frames:
            return pd.DataFrame(columns=PROBLEM_COLUMNS)
        return pd.concat(self.frames, ignore_index=True)


def _blank(series: pd.Series) -> pd.Series:
    """Mark null values and strings that hold only whitespace."""
    # Typed columns (Parquet timestamps, numbers, booleans) cannot hold
    # whitespace, and formatting them as text is slow: the 20 million
    # timestamps of a large events table took over a minute.
    if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        return series.isna()
    as_text = series.astype("string")
    return series.isna() | as_text.str.strip().fillna("").eq("")


def _coerce_text(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip()
    return text.mask(text.eq(""))


def _coerce_id(series: pd.Series) -> pd.Series:
    # Parquet stores integer ids with nulls as floats; 1.0 must stay id "1".
    if pd.api.types.is_float_dtype(series):
        numbers = series.astype("float64")
        if (numbers.dropna() == np.floor(numbers.dropna())).all():
            series = numbers.astype("Int64")
    return _coerce_text(series)


def _coerce_timestamp(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.tz_localize("UTC")
    # Naive timestamps are read as UTC, as the contract states.
    return pd.to_datetime(series.astype("string").str.strip(), utc=True, format="ISO8601", errors="coerce")


# Digits with commas between groups of three ("1,200,000.50"). Any other use
# of a comma ("1,5" as a decimal comma) is ambiguous, so it is not a number.
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"
# Counts and amounts in the contract are never negative, and values past
# this bound are data errors that would overflow integer columns.
_LARGEST_VALUE = 1e15


def _coerce_number(series: pd.Series) -> pd.Series:
    """Parse non-negative finite numbers; anything else becomes missing."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        numbers = series.astype("float64")
    else:
        text = series.astype("string").str.strip()
        grouped = text.str.match(_THOUSANDS).fillna(False)
        text = text.where(~grouped, text.str.replace(",", "", regex=False))
        text = text.where(~text.str.contains(",", regex=False).fillna(False))
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    valid = np.isfinite(numbers) & (numbers >= 0) & (numbers <= _LARGEST_VALUE)
    return numbers.where(valid)


def _coerce_integer(series: pd.Series) -> pd.Series:
    numbers = _coerce_number(series)
    whole = numbers.where(numbers == np.floor(numbers))
    return whole.astype("Int64")


def _coerce_boolean(series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    words = series.astype("string").str.strip().str.lower()
    result = pd.Series(pd.NA, index=series.index, dtype="boolean")
    result[words.isin(_TRUE_WORDS).fillna(False)] = True
    result[words.isin(_FALSE_WORDS).fillna(False)] = False
    return result


_COERCERS = {
    "id": _coerce_id,
    "text": _coerce_text,
    "timestamp": _coerce_timestamp,
    "number": _coerce_number,
    "integer": _coerce_integer,
    "boolean": _coerce_boolean,
}
_EXPECTED = {
    "id": "a non-empty identifier",
    "text": "text",
    "timestamp": "an ISO 8601 timestamp such as 2024-05-01T09:30:00Z (naive values are read as UTC)",
    "number": "a number >= 0 (thousands may be grouped with commas, decimals use a point)",
    "integer": "a whole number >= 0",
    "boolean": "true/false, yes/no or 1/0",
}


def _validate_table(spec: TableSpec, raw: pd.DataFrame, path: Path | None) -> tuple[pd.DataFrame, pd.DataFrame, TableCounts]:
    """Coerce one table to the contract and split off the rows it cannot use."""
    # A trailing delimiter on the header line makes pandas add an empty
    # "Unnamed: N" column; it carries nothing, so it is dropped with a note.
    empty_unnamed = [c for c in raw.columns if str(c).startswith("Unnamed: ") and raw[c].isna().all()]
    if empty_unnamed:
        logger.info("%s: dropped empty unnamed column(s) %s", spec.name, empty_unnamed)
        raw = raw.drop(columns=empty_unnamed)
    raw = _match_contract_names(raw, spec)
    missing = [c for c in spec.required_columns if c not in raw.columns]
    if missing:
        raise WorkspaceError(
            f"Table '{spec.name}' ({path}) is missing required column(s) {missing}; "
            f"found columns {list(raw.columns)}."
        )

    frame = raw.reset_index(drop=True).copy()
    frame["row_number"] = np.arange(len(frame)) + _FIRST_DATA_ROW
    # A shallow copy: with copy-on-write it keeps the file's values without duplicating them.
    problems = _ProblemLog(spec.name, spec.unique_id or spec.columns[0].name, original=frame.copy(deep=False))
    keep = pd.Series(True, index=frame.index)
    if OVERLONG_COLUMN in frame.columns:
        overlong = frame.pop(OVERLONG_COLUMN).astype(bool)
        problems.add(frame, overlong, spec.columns[0].name, f"at most {len(raw.columns) - 1} fields, as many as the header", "rejected")
        keep &= ~overlong

    for column in spec.columns:
        if column.name not in frame.columns:
            frame[column.name] = pd.Series(None, index=frame.index, dtype=_empty_dtype(column.kind))
            continue
        original = frame[column.name]
        coerced = _COERCERS[column.kind](original)
        blank = _blank(original)
        unparseable = coerced.isna() & ~blank
        if column.required:
            problems.add(frame, blank & keep, column.name, _EXPECTED[column.kind] + " (required)", "rejected")
            problems.add(frame, unparseable & keep, column.name, _EXPECTED[column.kind], "rejected")
            keep &= ~(blank | unparseable)
        else:
            problems.add(frame, unparseable & keep, column.name, _EXPECTED[column.kind], "value_cleared")
        frame[column.name] = coerced

    keep &= _check_table_rules(spec, frame, keep, problems)
    used = frame.loc[keep].reset_index(drop=True)
    rejected_count = int((~keep).sum())
    log = problems.frame()
    counts = TableCounts(
        read=len(frame),
        used=len(used),
        rejected=rejected_count,
        values_cleared=int((log["severity"] == "value_cleared").sum()),
    )
    return used, log, counts


def _match_contract_names(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Rename headers that differ from a contract column only in case, and log the rest.

    Headers the contract does not know are kept and carried through; the log
    names them, so a misspelled header does not go unnoticed.
    """
    known = {column.name for column in spec.columns}
    renames = {}
    for header in frame.columns:
        folded = str(header).strip().lower()
        if header not in known and folded in known and folded not in frame.columns:
            renames[header] = folded
    if renames:
        logger.info("%s: read headers %s as the contract's %s", spec.name, list(renames), list(renames.values()))
        frame = frame.rename(columns=renames)
    unknown = [header for header in frame.columns if header not in known and header != OVERLONG_COLUMN]
    if unknown:
        logger.info("%s: columns outside the contract, carried through unchanged: %s", spec.name, unknown)
    duplicated = [header for header in unknown if re.match(r"^(.+)\.\d+$", str(header)) and re.sub(r"\.\d+$", "", str(header)) in frame.columns]
    if duplicated:
        logger.warning("%s: repeated headers were renamed by position: %s", spec.name, duplicated)
    return frame


def _empty_dtype(kind: str) -> str:
    return {
        "timestamp": "datetime64[ns, UTC]",
        "number": "float64",
        "integer": "Int64",
        "boolean": "boolean",
    }.get(kind, "string")


def _check_table_rules(spec: TableSpec, frame: pd.DataFrame, keep: pd.Series, problems: _ProblemLog) -> pd.Series:
    """Apply the rules that go beyond one column's type; return rows still usable."""
    ok = pd.Series(True, index=frame.index)

    if spec.unique_id:
        duplicated = frame[spec.unique_id].duplicated(keep="first") & keep & frame[spec.unique_id].notna()
        problems.add(frame, duplicated, spec.unique_id, "a unique id (this id appears on an earlier row)", "rejected")
        ok &= ~duplicated
        if duplicated.any():
            offenders = frame.loc[duplicated, spec.unique_id].unique()
            logger.warning(
                "%s: %s row(s) repeat an earlier %s and were rejected; repeated ids: %s%s",
                spec.name,
                f"{int(duplicated.sum()):,}",
                spec.unique_id,
                ", ".join(map(str, offenders[:10])),
                " ..." if len(offenders) > 10 else "",
            )

    if spec.name == "deals":
        outcome = frame["outcome"].str.lower()
        frame["outcome"] = outcome
        bad_outcome = ~outcome.isin(OUTCOMES).fillna(False) & outcome.notna() & keep & ok
        problems.add(frame, bad_outcome, "outcome", "one of won, lost, open", "rejected")
        ok &= ~bad_outcome

        closed = outcome.isin(["won", "lost"]).fillna(False)
        no_close = closed & frame["closed_at"].isna() & keep & ok
        problems.add(frame, no_close, "closed_at", "a close timestamp for a won or lost deal", "rejected")
        ok &= ~no_close

        backwards = (frame["closed_at"] < frame["created_at"]).fillna(False) & keep & ok
        problems.add(frame, backwards, "closed_at", "a close timestamp not before created_at", "rejected")
        ok &= ~backwards

    if spec.name == "events":
        frame["event_type"] = frame["event_type"].str.lower()
    return ok


def _check_references(tables: dict[str, pd.DataFrame], logs: dict[str, pd.DataFrame], counts: dict[str, TableCounts]) -> None:
    """Reject events and deals that point at a contact that is not in contacts."""
    known = _arrow_text(tables["contacts"]["contact_id"].dropna().drop_duplicates())
    for name in ("events", "deals"):
        table = tables[name]
        if table.empty:
            continue
        orphan = ~_is_in(table["contact_id"], known)
        if not orphan.any():
            continue
        log = _ProblemLog(name, CONTRACT[name].unique_id or "contact_id")
        log.add(table, orphan, "contact_id", "a contact_id present in contacts", "rejected")
        logs[name] = pd.concat([logs[name], log.frame()], ignore_index=True)
        tables[name] = table.loc[~orphan].reset_index(drop=True)
        counts[name].used -= int(orphan.sum())
        counts[name].rejected += int(orphan.sum())


def _is_in(ids: pd.Series, known: pa.Array) -> pd.Series:
    """Mark ids found in ``known``; missing ids are not found."""
    # Arrow's hash lookup: pandas' isin on Arrow-backed strings builds a
    # Python list of the values first (about 7 s for 20 million events).
    found = pc.fill_null(pc.is_in(_arrow_text(ids), value_set=known), False)
    return pd.Series(found.to_numpy(zero_copy_only=False), index=ids.index)


def _arrow_text(series: pd.Series) -> pa.Array:
    """Return text values as one Arrow array, without copying Arrow-backed strings."""
    return single_arrow_array(series.astype("string").array)


def single_arrow_array(values) -> pa.Array:
    """Return pandas array values as one Arrow array, combining an Arrow-backed column's chunks."""
    array = pa.array(values)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def load_workspace(
    path: str | Path,
    require: tuple[str, ...] = ("contacts",),
    tables: tuple[str, ...] = TABLE_NAMES,
) -> Workspace:
    """Read and validate the tables of the workspace at ``path``.

    Raises WorkspaceError when the folder, a required table or a required
    column is missing. Row-level problems do not raise: they are returned in
    ``Workspace.problems`` and counted in ``Workspace.counts``. Tables left
    out of ``tables`` are not read and stay empty; events and deals are then
    not checked against contacts unless contacts are read too.
    """
    root = Path(path)
    if not root.is_dir():
        raise WorkspaceError(f"Workspace folder {root} does not exist or is not a folder.")

    loaded: dict[str, pd.DataFrame] = {}
    logs: dict[str, pd.DataFrame] = {}
    counts: dict[str, TableCounts] = {}
    files: dict[str, Path] = {}
    for name in TABLE_NAMES:
        spec = CONTRACT[name]
        file = find_table_file(root, name) if name in tables else None
        if file is None:
            if name in require:
                raise WorkspaceError(
                    f"Workspace {root} has no '{name}' table; expected {name}.csv or {name}.parquet."
                )
            raw = pd.DataFrame({c.name: pd.Series(dtype="string") for c in spec.columns})
        else:
            files[name] = file
            raw = read_table_file(file)
        loaded[name], logs[name], counts[name] = _validate_table(spec, raw, file)

    if "contacts" in files:
        _check_references(loaded, logs, counts)
    problems = pd.concat(list(logs.values()), ignore_index=True)
    order = {name: position for position, name in enumerate(TABLE_NAMES)}
    problems = problems.sort_values(["table", "row"], key=lambda c: c.map(order) if c.name == "table" else c, kind="stable").reset_index(drop=True)
    workspace = Workspace(root, loaded, problems, counts, files)
    _log_counts(workspace)
    return workspace


def _log_counts(workspace: Workspace) -> None:
    for name, c in workspace.counts.items():
        if name not in workspace.files:
            continue
        logger.info(
            "%s: read %s rows, used %s, rejected %s, values cleared %s",
            name,
            f"{c.read:,}",
            f"{c.used:,}",
            f"{c.rejected:,}",
            f"{c.values_cleared:,}",
        )
