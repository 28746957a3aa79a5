"""The real classifier behind the Scorer port: kernel.modeling, digest verified before loading."""

from __future__ import annotations

from pathlib import Path

import torch

from services.kernel.modeling import LoadedClassifier, load_classifier


def load_scorer(base_model: str, adapter_dir: Path, digest: str, device: str = "cpu", threads: int = 0) -> LoadedClassifier:
    """Verify the adapter's files against its digest (IntegrityError), then load it for inference."""
    if threads > 0:
        torch.set_num_threads(threads)
    return load_classifier(base_model, adapter_dir, digest, device=device)
