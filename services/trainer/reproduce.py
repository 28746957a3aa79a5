"""Re-run a finished run from its envelope and say whether the adapter came out the same."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tuneline.events.v1 import events_pb2 as ev

from services.kernel.blobs import BlobStore
from services.kernel.errors import NotFound, PermanentError
from services.kernel.ids import uuid7
from services.kernel.modeling import adapter_digest, adapter_files
from services.kernel.store import Store
from services.trainer import store as tables
from services.trainer import training
from services.trainer.domain.envelope import envelope_from_json
from services.trainer.domain.runs import SUCCEEDED
from services.trainer.settings import TrainerSettings


@dataclass(frozen=True)
class Reproduction:
    """The original and the re-run adapter digests, and how far apart they are when they differ."""

    run_id: str
    original_digest: str
    reproduced_digest: str
    max_weight_difference: float
    metric_differences: dict[str, float]
    wall_seconds: float

    @property
    def identical(self) -> bool:
        """Bit-identical adapters."""
        return self.original_digest == self.reproduced_digest


def reproduce(settings: TrainerSettings, store: Store, blobs: BlobStore, run_id: str) -> Reproduction:
    """Train again from the run's envelope (same data digests, goal, seeds, world size) and compare."""
    run = store.run(lambda s: s.get(tables.RunRow, run_id))
    if run is None or run.status != SUCCEEDED:
        raise NotFound(f"no succeeded run {run_id}", hint="tuneline runs lists the runs")
    envelope = envelope_from_json(json.loads(blobs.get_bytes(ev.ArtifactRef(digest=run.envelope_digest, uri=run.envelope_uri))))
    with tempfile.TemporaryDirectory(prefix="tuneline-reproduce-") as scratch:
        prepared = training.prepare(settings, blobs, training.goal_of(envelope), training.dataset_of(envelope),
                                    Path(scratch), world_size=envelope.world_size, use_gpu=envelope.use_gpu)
        done = training.fit(settings, prepared, f"reproduce-{uuid7()}", Path(scratch) / "adapter")
        if done.outcome.status != SUCCEEDED:
            raise PermanentError(f"the reproduction failed: {done.outcome.reason}")
        assert done.outcome.adapter_dir is not None  # a succeeded outcome always carries its adapter folder
        original = blobs.fetch_tree(ev.ArtifactRef(digest=run.adapter_digest, uri=run.adapter_uri), Path(scratch) / "original")
        adapter_dir = done.outcome.adapter_dir
        digest = adapter_digest(adapter_dir)
        diff = 0.0 if digest == run.adapter_digest else max_weight_difference(original, adapter_dir)
    before = json.loads(run.metrics_json)
    deltas = {k: done.outcome.metrics[k] - before[k] for k in done.outcome.metrics if k in before}
    return Reproduction(run_id, run.adapter_digest, digest, diff, deltas, done.wall_seconds)


def max_weight_difference(a: Path, b: Path) -> float:
    """The largest absolute difference between same-named tensors of two adapters."""
    from safetensors.torch import load_file

    largest = 0.0
    for (name, path_a), (_, path_b) in zip(adapter_files(a), adapter_files(b), strict=True):
        if not name.endswith(".safetensors"):
            continue
        ta, tb = load_file(str(path_a)), load_file(str(path_b))
        for key in ta.keys() & tb.keys():
            largest = max(largest, float((ta[key].float() - tb[key].float()).abs().max()))
    return largest
