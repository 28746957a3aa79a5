"""Seeded, reproducible text perturbations and the accuracy they cost.

Each row gets its own generator seeded by (seed, kind, row index) as a string: Python seeds
`random.Random` from a string through SHA-512, so the same seed gives the same noisy text in any
process, whatever PYTHONHASHSEED is, and a row's noise does not depend on the other rows.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

PERTURBATIONS = ("typos", "casing", "punctuation", "whitespace")
# About one word in seven gets a typo, at least one per text: noticeable, still readable.
TYPO_RATE = 0.15


@dataclass(frozen=True)
class PerturbationResult:
    kind: str
    accuracy: float
    drop: float          # clean accuracy minus accuracy under this perturbation, same rows
    changed: int         # rows whose text the perturbation actually changed


@dataclass(frozen=True)
class RobustnessResult:
    seed: int
    rows: int
    clean_accuracy: float
    perturbed_accuracy: float   # over all perturbed copies (every kind, every sampled row)
    drop: float                 # clean minus perturbed accuracy: the gated number
    per_kind: tuple[PerturbationResult, ...]


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    op = rng.choice(("swap", "drop", "double"))
    if op == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "drop":
        return word[:i] + word[i + 1 :]
    return word[: i + 1] + word[i] + word[i + 1 :]


def typos(text: str, rng: random.Random) -> str:
    """Swap, drop or double one letter in some words of three letters or more."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 3 and w.isalpha()]
    if not candidates:
        return text
    k = max(1, round(len(candidates) * TYPO_RATE))
    for i in rng.sample(candidates, k):
        words[i] = _typo(words[i], rng)
    return " ".join(words)


def casing(text: str, rng: random.Random) -> str:
    """Upper-case, lower-case, title-case or randomly flip the case of the text."""
    style = rng.choice(("upper", "lower", "title", "random"))
    if style == "random":
        return "".join(c.swapcase() if rng.random() < 0.3 else c for c in text)
    return {"upper": text.upper(), "lower": text.lower(), "title": text.title()}[style]


def punctuation(text: str, rng: random.Random) -> str:
    """Strip the punctuation, then sometimes end the text with new punctuation."""
    bare = text.translate(str.maketrans("", "", string.punctuation)).rstrip()
    return bare + rng.choice(("", "", "?", "!!", "...", " ?"))


def whitespace(text: str, rng: random.Random) -> str:
    """Double some spaces, and pad the text with spaces or a tab."""
    out = "".join(c + (" " if c == " " and rng.random() < 0.5 else "") for c in text)
    return rng.choice(("", " ", "\t")) + out + rng.choice(("", "  ", "\n"))


PERTURBERS: Mapping[str, Callable[[str, random.Random], str]] = {
    "typos": typos,
    "casing": casing,
    "punctuation": punctuation,
    "whitespace": whitespace,
}


def perturb_all(texts: Sequence[str], kind: str, seed: int) -> list[str]:
    """The texts under one perturbation kind; the same seed always gives the same texts."""
    fn = PERTURBERS[kind]
    return [fn(t, random.Random(f"{seed}:{kind}:{i}")) for i, t in enumerate(texts)]


def sample_rows(n: int, k: int, seed: int) -> np.ndarray:
    """Up to k row indices out of n, sorted, chosen by the seed (all rows when k >= n)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def robustness(
    clean_correct: np.ndarray,
    perturbed_correct: Mapping[str, np.ndarray],
    changed: Mapping[str, int],
    seed: int,
) -> RobustnessResult:
    """Accuracy per perturbation and the overall drop from clean accuracy on the same rows."""
    clean = float(np.mean(clean_correct)) if len(clean_correct) else float("nan")
    per_kind = tuple(
        PerturbationResult(kind, float(np.mean(ok)), clean - float(np.mean(ok)), int(changed.get(kind, 0)))
        for kind, ok in perturbed_correct.items()
    )
    all_ok: np.ndarray | list[float] = np.concatenate([np.asarray(v, dtype=float) for v in perturbed_correct.values()]) if per_kind else []
    perturbed = float(np.mean(all_ok)) if len(all_ok) else float("nan")
    return RobustnessResult(seed, len(clean_correct), clean, perturbed, clean - perturbed, per_kind)
