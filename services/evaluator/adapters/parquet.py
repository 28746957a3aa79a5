"""Parquet in and out: the eval split the trainer registered, and the reference profile."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from services.evaluator.domain.profile import ReferenceTable
from services.evaluator.evaluation import EvalData
from services.kernel import features
from services.kernel.errors import InvalidInput

PARQUET = "application/vnd.apache.parquet"


def read_eval_data(data: bytes, text_field: str, label_field: str, slice_field: str | None) -> EvalData:
    """The eval rows (text, label and the slice column when the goal names one)."""
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as err:
        raise InvalidInput(f"eval data is not Parquet: {err}") from None
    missing = [c for c in (text_field, label_field) if c not in table.column_names]
    if missing:
        raise InvalidInput(f"eval data lacks column(s) {', '.join(missing)}; has {', '.join(table.column_names)}")
    texts = tuple(str(t) for t in table.column(text_field).to_pylist())
    labels = tuple(str(x) for x in table.column(label_field).to_pylist())
    slices = None
    if slice_field and slice_field in table.column_names:
        slices = tuple(str(x) for x in table.column(slice_field).to_pylist())
    return EvalData(texts, labels, slices)


def write_eval_data(rows: EvalData, text_field: str = "text", label_field: str = "label", slice_field: str = "slice") -> bytes:
    """Eval rows as Parquet bytes (tests and the benchmark build eval splits with it)."""
    cols = {text_field: list(rows.texts), label_field: list(rows.labels)}
    if rows.slices is not None:
        cols[slice_field] = list(rows.slices)
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()


def reference_parquet(table: ReferenceTable) -> bytes:
    """The reference profile as Parquet, columns in features.FEATURE_NAMES order."""
    cols = {name: pa.array(table.numeric[name]) for name in features.NUMERIC_FEATURES + features.EMBEDDING_FEATURES}
    cols["label"] = pa.array(list(table.label), type=pa.string())
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf, compression="zstd")
    return buf.getvalue()
