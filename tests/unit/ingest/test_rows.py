"""The row parser and the CSV/JSONL readers, including Hypothesis properties."""

import csv
import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.adapters.reader import read_chunks
from services.ingest.domain.rows import FieldSpec, Limits, RawRow, Row, RowProblem, parse_row
from services.ingest.domain.uri import DatasetLocation

LIMITS = Limits(max_text_bytes=100, max_label_bytes=20)
cells = st.one_of(st.none(), st.text(max_size=150), st.binary(max_size=150), st.integers(), st.floats(), st.booleans())


@given(cells, cells, cells)
def test_parse_row_never_raises_and_rows_satisfy_the_contract(text, label, slice_):
    out = parse_row(RawRow(1, text, label, slice_), LIMITS)
    assert isinstance(out, Row | RowProblem)
    if isinstance(out, Row):
        assert out.text.strip() and out.label.strip()
        assert len(out.text.encode("utf-8")) <= LIMITS.max_text_bytes
        assert len(out.label.encode("utf-8")) <= LIMITS.max_label_bytes
        assert "\x00" not in out.text
    else:
        assert out.kind and str(out.number) in out.describe()


def _problem(out: Row | RowProblem) -> RowProblem:
    assert isinstance(out, RowProblem), out
    return out


def _raw(row: RawRow | RowProblem) -> RawRow:
    assert isinstance(row, RawRow), row
    return row


def test_parse_row_problems_name_the_fix():
    assert _problem(parse_row(RawRow(3, b"\xff\xfe", "x"), LIMITS)).kind == "invalid_utf8"
    assert _problem(parse_row(RawRow(3, "a" * 101, "x"), LIMITS)).kind == "text_too_long"
    assert _problem(parse_row(RawRow(3, "hello", " "), LIMITS)).kind == "empty_label"
    assert _problem(parse_row(RawRow(3, None, "x"), LIMITS)).kind == "missing_text"
    assert parse_row(RawRow(3, "hi", "x"), LIMITS) == Row("hi", "x", "")


def _mem(tmp_path, data: bytes, name: str) -> DatasetLocation:
    p = tmp_path / name
    p.write_bytes(data)
    return DatasetLocation(str(p), p)


printable = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(printable, printable), min_size=1, max_size=20))
def test_csv_reader_round_trips_whatever_csv_writer_quotes(tmp_path_factory, rows):
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["text", "label"])
    w.writerows(rows)
    loc = _mem(tmp_path_factory.mktemp("csv"), buf.getvalue().encode("utf-8"), "d.csv")
    got = [_raw(r) for chunk in read_chunks(loc, "csv", FieldSpec(), 7, 10_000) for r in chunk]
    assert [(r.text, r.label) for r in got] == rows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(printable, printable), min_size=1, max_size=20))
def test_jsonl_reader_round_trips(tmp_path_factory, rows):
    data = "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows).encode()
    loc = _mem(tmp_path_factory.mktemp("jsonl"), data, "d.jsonl")
    got = [_raw(r) for chunk in read_chunks(loc, "jsonl", FieldSpec(), 7, 10_000) for r in chunk]
    assert [(r.text, r.label) for r in got] == rows


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_readers_on_arbitrary_bytes_yield_rows_or_invalid_input(tmp_path_factory, data):
    from services.kernel.errors import InvalidInput

    folder = tmp_path_factory.mktemp("bytes")
    for fmt in ("csv", "jsonl", "parquet"):
        loc = _mem(folder, b"text,label\n" + data if fmt == "csv" else data, f"d.{fmt}")
        try:
            for chunk in read_chunks(loc, fmt, FieldSpec(), 5, 1000):
                assert all(isinstance(r, RawRow | RowProblem) for r in chunk)
        except InvalidInput as err:
            assert str(err)
