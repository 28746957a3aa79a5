"""Parquet on local disk: the bucketed staging area that bounds memory, and deterministic snapshots.

Staging spreads rows over BUCKETS files by the top bits of their key, so the later sort-and-dedup
pass holds about 1/BUCKETS of the dataset at a time. Signatures go to a flat file read back as a
memory map. Snapshots have a fixed schema (text, label[, slice]), fixed row groups, no pandas
metadata and no timestamps: the same rows always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from services.ingest.domain.similarity import PERMS

BUCKETS = 16
ROW_GROUP = 65_536
_STAGE = pa.schema([("key", pa.uint64()), ("seq", pa.int64()), ("text", pa.string()), ("label", pa.string()), ("slice", pa.string())])


def snapshot_schema(with_slice: bool) -> pa.Schema:
    """The fixed schema of a dataset snapshot."""
    cols = [("text", pa.string()), ("label", pa.string())] + ([("slice", pa.string())] if with_slice else [])
    return pa.schema(cols)


class Staging:
    """Rows that passed the row gates, spread over bucket files, with their signatures beside them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._sigs = open(folder / "sigs.bin", "wb")
        self.rows = 0

    def add(self, keys: np.ndarray, texts: Sequence[str], labels: Sequence[str], slices: Sequence[str], sigs: np.ndarray) -> None:
        """Append a chunk of rows."""
        seq = np.arange(self.rows, self.rows + len(keys), dtype=np.int64)
        table = pa.table([keys, seq, list(texts), list(labels), list(slices)], schema=_STAGE)
        bucket = (keys >> np.uint64(60)).astype(np.int64)
        for b in np.unique(bucket):
            self._writer(int(b)).write_table(table.filter(pa.array(bucket == b)))
        self._sigs.write(np.ascontiguousarray(sigs, dtype=np.uint32).tobytes())
        self.rows += len(keys)

    def _writer(self, b: int) -> pq.ParquetWriter:
        if b not in self._writers:
            self._writers[b] = pq.ParquetWriter(self.folder / f"bucket-{b:02d}.parquet", _STAGE, compression="none")
        return self._writers[b]

    def close(self) -> None:
        """Flush every file."""
        for w in self._writers.values():
            w.close()
        self._sigs.close()

    def buckets(self) -> Iterator[pa.Table]:
        """Each bucket's rows, in key order of buckets, sorted by (key, label, text, seq)."""
        for b in range(BUCKETS):
            path = self.folder / f"bucket-{b:02d}.parquet"
            if path.exists():
                order = [("key", "ascending"), ("label", "ascending"), ("text", "ascending"), ("seq", "ascending")]
                yield pq.read_table(path).sort_by(order)

    def signatures(self) -> np.ndarray:
        """All signatures in arrival order, as a read-only memory map."""
        if self.rows == 0:
            return np.zeros((0, PERMS), dtype=np.uint32)
        return np.memmap(self.folder / "sigs.bin", dtype=np.uint32, mode="r", shape=(self.rows, PERMS))


class SnapshotWriter:
    """Writes a snapshot split deterministically: fixed schema and row groups, zstd, no metadata."""

    def __init__(self, path: Path, with_slice: bool) -> None:
        self.path = path
        self.schema = snapshot_schema(with_slice)
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd", compression_level=3, store_schema=False)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        """Append rows (columns by name); row groups are cut every ROW_GROUP rows whatever the chunking."""
        self._pending.append(table.select(self.schema.names).cast(self.schema))
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= ROW_GROUP:
            self._flush(ROW_GROUP)

    def _flush(self, n: int) -> None:
        merged = pa.concat_tables(self._pending).combine_chunks()
        self._writer.write_table(merged.slice(0, n), row_group_size=n)
        rest = merged.slice(n)
        self._pending, self._pending_rows = [rest], rest.num_rows

    def close(self) -> None:
        """Write the last row group and the footer."""
        if self._pending_rows:
            self._flush(self._pending_rows)
        self._writer.close()


def read_texts(path: Path, batch_rows: int = 65_536) -> Iterator[list[str]]:
    """The text column of a snapshot, in batches."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=["text"]):
        yield batch.column(0).to_pylist()
