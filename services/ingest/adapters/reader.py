"""Streaming readers for CSV, JSONL and Parquet: chunks of raw rows, never the whole file in memory.

File-level problems (not the declared format, wrong columns, empty, broken quoting) raise
InvalidInput with a reason; row-level problems are left to the row contract (domain/rows.py), except
rows too long to even hold, which come back as RowProblems.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, cast

import fsspec
import pyarrow.parquet as pq

from services.ingest.domain.rows import FieldSpec, RawRow, RowProblem
from services.ingest.domain.uri import DatasetLocation
from services.kernel.errors import InvalidInput

Chunk = list[RawRow | RowProblem]
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_SNIFF = 8192


def detect_format(uri: str, declared: str) -> str:
    """The format to read: the declared one, else from the file extension."""
    if declared:
        if declared not in ("csv", "jsonl", "parquet"):
            raise InvalidInput(f"unknown format {declared!r}", hint="use csv, jsonl or parquet")
        return declared
    for ext, fmt in FORMATS.items():
        if uri.lower().split("?")[0].endswith(ext):
            return fmt
    raise InvalidInput(f"cannot tell the format of {uri!r} from its extension", hint="pass --format csv|jsonl|parquet")


@contextmanager
def open_binary(loc: DatasetLocation) -> Iterator[BinaryIO]:
    """Open a checked location for binary reading (local file or fsspec URL)."""
    if loc.local_path is not None:
        with open(loc.local_path, "rb") as f:
            yield f
        return
    try:
        opened = fsspec.open(loc.uri, "rb").open()
    except FileNotFoundError:
        raise InvalidInput(f"dataset {loc.uri!r} does not exist", hint="check the URL and publish again") from None
    with opened as f:
        yield f


def _sniff(f: BinaryIO, fmt: str) -> None:
    head = f.peek(_SNIFF)[:_SNIFF] if hasattr(f, "peek") else b""
    if not head and not f.read(1):
        raise InvalidInput("the dataset file is empty", hint="publish a file with a header and rows")
    if fmt != "parquet" and (b"\x00" in head or head.startswith(b"PAR1")):
        raise InvalidInput(f"the file looks binary, not {fmt} text (it contains NUL bytes)", hint="check --format and the file")


# The most column names a reader records for the certificate (a JSON Lines file can name a new key per row).
MAX_COLUMN_NAMES = 256


def read_chunks(loc: DatasetLocation, fmt: str, fields: FieldSpec, chunk_rows: int, max_row_bytes: int,
                columns: set[str] | None = None) -> Iterator[Chunk]:
    """Yield the dataset's rows in chunks of at most `chunk_rows`; `columns`, when given, collects the
    names of the source's columns (JSON Lines: the keys of its objects), so what was left out can be
    recorded."""
    seen: set[str] = set() if columns is None else columns
    with open_binary(loc) as raw:
        # A file without peek() is an unbuffered raw stream (readinto), which BufferedReader wraps.
        f = raw if hasattr(raw, "peek") else io.BufferedReader(cast(io.RawIOBase, raw))
        _sniff(f, fmt)
        if fmt == "parquet":
            yield from _parquet(f, fields, chunk_rows, seen)
        elif fmt == "jsonl":
            yield from _batched(_jsonl(f, fields, max_row_bytes, seen), chunk_rows)
        else:
            yield from _batched(_csv(f, fields, max_row_bytes, seen), chunk_rows)


def _batched(rows: Iterator[RawRow | RowProblem], n: int) -> Iterator[Chunk]:
    chunk: Chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _missing_columns(found: list[str], fields: FieldSpec) -> None:
    missing = [c for c in fields.required() if c not in found]
    if missing:
        raise InvalidInput(
            f"wrong columns: missing {missing}; the file has {found[:20]}",
            hint="rename the columns or publish with --text-field/--label-field/--slice-field naming them",
        )


def _csv(f: BinaryIO, fields: FieldSpec, max_row_bytes: int, seen: set[str]) -> Iterator[RawRow | RowProblem]:
    # The csv module refuses fields over this limit instead of buffering a runaway row.
    csv.field_size_limit(max_row_bytes)
    text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise InvalidInput("the CSV file is empty (no header row)", hint="publish a file with a header and rows")
        columns = [h.strip() for h in header]
        _missing_columns(columns, fields)
        seen.update(columns[:MAX_COLUMN_NAMES])
        ti, li = columns.index(fields.text), columns.index(fields.label)
        si = columns.index(fields.slice) if fields.slice else -1
        for record in reader:
            if not record:
                continue
            if len(record) != len(columns):
                yield RowProblem(reader.line_num, "wrong_field_count", f"has {len(record)} fields, header has {len(columns)}")
                continue
            yield RawRow(reader.line_num, record[ti], record[li], record[si] if si >= 0 else None)
    except csv.Error as err:
        raise InvalidInput(
            f"the CSV is malformed near line {reader.line_num}: {err}",
            hint=f"quote fields that contain commas, quotes or newlines; keep fields under {max_row_bytes} bytes",
        ) from None


def _jsonl(f: BinaryIO, fields: FieldSpec, max_row_bytes: int, seen: set[str]) -> Iterator[RawRow | RowProblem]:
    number = 0
    while line := f.readline(max_row_bytes + 1):
        number += 1
        if len(line) > max_row_bytes and not line.endswith(b"\n"):
            while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # skip the rest of an oversized line without holding it
            yield RowProblem(number, "row_too_long", f"line is over {max_row_bytes} bytes")
            continue
        if line.strip():
            yield _json_row(number, line, fields, seen)


def _json_row(number: int, line: bytes, fields: FieldSpec, seen: set[str]) -> RawRow | RowProblem:
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as err:
        return RowProblem(number, "invalid_utf8", f"line is not valid UTF-8 (byte {err.start})")
    except json.JSONDecodeError as err:
        return RowProblem(number, "invalid_json", f"line is not valid JSON ({err.msg} at column {err.colno})")
    if not isinstance(obj, dict):
        return RowProblem(number, "not_an_object", "line is not a JSON object")
    if len(seen) < MAX_COLUMN_NAMES:
        seen.update(k for k in obj if k not in seen)
    return RawRow(number, obj.get(fields.text), obj.get(fields.label), obj.get(fields.slice) if fields.slice else None)


def _parquet(f: BinaryIO, fields: FieldSpec, chunk_rows: int, seen: set[str]) -> Iterator[Chunk]:
    try:
        pf = pq.ParquetFile(f)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise InvalidInput(f"not a readable Parquet file: {err}", hint="check --format and the file") from None
    _missing_columns(pf.schema_arrow.names, fields)
    seen.update(pf.schema_arrow.names[:MAX_COLUMN_NAMES])
    number = 0
    for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(fields.required())):
        cols = [batch.column(c).to_pylist() for c in fields.required()]
        slices = cols[2] if fields.slice else [None] * batch.num_rows
        chunk: Chunk = []
        for text, label, slice_ in zip(cols[0], cols[1], slices, strict=True):
            number += 1
            chunk.append(RawRow(number, text, label, slice_))
        yield chunk
