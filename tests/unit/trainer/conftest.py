"""Test helpers for the trainer: a tiny random BERT model folder (hidden 32, 2 layers)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

if TYPE_CHECKING:
    from services.trainer.adapters.training_loop import LoopConfig


def write_tiny_bert(folder: Path) -> Path:
    """Save a tiny BertModel + a WordPiece tokenizer (safetensors) to a folder."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(0)
    words = "the a my card is was not has been i want to how do can you help me with account money transfer".split()
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words))])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT model folder shared by the session's tests."""
    torch.set_num_threads(1)
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


class LocalSession:
    """A single-process stand-in for a Ray Train worker: checkpoints are folders kept in a list."""

    def __init__(self, resume_from: Path | None = None) -> None:
        self.rank, self.world_size, self.device = 0, 1, torch.device("cpu")
        self.resume_from = resume_from
        self.reports: list[tuple[dict[str, float], Path | None]] = []

    def latest_checkpoint(self) -> Path | None:
        return self.resume_from

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        self.reports.append((dict(metrics), checkpoint_dir))


def tiny_loop_config(base: Path, n: int = 48, **changes) -> LoopConfig:
    """A LoopConfig over n synthetic rows of 3 labels on the tiny BERT."""
    from services.kernel.goal import ApproachSpec
    from services.trainer.adapters.training_loop import LoopConfig

    words = ["my card is lost", "how do i transfer money", "help me with my account"]
    texts = [f"{words[i % 3]} {'please ' * (i % 5)}".strip() for i in range(n)]
    cfg = LoopConfig(base_model=str(base), labels=["a", "b", "c"], texts=texts, targets=[i % 3 for i in range(n)],
                     eval_texts=texts[:12], eval_targets=[i % 3 for i in range(12)], approach=ApproachSpec(r=4),
                     epochs=1.0, learning_rate=5e-3, batch_size=8, max_length=16, seed=7, warmup_fraction=0.1,
                     weight_decay=0.01, max_grad_norm=1.0, checkpoint_every=2, explode_grad_norm=1e4, threads=1, log_every=1)
    return dataclasses.replace(cfg, **changes)


@pytest.fixture
def loop_config(tiny_bert: Path):
    """A factory of tiny LoopConfigs on the tiny BERT (keyword changes override the defaults)."""
    return lambda **changes: tiny_loop_config(tiny_bert, **changes)


@pytest.fixture
def local_session():
    """The LocalSession class (a single-process worker session)."""
    return LocalSession
