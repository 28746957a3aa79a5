"""One base encoder in memory and several LoRA adapters on it, loaded and unloaded by digest.

LoRA adapters are not injected with PEFT (that mutates the live model for ~150 ms per load, stalling
every batch): lora.py reads an adapter's A/B tensors outside any lock, and forward hooks on the shared
base apply the adapter the current batch uses. One lock serialises batches (the active adapter is
per forward pass). Each adapter keeps its own Linear head. Full fine-tuned adapters carry a whole
encoder and load as their own classifier (modeling.load_classifier).

Safety: load() copies the adapter's files into the pool's private folder, verifies the copy's digest
and safetensors headers, and only then deserialises it from that copy (nobody can swap files between
the check and the load). A failed load leaves every loaded adapter as it was.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from services.deployer.serving.lora import LoraSwitch, LoraWeights, read_lora
from services.deployer.serving.predictions import AdapterNotLoaded, AdapterPredictions
from services.kernel import modeling
from services.kernel.errors import InvalidInput

log = logging.getLogger(__name__)


@dataclass
class _Adapter:
    labels: tuple[str, ...]
    head: torch.nn.Linear
    max_length: int
    folder: Path | None = None  # the private copy the adapter was loaded from
    lora: LoraWeights | None = None
    full: modeling.LoadedClassifier | None = None
    leases: int = 0
    retiring: bool = False


def pick_device(device: str) -> str:
    """"auto" -> cuda when present, else cpu."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class AdapterPool:
    """The adapters this server may answer with; requests for any other digest are refused."""

    def __init__(self, base_spec: str, device: str = "auto", work_dir: Path | None = None) -> None:
        self.base_spec = base_spec
        self.device = pick_device(device)
        self._base = modeling.load_base_encoder(base_spec, self.device)
        self._tokenizer = modeling.load_tokenizer(base_spec)
        self._switch = LoraSwitch(self._base)
        self._work = Path(work_dir or tempfile.mkdtemp(prefix="tuneline-pool-"))
        self._work.mkdir(parents=True, exist_ok=True)
        self._model_lock = threading.Lock()  # choosing the adapter + forward, and adding hooks
        self._state = threading.Lock()  # the _adapters map and leases
        self._adapters: dict[str, _Adapter] = {}
        self.last_load_ms = 0.0

    # ------------------------------------------------------------ membership

    def loaded(self) -> set[str]:
        """Digests that may serve now (loaded and not being unloaded)."""
        with self._state:
            return {d for d, a in self._adapters.items() if not a.retiring}

    def labels(self, digest: str) -> tuple[str, ...]:
        """The label names of a loaded adapter."""
        return self._entry(digest).labels

    def load(self, digest: str, adapter_dir: Path) -> None:
        """Verify and load an adapter; raises (IntegrityError, InvalidInput) leaving the pool unchanged."""
        with self._state:
            known = self._adapters.get(digest)
            if known is not None:
                known.retiring = False  # loading again cancels a pending unload
                return
        started = time.perf_counter()
        copy = self._private_copy(digest, Path(adapter_dir))
        try:
            entry = self._build(digest, copy)
        except Exception:
            shutil.rmtree(copy, ignore_errors=True)
            raise
        with self._state:
            self._adapters[digest] = entry
        self.last_load_ms = (time.perf_counter() - started) * 1000
        log.info("adapter %s loaded in %.1f ms", digest, self.last_load_ms)

    def unload(self, digest: str) -> None:
        """Stop serving an adapter; its memory goes once the requests holding it have finished."""
        with self._state:
            entry = self._adapters.get(digest)
            if entry is None:
                return
            entry.retiring = True
            idle = entry.leases == 0
        if idle:
            self._drop(digest)

    # ------------------------------------------------------------ leases (the batcher's side)

    def acquire(self, digest: str) -> None:
        """Take a lease on a loaded adapter; AdapterNotLoaded otherwise."""
        with self._state:
            entry = self._adapters.get(digest)
            if entry is None or entry.retiring:
                raise AdapterNotLoaded(f"adapter {digest} is not loaded on this server")
            entry.leases += 1

    def release(self, digest: str) -> None:
        """Give a lease back; the last lease of a retiring adapter unloads it."""
        with self._state:
            entry = self._adapters.get(digest)
            if entry is None:
                return
            entry.leases -= 1
            idle = entry.retiring and entry.leases == 0
        if idle:
            self._drop(digest)

    # ------------------------------------------------------------ inference

    def predict(self, digest: str, texts: list[str]) -> AdapterPredictions:
        """Probabilities, pooled embeddings and token counts of texts under one adapter."""
        entry = self._entry(digest)
        if entry.full is not None:
            p = entry.full.predict(texts)
            return AdapterPredictions(entry.labels, p.probs, p.embeddings, p.token_counts)
        enc = self._tokenizer(texts, padding="longest", truncation=True, max_length=entry.max_length,
                              return_tensors="pt").to(self.device)
        with self._model_lock, torch.inference_mode():
            self._switch.use(entry.lora)
            hidden = self._base(**enc).last_hidden_state
            emb = modeling.mean_pool(hidden, enc["attention_mask"])
            probs = torch.softmax(entry.head(emb), dim=-1)
        counts = enc["attention_mask"].sum(dim=1)
        return AdapterPredictions(entry.labels, probs.float().cpu().numpy(), emb.float().cpu().numpy(),
                                  counts.cpu().numpy())

    # ------------------------------------------------------------ internals

    def _entry(self, digest: str) -> _Adapter:
        with self._state:
            entry = self._adapters.get(digest)
        if entry is None:
            raise AdapterNotLoaded(f"adapter {digest} is not loaded on this server")
        return entry

    def _private_copy(self, digest: str, source: Path) -> Path:
        if not source.is_dir():
            raise InvalidInput(f"adapter folder {source} does not exist")
        dest = Path(tempfile.mkdtemp(prefix=digest.removeprefix("sha256:")[:16] + "-", dir=self._work))
        for path in source.iterdir():
            if path.is_file() and not path.is_symlink():
                shutil.copyfile(path, dest / path.name)
        return dest

    def _build(self, digest: str, folder: Path) -> _Adapter:
        modeling.verify_adapter(folder, digest)
        labels, meta = modeling.read_labels(folder)
        if meta.base_model != self.base_spec:
            raise InvalidInput(f"adapter {digest} was trained on {meta.base_model!r}, this server serves {self.base_spec!r}")
        head = modeling.load_head(folder, self.device)
        if head.out_features != len(labels):
            raise InvalidInput(f"adapter {digest} has {head.out_features} head outputs for {len(labels)} labels")
        if meta.method == "full":
            full = modeling.load_classifier(self.base_spec, folder, digest, self.device)
            return _Adapter(tuple(labels), head, meta.max_length, folder, full=full)
        weights = read_lora(folder, self._switch.linears, self.device)
        with self._model_lock:
            self._switch.prepare(weights)
        return _Adapter(tuple(labels), head, meta.max_length, folder, lora=weights)

    def _drop(self, digest: str) -> None:
        with self._state:
            entry = self._adapters.get(digest)
            if entry is None or not entry.retiring or entry.leases:
                return
            del self._adapters[digest]
        if entry.folder is not None:
            shutil.rmtree(entry.folder, ignore_errors=True)
        log.info("adapter %s unloaded", digest)
