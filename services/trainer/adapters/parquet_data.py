"""Read a registered dataset's Parquet snapshots (digest-verified) into texts and label indices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import InvalidInput
from services.trainer.domain.runs import RegisteredDataset, Snapshot


@dataclass(frozen=True)
class Examples:
    """Texts and their label indices (into the dataset's label list)."""

    texts: list[str]
    targets: list[int]


def load_split(blobs: BlobStore, snap: Snapshot, dataset: RegisteredDataset, dest: Path) -> Examples:
    """Fetch one snapshot (the blob store verifies its digest) and map labels to indices."""
    ref = ev.ArtifactRef(digest=snap.digest, uri=snap.uri, media_type=snap.media_type, size_bytes=snap.size_bytes)
    path = blobs.fetch_file(ref, dest)
    table = pq.read_table(path, columns=[dataset.text_field, dataset.label_field])
    texts = [str(t) for t in table.column(dataset.text_field).to_pylist()]
    index = {label: i for i, label in enumerate(dataset.labels)}
    unknown = sorted({str(x) for x in table.column(dataset.label_field).to_pylist()} - index.keys())
    if unknown:
        raise InvalidInput(f"{dataset.name}: labels {unknown[:5]} are not in the registered label list")
    targets = [index[str(x)] for x in table.column(dataset.label_field).to_pylist()]
    if not texts:
        raise InvalidInput(f"{dataset.name}: the snapshot {snap.digest} has no rows")
    return Examples(texts, targets)


def subsample(examples: Examples, fraction: float, seed: int) -> Examples:
    """A seeded fraction of the rows (goal.data.train_fraction), order kept."""
    if fraction >= 1.0:
        return examples
    keep = max(1, round(len(examples.texts) * fraction))
    rows = sorted(np.random.default_rng(seed).permutation(len(examples.texts))[:keep].tolist())
    return Examples([examples.texts[i] for i in rows], [examples.targets[i] for i in rows])
