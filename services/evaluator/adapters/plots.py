"""The report's plots with matplotlib (Agg, no pyplot global state), as base64 PNG data URIs."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import numpy as np
from matplotlib.figure import Figure

from services.evaluator.domain.calibration import Calibration
from services.evaluator.domain.champion import ChampionComparison
from services.evaluator.domain.metrics import ClassificationMetrics, SliceReport
from services.evaluator.domain.robustness import RobustnessResult

# Tick labels above this many classes would be unreadable; the per-label table has the names.
MAX_TICK_LABELS = 30


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def confusion_plot(m: ClassificationMetrics) -> str:
    """Row-normalised confusion matrix (truth by row)."""
    counts = np.asarray(m.confusion, dtype=float)
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    size = min(12.0, 3.0 + 0.12 * len(m.labels))
    fig = Figure(figsize=(size, size))
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true label's rows")
    if len(m.labels) <= MAX_TICK_LABELS:
        ax.set_xticks(range(len(m.labels)), m.labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(m.labels)), m.labels, fontsize=7)
    ax.set(xlabel="predicted label", ylabel="true label", title=f"Confusion matrix ({m.rows} rows)")
    return _png(fig)


def reliability_plot(c: Calibration) -> str:
    """Accuracy vs mean confidence per bin, against the diagonal of perfect calibration."""
    fig = Figure(figsize=(5.5, 5))
    ax = fig.add_subplot()
    width = c.bins[0].upper - c.bins[0].lower if c.bins else 0.1
    full = [b for b in c.bins if b.count]
    ax.bar([b.lower for b in full], [b.accuracy for b in full], width=width, align="edge", color="#4c72b0",
           edgecolor="black", label="accuracy in bin")
    ax.plot([b.confidence for b in full], [b.confidence for b in full], "o", color="#dd8452",
            label="mean confidence in bin")
    for b in full:
        ax.text(b.lower + width / 2, 0.01, str(b.count), ha="center", va="bottom", fontsize=6, color="white", rotation=90)
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
           title=f"Reliability diagram (ECE {c.ece:.4f})")
    ax.legend(loc="upper left")
    return _png(fig)


def _bars(title: str, names: list[str], values: list[float], reference: float | None, ref_label: str) -> str:
    fig = Figure(figsize=(max(5.0, 0.5 * len(names) + 2), 4))
    ax = fig.add_subplot()
    ax.bar(names, values, color="#4c72b0")
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    if reference is not None:
        ax.axhline(reference, color="#c44e52", linestyle="--", label=ref_label)
        ax.legend(loc="lower right")
    ax.set(ylim=(0, 1.05), ylabel="accuracy", title=title)
    ax.tick_params(axis="x", labelrotation=30)
    return _png(fig)


def slice_plot(s: SliceReport, overall: float) -> str:
    """Accuracy per slice against the overall accuracy."""
    return _bars(f"Accuracy per {s.field} (worst gap {s.gap:.3f})", [x.name for x in s.slices],
                 [x.accuracy for x in s.slices], overall, "overall")


def robustness_plot(r: RobustnessResult) -> str:
    """Accuracy under each perturbation against clean accuracy on the same rows."""
    return _bars(f"Robustness ({r.rows} rows, seed {r.seed}; drop {r.drop:.3f})", [p.kind for p in r.per_kind],
                 [p.accuracy for p in r.per_kind], r.clean_accuracy, "clean")


def champion_plot(c: ChampionComparison) -> str:
    """Candidate vs champion accuracy, and the discordant rows the paired test uses."""
    fig = Figure(figsize=(8, 4))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.bar(["candidate", "champion"], [c.candidate_accuracy, c.champion_accuracy], color=["#4c72b0", "#8c8c8c"])
    left.set(ylim=(0, 1.05), ylabel="accuracy", title=f"delta {c.delta:+.4f}")
    right.bar(["candidate only right", "champion only right"], [c.candidate_only, c.champion_only],
              color=["#55a868", "#c44e52"])
    right.set(ylabel="rows", title=f"{c.test}: chi2 {c.statistic:.2f}, p {c.p_value:.3g}")
    return _png(fig)
