"""`tuneline bench privacy`: DP-SGD on banking77 with LoRA, at epsilon = inf, 8, 3, 1.

Every arm trains the same LoRA adapter on the same seeded slice of banking77's train split, with the
training loop the trainer runs (services.trainer.adapters.training_loop) in one process; the DP arms
set `privacy` to the plan the trainer would make from `training.privacy: {epsilon: E, delta: 1e-5,
max_grad_norm: 1.0}` (noise calibrated to spend E over the planned steps, RDP accountant).

Reported per arm:
- accuracy on held-out rows of banking77's test split, and training wall time;
- the epsilon the run reports, next to a fresh Opacus accountant stepped once per step at the run's
  sampling rate and noise (they must agree);
- a membership-inference check: a loss-threshold attack (lower loss = "was trained on") on train
  rows against held-out rows of the same train file; its ROC AUC (0.5 = chance) and advantage
  (max TPR - FPR over thresholds).

Profiles: `quick` (a 3,000-row slice, batch 64, 2 epochs, max_length 32: about 10 minutes on 2 CPU cores) and
`full` (8,000 rows, 3 epochs, max_length 64).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table

from benchmarks.report import write_result
from services.kernel.goal import ApproachSpec, PrivacySpec
from services.kernel.modeling import adapter_digest, load_classifier
from services.kernel.settings import REPO_ROOT
from services.trainer.adapters.training_loop import ADAPTER_DIR, OUTCOME_FILE, LoopConfig, train
from services.trainer.domain import privacy, schedule

console = Console()
BASE = "bundled:all-MiniLM-L6-v2"
DATA = REPO_ROOT / "datasets" / "banking77"
EPSILONS: tuple[float, ...] = (math.inf, 8.0, 3.0, 1.0)
DELTA = 1e-5


class Profile(TypedDict):
    """The slice and schedule of one profile."""

    rows: int           # train rows (members)
    held_out: int       # train-file rows never trained on (non-members of the attack)
    test_rows: int      # test-split rows for accuracy
    epochs: float
    max_length: int
    batch_size: int
    learning_rate: float


PROFILES: dict[str, Profile] = {
    "quick": {"rows": 3000, "held_out": 1000, "test_rows": 1000, "epochs": 2.0, "max_length": 32, "batch_size": 64,
              "learning_rate": 5e-3},
    "full": {"rows": 8000, "held_out": 2000, "test_rows": 3080, "epochs": 3.0, "max_length": 64, "batch_size": 32,
             "learning_rate": 5e-3},
}


class _Session:
    """One process, no Ray: checkpoints are not kept (the benchmark never resumes)."""

    rank, world_size, device = 0, 1, torch.device("cpu")

    def latest_checkpoint(self) -> Path | None:
        return None

    def report(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        return None


def _split(p: Profile) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Members and non-members from the train file (a seeded sample), and test rows for accuracy."""
    df = pd.read_csv(DATA / "train.csv").sample(p["rows"] + p["held_out"], random_state=17)
    test = pd.read_csv(DATA / "test.csv").sample(frac=1.0, random_state=17).iloc[:p["test_rows"]]
    labels = sorted(pd.read_csv(DATA / "train.csv").label.unique())
    return df.iloc[:p["rows"]], df.iloc[p["rows"]:], test, labels


def _config(p: Profile, members: pd.DataFrame, labels: list[str], epsilon: float) -> LoopConfig:
    index = {label: i for i, label in enumerate(labels)}
    rows = len(members)
    plan = None
    if math.isfinite(epsilon):
        planned = schedule.total_steps(rows, p["batch_size"], p["epochs"])
        plan = privacy.plan(PrivacySpec(epsilon=epsilon, delta=DELTA), rows, p["batch_size"], planned)
    return LoopConfig(base_model=BASE, labels=labels, texts=members.text.tolist(), targets=[index[x] for x in members.label],
                      eval_texts=[], eval_targets=[], approach=ApproachSpec(), epochs=p["epochs"],
                      learning_rate=p["learning_rate"], batch_size=p["batch_size"], max_length=p["max_length"], seed=17,
                      warmup_fraction=0.06, weight_decay=0.01, max_grad_norm=1.0, checkpoint_every=10**9,
                      explode_grad_norm=1e6, threads=torch.get_num_threads(), log_every=10**9, privacy=plan)


def row_losses(adapter: Path, texts: list[str], labels: list[str], targets: list[str]) -> tuple[np.ndarray, float]:
    """Per-row cross-entropy of an adapter on (texts, targets), and its accuracy."""
    model = load_classifier(BASE, adapter, adapter_digest(adapter))
    probs = model.predict(texts, batch_size=128).probs
    y = np.asarray([labels.index(t) for t in targets])
    picked = probs[np.arange(len(y)), y].astype(np.float64)
    return -np.log(np.clip(picked, 1e-12, 1.0)), float((probs.argmax(axis=1) == y).mean())


def attack_auc(member_losses: np.ndarray, nonmember_losses: np.ndarray) -> tuple[float, float]:
    """The loss-threshold attack's ROC AUC (P(member loss < non-member loss), ties half) and advantage."""
    scores = np.concatenate([-member_losses, -nonmember_losses])
    truth = np.concatenate([np.ones(len(member_losses)), np.zeros(len(nonmember_losses))])
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):       # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n1, n0 = len(member_losses), len(nonmember_losses)
    auc = (ranks[truth == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    tpr = np.cumsum(truth[order]) / n1
    fpr = np.cumsum(1 - truth[order]) / n0
    return float(auc), float(np.max(tpr - fpr))


def _opacus_epsilon(m: dict[str, float]) -> float:
    acc = privacy.make_accountant("rdp")
    for _ in range(int(m["privacy_steps"])):
        acc.step(noise_multiplier=m["privacy_noise_multiplier"], sample_rate=m["privacy_sample_rate"])
    return float(acc.get_epsilon(delta=m["privacy_delta"]))


def run_arm(p: Profile, epsilon: float, split: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]],
            attack_rows: int) -> dict[str, object]:
    """Train one arm and measure it."""
    members, held, test, labels = split
    cfg = _config(p, members, labels, epsilon)
    with tempfile.TemporaryDirectory(prefix="tuneline-bench-privacy-") as work:
        began = time.perf_counter()
        train(cfg, _Session(), Path(work))
        seconds = time.perf_counter() - began
        outcome = json.loads((Path(work) / "final" / OUTCOME_FILE).read_text())
        if outcome["status"] != "succeeded":
            return {"epsilon_target": epsilon, "status": outcome["status"], "reason": outcome["reason"]}
        adapter = Path(work) / "final" / ADAPTER_DIR
        _, accuracy = row_losses(adapter, test.text.tolist(), labels, test.label.tolist())
        inside = members.iloc[:attack_rows]
        outside = held.iloc[:attack_rows]
        member_loss, train_acc = row_losses(adapter, inside.text.tolist(), labels, inside.label.tolist())
        outside_loss, _ = row_losses(adapter, outside.text.tolist(), labels, outside.label.tolist())
    auc, advantage = attack_auc(member_loss, outside_loss)
    m = outcome["metrics"]
    arm: dict[str, object] = {
        "epsilon_target": epsilon if math.isfinite(epsilon) else None, "status": "succeeded", "steps": outcome["steps"],
        "train_seconds": round(seconds, 1), "test_accuracy": accuracy, "train_accuracy": train_acc,
        "mia_auc": auc, "mia_advantage": advantage, "member_loss_mean": float(member_loss.mean()),
        "nonmember_loss_mean": float(outside_loss.mean()),
    }
    if "privacy_epsilon" in m:
        arm |= {"epsilon_reported": m["privacy_epsilon"], "epsilon_opacus_accountant": _opacus_epsilon(m),
                "delta": m["privacy_delta"], "noise_multiplier": m["privacy_noise_multiplier"],
                "sample_rate": m["privacy_sample_rate"], "accountant": "rdp"}
    return arm


def run(profile: str = "quick", out: Path | None = None, epsilons: tuple[float, ...] = EPSILONS) -> dict[str, object]:
    """Every arm of the profile; writes benchmarks/results/privacy.json (or `out`)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: {sorted(PROFILES)}")
    p = PROFILES[profile]
    torch.set_num_threads(max(1, torch.get_num_threads()))
    split = _split(p)
    attack_rows = min(p["rows"], p["held_out"])
    arms: list[dict[str, object]] = []
    result: dict[str, object] = {}
    path = out or Path("benchmarks/results/privacy.json")
    for eps in epsilons:
        console.print(f"[bold]epsilon = {eps:g}[/bold] ({p['rows']} rows, {p['epochs']:g} epochs)")
        arms.append(run_arm(p, eps, split, attack_rows))
        console.print(arms[-1])
        # Written after every arm: an interrupted run still leaves the arms it finished.
        result = {"profile": profile, "settings": dict(p), "delta": DELTA, "arms": arms,
                  "attack_rows_each_side": attack_rows, "complete": len(arms) == len(epsilons)}
        write_result("privacy", result, path)
    _print(arms)
    console.print(f"wrote {path}")
    return result


def _print(arms: list[dict[str, object]]) -> None:
    table = Table("ε target", "ε reported", "ε (Opacus)", "σ", "test accuracy", "train s", "MIA AUC", "MIA advantage")
    for a in arms:
        def num(key: str, fmt: str = ".3f", arm: dict[str, object] = a) -> str:
            value = arm.get(key)
            return format(value, fmt) if isinstance(value, float | int) else "—"
        table.add_row("∞" if a.get("epsilon_target") is None else num("epsilon_target", "g"), num("epsilon_reported"),
                      num("epsilon_opacus_accountant"), num("noise_multiplier"), num("test_accuracy"),
                      num("train_seconds", ".1f"), num("mia_auc"), num("mia_advantage"))
    console.print(table)
