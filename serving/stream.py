"""Chunked reading and atomic chunked writing of CSV and Parquet tables.

Batch scoring reads its input a chunk of rows at a time and writes each
chunk's output as soon as it is scored, so memory stays flat as files grow.
Output goes to a temporary file beside the target (``.NAME.partial``), which
is renamed into place only when the last chunk is written. A run that dies
midway therefore leaves no file at the target path, only the temporary file,
which the next run to the same target overwrites.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadlink.errors import LeadlinkError

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 50_000
TABLE_SUFFIXES = (".csv", ".parquet")
# Row numbers count the header as row 1, as the workspace rejects files do.
FIRST_DATA_ROW = 2
REJECT_COLUMNS = ["table", "row", "id", "column", "value", "reason", "severity"]


def partial_path(out: Path) -> Path:
    """Return the temporary name that ``out`` is written under until it is complete."""
    return out.with_name(f".{out.name}.partial")


@dataclass
class Chunk:
    """Rows of an input table with their file row numbers, plus the rows of that stretch that could not be read."""

    frame: pd.DataFrame
    row_numbers: np.ndarray
    rejects: list[dict] = field(default_factory=list)


def count_rows(path: Path) -> int | None:
    """Return the number of data rows when the file states it (Parquet), else None."""
    if path.suffix.lower() == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return None


def read_chunks(path: Path, chunk_rows: int = DEFAULT_CHUNK_ROWS, id_column: str | None = None) -> Iterator[Chunk]:
    """Yield the rows of a CSV or Parquet file in chunks of at most ``chunk_rows`` rows.

    ``id_column`` names the column whose value identifies a CSV row that
    cannot be read, in its reject record.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1; got {chunk_rows}.")
    if not path.is_file():
        raise LeadlinkError(f"Lead table {path} does not exist.")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_chunks(path, chunk_rows)
    if suffix == ".csv":
        return _csv_chunks(path, chunk_rows, id_column)
    raise LeadlinkError(f"Lead table {path} must be a .csv or .parquet file.")


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise LeadlinkError(f"Could not read {path} as Parquet: {error}") from error
    schema = parquet.schema_arrow
    first_row = FIRST_DATA_ROW
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        frame = pa.Table.from_batches([batch], schema=schema).to_pandas()
        frame.columns = [str(column).strip() for column in frame.columns]
        frame = frame.reset_index(drop=True)
        row_numbers = np.arange(first_row, first_row + len(frame))
        first_row += len(frame)
        yield Chunk(frame, row_numbers)


def csv_header_names(header: list[str]) -> list[str]:
    """Name the columns of a CSV header as pandas does.

    Names are stripped, an empty name becomes "Unnamed: <position>", and a
    repeated name gets ".1", ".2" and so on, so that columns read here match
    the names a model was trained with.
    """
    names: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(header):
        name = raw.strip() or f"Unnamed: {position}"
        candidate, count = name, 0
        while candidate in seen:
            count += 1
            candidate = f"{name}.{count}"
        seen.add(candidate)
        names.append(candidate)
    return names


def _csv_chunks(path: Path, chunk_rows: int, id_column: str | None) -> Iterator[Chunk]:
    """Read a UTF-8 CSV record by record, rejecting rows that cannot be read instead of failing.

    Three kinds of row become rejects: a row with more non-empty fields than
    the header, a row that is not valid UTF-8 and a row the csv module cannot
    parse. A short row is padded with missing values, as pandas pads it.
    Blank lines are skipped and not counted in row numbers. Every value is
    text, and an empty field is missing.
    """
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except csv.Error as error:
            raise LeadlinkError(f"Could not read the header of {path}: {error}") from error
        if header is None:
            raise LeadlinkError(f"Lead table {path} is empty; it needs a header row.")
        if not _is_utf8(header):
            raise LeadlinkError(f"The header of {path} is not UTF-8 text; save the file as UTF-8.")
        names = csv_header_names(header)
        width = len(names)
        id_position = names.index(id_column) if id_column in names else None

        rows: list[list[str]] = []
        row_numbers: list[int] = []
        rejects: list[dict] = []
        row_number = FIRST_DATA_ROW - 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                row_number += 1
                rejects.append(_reject(path, row_number, None, None, f"the CSV row could not be parsed: {error}"))
                continue
            if not record:
                continue
            row_number += 1
            problem = _record_problem(record, width)
            if problem:
                row_id = _readable(record[id_position]) if id_position is not None and id_position < len(record) else None
                rejects.append(_reject(path, row_number, row_id, None, problem, _readable(",".join(record))))
            else:
                rows.append((record + [""] * width)[:width])
                row_numbers.append(row_number)
            if len(rows) >= chunk_rows:
                yield Chunk(_text_frame(rows, names), np.array(row_numbers), rejects)
                rows, row_numbers, rejects = [], [], []
        if rows or rejects:
            yield Chunk(_text_frame(rows, names), np.array(row_numbers, dtype=np.int64), rejects)


def _record_problem(record: list[str], width: int) -> str | None:
    if len(record) > width and any(value.strip() for value in record[width:]):
        return f"the row has {len(record)} fields but the header has {width}"
    if not _is_utf8(record):
        return "the row is not valid UTF-8 text"
    return None


def _is_utf8(record: list[str]) -> bool:
    """Return False when a value carries bytes that were not UTF-8 (read as surrogate escapes)."""
    joined = "\x00".join(record)
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _readable(text: str, limit: int = 200) -> str:
    """Return text safe to write as UTF-8: undecodable bytes become U+FFFD, long text is cut."""
    clean = text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def _text_frame(rows: list[list[str]], names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return frame.where(frame != "", None)


def _reject(path: Path, row: int, row_id, column: str | None, reason: str, value=None) -> dict:
    return {"table": path.name, "row": row, "id": row_id, "column": column, "value": value, "reason": reason, "severity": "rejected"}


class AtomicTableWriter:
    """Write a table chunk by chunk to a temporary file and rename it to ``out`` when closed.

    The format follows the suffix: ``.parquet`` (one row group per chunk) or
    ``.csv`` (UTF-8, header once). ``schema`` fixes the Parquet column types,
    so that a chunk whose column is all missing still matches the others.
    Used as a context manager, an exception deletes the temporary file and
    leaves any earlier file at ``out`` untouched.
    """

    def __init__(self, out: Path, schema: pa.Schema | None = None):
        suffix = out.suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            raise LeadlinkError(f"Output file {out} must end in .csv or .parquet.")
        self.out = out
        self.parquet = suffix == ".parquet"
        self.schema = schema
        self.temporary = partial_path(out)
        self.rows = 0
        self._parquet_writer: pq.ParquetWriter | None = None
        self._csv_handle = None
        out.parent.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> AtomicTableWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame`` to the temporary file; the first call creates it."""
        if self.parquet:
            self._write_parquet(frame)
        else:
            self._write_csv(frame)
        self.rows += len(frame)

    def _write_parquet(self, frame: pd.DataFrame) -> None:
        if self.schema is None:
            self.schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        if self._parquet_writer is None:
            self._parquet_writer = pq.ParquetWriter(self.temporary, self.schema)
        self._parquet_writer.write_table(table)

    def _write_csv(self, frame: pd.DataFrame) -> None:
        first = self._csv_handle is None
        if first:
            self._csv_handle = open(self.temporary, "w", encoding="utf-8", newline="")
        frame.to_csv(self._csv_handle, header=first, index=False, lineterminator="\n")

    def close(self) -> Path:
        """Finish the file and rename it to ``out``. A writer given no rows writes an empty table."""
        if self._parquet_writer is None and self._csv_handle is None:
            self._write_empty()
        if self._parquet_writer is not None:
            self._parquet_writer.close()
            self._parquet_writer = None
        if self._csv_handle is not None:
            self._csv_handle.flush()
            os.fsync(self._csv_handle.fileno())
            self._csv_handle.close()
            self._csv_handle = None
        os.replace(self.temporary, self.out)
        return self.out

    def _write_empty(self) -> None:
        if self.parquet:
            schema = self.schema or pa.schema([])
            pq.write_table(schema.empty_table(), self.temporary)
        else:
            names = self.schema.names if self.schema is not None else []
            pd.DataFrame(columns=names).to_csv(self.temporary, index=False)

    def abort(self) -> None:
        """Close and delete the temporary file without touching ``out``."""
        if self._parquet_writer is not None:
            self._parquet_writer.close()
            self._parquet_writer = None
        if self._csv_handle is not None:
            self._csv_handle.close()
            self._csv_handle = None
        self.temporary.unlink(missing_ok=True)


class RejectsWriter:
    """Collect rejected rows of a run into a CSV file, written only when there is at least one.

    Rows stream to a temporary file as they come, and ``close`` renames it
    to ``path``. A run without rejects removes a ``path`` left by an earlier
    run, so that the file never describes another run.
    """

    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self._writer: AtomicTableWriter | None = None

    def add(self, rejects: pd.DataFrame | list[dict]) -> None:
        frame = pd.DataFrame(rejects) if isinstance(rejects, list) else rejects
        if frame.empty:
            return
        frame = frame.reindex(columns=REJECT_COLUMNS)
        if self._writer is None:
            self._writer = AtomicTableWriter(self.path)
        self._writer.write(frame)
        self.count += len(frame)

    def close(self) -> Path | None:
        if self._writer is None:
            if self.path.exists():
                logger.info("Removed %s from an earlier run: this run rejected no rows.", self.path)
                self.path.unlink()
            return None
        return self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
