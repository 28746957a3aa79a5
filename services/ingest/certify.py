"""The ingest pipeline: stream a dataset through the gates and, if every gate passes, write its snapshots.

Memory stays bounded by a chunk of rows plus per-row hashes and signatures (which live in memory
maps): rows are read in chunks, checked and scrubbed (scan.py), staged to bucket files by key, then
each bucket is sorted and deduplicated on its own. Snapshot rows are in key order, so the same
content gives the same bytes whatever order the file had.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from services.ingest.adapters.parquet_files import SnapshotWriter, Staging, read_texts
from services.ingest.domain import similarity
from services.ingest.domain.certificate import GateOutcome, Tally, failed
from services.ingest.domain.labels import label_gate
from services.ingest.domain.minimise import minimisation_gate
from services.ingest.domain.split import assign_eval
from services.ingest.plan import Certified, Plan, Policy
from services.ingest.scan import Progress, merge_schema, pii_verdict, scan
from services.kernel.pii import redact

log = logging.getLogger(__name__)
_BLOCK = 65_536
_CLEAN = pa.schema([("key", pa.uint64()), ("text", pa.string()), ("label", pa.string()), ("slice", pa.string())])


@dataclass
class _Deduped:
    """A source after dedup: its unique rows (sorted by key) and which of them are near duplicates."""

    clean: Path
    keys: np.ndarray
    sigs: np.ndarray
    near: np.ndarray
    label_codes: np.ndarray
    label_names: list[str]
    staged: int = 0

    @property
    def kept(self) -> np.ndarray:
        """Mask of the rows that survive dedup."""
        return ~self.near


def _dedup(staging: Staging, work: Path, threshold: float) -> _Deduped:
    """Sort each bucket, keep one row per key, then find near duplicates among those."""
    staging.close()
    sigs_in = staging.signatures()
    reps_keys, reps_seq = [], []
    writer = pq.ParquetWriter(work / "clean.parquet", _CLEAN, compression="none")
    for tbl in staging.buckets():
        k = tbl.column("key").to_numpy()
        first = np.ones(len(k), dtype=bool)
        first[1:] = k[1:] != k[:-1]
        reps = tbl.filter(pa.array(first))
        writer.write_table(reps.select(_CLEAN.names))
        reps_keys.append(k[first])
        reps_seq.append(reps.column("seq").to_numpy())
    writer.close()
    keys = np.concatenate(reps_keys) if reps_keys else np.zeros(0, dtype=np.uint64)
    seq = np.concatenate(reps_seq) if reps_seq else np.zeros(0, dtype=np.int64)
    sigs = _gather(sigs_in, seq, work / "clean_sigs.bin")
    near = similarity.near_duplicates(keys, sigs, threshold)
    labels = pq.read_table(work / "clean.parquet", columns=["label"]).column(0).combine_chunks().dictionary_encode()
    codes = labels.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return _Deduped(work / "clean.parquet", keys, sigs, near, codes, labels.dictionary.to_pylist(), staging.rows)


def _gather(sigs: np.ndarray, seq: np.ndarray, path: Path) -> np.ndarray:
    """The signatures of the given rows, copied in batches into a new memory map."""
    if not len(seq):
        return np.zeros((0, similarity.PERMS), dtype=np.uint32)
    out = np.memmap(path, dtype=np.uint32, mode="w+", shape=(len(seq), similarity.PERMS))
    for s in range(0, len(seq), 65_536):
        out[s : s + 65_536] = sigs[seq[s : s + 65_536]]
    out.flush()
    return out


def _dedup_verdict(parts: list[_Deduped]) -> GateOutcome:
    staged = sum(p.staged for p in parts)
    exact = sum(p.staged - len(p.keys) for p in parts)
    near = sum(int(p.near.sum()) for p in parts)
    counts = {"rows_in": staged, "exact_duplicates": exact, "near_duplicates": near, "rows_out": staged - exact - near}
    return GateOutcome("dedup", True, f"removed {exact} exact and {near} near duplicates", counts)


def _texts_at(clean: Path, rows: np.ndarray, limit: int) -> list[str]:
    """Up to `limit` (already scrubbed) texts of the given clean-row indices, redacted for display."""
    wanted = set(int(r) for r in rows[:limit])
    found, offset = [], 0
    for texts in read_texts(clean):
        found += [redact(t) for i, t in enumerate(texts) if offset + i in wanted]
        offset += len(texts)
    return found


def _overlap(part: _Deduped, rows: np.ndarray, keys: np.ndarray, sigs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Masks over the given rows of a part: exact (same key) and near (similar, not exact) matches in another set."""
    exact = np.isin(part.keys[rows], keys)
    near = np.zeros(len(rows), dtype=bool)
    if len(keys):
        # In blocks: a block's signatures are copied out of the memory map, never all of them at once.
        for s in range(0, len(rows), _BLOCK):
            near[s : s + _BLOCK] = similarity.matches(part.sigs[rows[s : s + _BLOCK]], sigs, threshold)
    return exact, near & ~exact


@dataclass(frozen=True)
class _Prior:
    """Earlier registered eval data of this dataset name: keys and signatures."""

    keys: np.ndarray
    sigs: np.ndarray

    def matched(self, part: _Deduped, rows: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Exact and near (not exact) match masks of a part's given rows against this data."""
        return _overlap(part, rows, self.keys, self.sigs, threshold)


def _prior_eval(paths: tuple[Path, ...]) -> _Prior:
    keys, sigs = [np.zeros(0, dtype=np.uint64)], [np.zeros((0, similarity.PERMS), dtype=np.uint32)]
    for path in paths:
        for texts in read_texts(path):
            keys.append(similarity.keys(texts))
            sigs.append(similarity.signatures(texts))
    return _Prior(np.concatenate(keys), np.concatenate(sigs))


@dataclass(frozen=True)
class _Split:
    """Which clean rows of which source go to train and to eval."""

    train: _Deduped
    train_mask: np.ndarray
    eval: _Deduped
    eval_mask: np.ndarray


def _split(parts: list[_Deduped], plan: Plan, prior: _Prior, threshold: float) -> _Split:
    if len(parts) == 2:
        return _Split(parts[0], parts[0].kept, parts[1], parts[1].kept)
    d = parts[0]
    kept = np.nonzero(d.kept)[0]
    exact, near = prior.matched(d, kept, threshold)
    is_eval = np.zeros(len(d.keys), dtype=bool)
    is_eval[kept] = assign_eval(d.keys[kept], d.label_codes[kept], plan.eval_fraction, plan.seed, exact | near)
    return _Split(d, d.kept & ~is_eval, d, is_eval)


def _leakage(sp: _Split, plan: Plan, policy: Policy, prior: _Prior) -> GateOutcome:
    rows = np.nonzero(sp.train_mask)[0]
    ev_rows = np.nonzero(sp.eval_mask)[0]
    exact, near = _overlap(sp.train, rows, sp.eval.keys[ev_rows], np.asarray(sp.eval.sigs[ev_rows]), policy.near_threshold)
    p_exact, p_near = prior.matched(sp.train, rows, policy.near_threshold)
    counts = {
        "train_rows": len(rows), "eval_rows": len(ev_rows),
        "exact_train_eval": int(exact.sum()), "near_train_eval": int(near.sum()),
        "exact_train_prior_eval": int(p_exact.sum()), "near_train_prior_eval": int(p_near.sum()),
        "prior_eval_rows": len(prior.keys),
    }
    leaking = rows[exact | near | p_exact | p_near]
    if not len(leaking):
        return GateOutcome("leakage", True, "no train row matches an eval row, exactly or nearly", counts)
    reason = (
        f"{int(exact.sum())} train rows exactly and {int(near.sum())} nearly duplicate eval rows; "
        f"{int(p_exact.sum())} exactly and {int(p_near.sum())} nearly duplicate earlier eval data of "
        f"{plan.dataset_name!r}; remove them from the train data"
    )
    examples = tuple(_texts_at(sp.train.clean, leaking, policy.max_examples))
    return GateOutcome("leakage", False, reason, counts, examples)


def _label_sizes(sp: _Split) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for part, mask in ((sp.train, sp.train_mask), (sp.eval, sp.eval_mask)):
        counts = np.bincount(part.label_codes[mask], minlength=len(part.label_names))
        for name, n in zip(part.label_names, counts.tolist(), strict=True):
            if n:
                sizes[name] = sizes.get(name, 0) + n
    return sizes


def _write(part: _Deduped, mask: np.ndarray, path: Path, with_slice: bool) -> int:
    writer, offset = SnapshotWriter(path, with_slice), 0
    for batch in pq.ParquetFile(part.clean).iter_batches(batch_size=65_536):
        take = mask[offset : offset + batch.num_rows]
        offset += batch.num_rows
        writer.write(pa.Table.from_batches([batch]).filter(pa.array(take)))
    writer.close()
    return writer.rows


def certify(plan: Plan, policy: Policy, work: Path, progress: Progress = lambda f, m: None) -> Certified:
    """Run every gate over the plan's data; write train/eval snapshots under `work` when all pass."""
    pii = Tally(policy.max_examples)
    sources = [plan.source] + ([plan.eval_source] if plan.eval_source else [])
    schemas, parts, columns = [], [], set[str]()
    for i, loc in enumerate(sources):
        staging = Staging(work / f"stage-{i}")
        progress(0.1 + 0.4 * i / len(sources), f"reading source {i + 1} of {len(sources)}")
        schemas.append(scan(loc, plan, policy, staging, pii, progress, columns))
        parts.append(_dedup(staging, staging.folder, policy.near_threshold))
    certificate = [merge_schema(schemas), pii_verdict(pii, plan.pii_action),
                   minimisation_gate(columns, plan.fields, plan.slice_values, policy.max_examples)]
    if failed(certificate):
        return Certified(certificate)
    progress(0.6, "deduplicating and splitting")
    prior = _prior_eval(plan.prior_evals)
    sp = _split(parts, plan, prior, policy.near_threshold)
    sizes = _label_sizes(sp)
    leakage = _leakage(sp, plan, policy, prior)
    certificate += [_dedup_verdict(parts), leakage, label_gate(sizes, plan.known_labels, plan.min_examples, policy.max_examples)]
    if failed(certificate):
        return Certified(certificate)
    progress(0.8, "writing snapshots")
    with_slice = bool(plan.fields.slice)
    train_rows = _write(sp.train, sp.train_mask, work / "train.parquet", with_slice)
    eval_rows = _write(sp.eval, sp.eval_mask, work / "eval.parquet", with_slice)
    return Certified(certificate, work / "train.parquet", work / "eval.parquet", train_rows, eval_rows, tuple(sorted(sizes)))
