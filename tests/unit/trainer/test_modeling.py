"""services.kernel.modeling: base-model checks, deterministic adapter files, verified loading."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Literal

import pytest
import torch

from services.kernel import modeling
from services.kernel.errors import ConfigError, IntegrityError, InvalidInput
from services.kernel.goal import ApproachSpec

Method = Literal["lora", "full"]
LABELS = ["card_lost", "transfer", "balance"]
TEXTS = ["my card is lost", "how do i transfer money", "help me with my account balance please", "a"]


def _save(tiny_bert: Path, out: Path, method: Method = "lora", seed: int = 3) -> list[tuple[str, Path]]:
    model, _ = modeling.build_classifier(str(tiny_bert), LABELS, ApproachSpec(method=method, r=4), seed)
    meta = modeling.AdapterMeta(method=method, base_model=str(tiny_bert), max_length=16)
    return modeling.save_adapter(model, LABELS, meta, out)


def test_bundled_model_resolves_to_a_safetensors_folder() -> None:
    folder = modeling.resolve_base_model("bundled:all-MiniLM-L6-v2")
    assert (folder / "model.safetensors").is_file()


def test_hub_ids_are_a_config_error_offline() -> None:
    with pytest.raises(ConfigError, match="offline"):
        modeling.resolve_base_model("sentence-transformers/all-MiniLM-L6-v2-does-not-exist")


@pytest.mark.parametrize("pickle_name", ["pytorch_model.bin", "model.pt", "weights.ckpt", "x.pkl"])
def test_pickle_weights_are_refused_before_loading(tiny_bert: Path, tmp_path: Path, pickle_name: str) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert, folder)
    (folder / pickle_name).write_bytes(b"\x80\x04cos\nsystem\n")  # a pickle that would run a command
    with pytest.raises(InvalidInput, match="pickle"):
        modeling.resolve_base_model(str(folder))


@pytest.mark.parametrize("payload", [b"\x80\x04cos\nsystem\n", struct.pack("<Q", 10) + b"not json!!",
                                     struct.pack("<Q", 1 << 40), b"abc"])
def test_fake_safetensors_are_refused(tiny_bert: Path, tmp_path: Path, payload: bytes) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert, folder)
    (folder / "model.safetensors").write_bytes(payload)
    with pytest.raises(InvalidInput, match="not safetensors"):
        modeling.resolve_base_model(str(folder))


def test_folder_without_safetensors_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_bert, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(InvalidInput, match="no \\*.safetensors"):
        modeling.resolve_base_model(str(folder))


@pytest.mark.parametrize("method", ["lora", "full"])
def test_same_seed_gives_the_same_adapter_digest(tiny_bert: Path, tmp_path: Path, method: Method) -> None:
    a = _save(tiny_bert, tmp_path / "a", method)
    b = _save(tiny_bert, tmp_path / "b", method)
    c = _save(tiny_bert, tmp_path / "c", method, seed=4)
    names = modeling.ADAPTER_FILES_LORA if method == "lora" else modeling.ADAPTER_FILES_FULL
    assert [n for n, _ in a] == list(names)
    assert modeling.adapter_digest(tmp_path / "a") == modeling.adapter_digest(tmp_path / "b")
    assert modeling.adapter_digest(tmp_path / "a") != modeling.adapter_digest(tmp_path / "c")
    assert json.loads((tmp_path / "a" / "labels.json").read_text())["labels"] == LABELS
    del b, c


def test_lora_adapter_loads_with_plain_peft(tiny_bert: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModel

    _save(tiny_bert, tmp_path / "a")
    peft_model = PeftModel.from_pretrained(AutoModel.from_pretrained(tiny_bert), tmp_path / "a")
    assert any("lora_A" in n for n, _ in peft_model.named_parameters())


@pytest.mark.parametrize("method", ["lora", "full"])
def test_load_classifier_predicts_like_the_trained_model(tiny_bert: Path, tmp_path: Path, method: Method) -> None:
    model, tok = modeling.build_classifier(str(tiny_bert), LABELS, ApproachSpec(method=method, r=4), 5)
    with torch.no_grad():  # make LoRA non-trivial: B starts at zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    model.eval()
    modeling.save_adapter(model, LABELS, modeling.AdapterMeta(method, str(tiny_bert), 16), tmp_path / "a")
    digest = modeling.adapter_digest(tmp_path / "a")
    loaded = modeling.load_classifier(str(tiny_bert), tmp_path / "a", digest)
    preds = loaded.predict(TEXTS, batch_size=2)
    enc = tok(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(model(enc["input_ids"], enc["attention_mask"]), -1).numpy()
    assert preds.probs.shape == (4, 3) and preds.embeddings.shape == (4, 32)
    assert abs(preds.probs - expected).max() < 1e-5
    assert list(preds.token_counts) == enc["attention_mask"].sum(1).tolist()
    assert loaded.labels == LABELS


def test_tampered_adapter_is_refused_naming_both_digests(tiny_bert: Path, tmp_path: Path) -> None:
    _save(tiny_bert, tmp_path / "a")
    digest = modeling.adapter_digest(tmp_path / "a")
    head = tmp_path / "a" / "head.safetensors"
    data = bytearray(head.read_bytes())
    data[-1] ^= 1
    head.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        modeling.load_classifier(str(tiny_bert), tmp_path / "a", digest)
    assert digest in str(err.value) and modeling.adapter_digest(tmp_path / "a") in str(err.value)


def test_fake_safetensors_adapter_is_refused_even_with_matching_digest(tiny_bert: Path, tmp_path: Path) -> None:
    _save(tiny_bert, tmp_path / "a")
    (tmp_path / "a" / "adapter_model.safetensors").write_bytes(b"\x80\x04cos\nsystem\n")
    with pytest.raises(InvalidInput):
        modeling.verify_adapter(tmp_path / "a", modeling.adapter_digest(tmp_path / "a"))


def test_two_lora_adapters_share_one_base(tiny_bert: Path, tmp_path: Path) -> None:
    _save(tiny_bert, tmp_path / "a", seed=1)
    _save(tiny_bert, tmp_path / "b", seed=2)
    base = modeling.load_base_encoder(str(tiny_bert))
    shared = modeling.attach_lora(None, base, "a", tmp_path / "a")
    shared = modeling.attach_lora(shared, base, "b", tmp_path / "b")
    shared.set_adapter("b")
    assert shared.active_adapter == "b"
    assert modeling.load_head(tmp_path / "b").out_features == 3
    assert modeling.read_labels(tmp_path / "a")[0] == LABELS
