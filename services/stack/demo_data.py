"""The demo's datasets, derived deterministically from the bundled real data."""

from __future__ import annotations

import csv
import random
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from services.kernel.settings import REPO_ROOT

DATASETS = REPO_ROOT / "datasets"


def read_rows(path: Path) -> list[dict[str, str]]:
    """A CSV file's rows."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@dataclass(frozen=True)
class Exports:
    """The demo's versions of banking77, all judged on one held-out eval file."""

    eval: Path
    initial: Path
    partial: Path
    complete: Path


def _grams(text: str) -> set[str]:
    t = " ".join(re.sub(r"[^\w\s]+", " ", unicodedata.normalize("NFKC", text).casefold()).split())
    return {t[i : i + 4] for i in range(max(1, len(t) - 3))}


def _far_from(rows: list[dict[str, str]], held: list[dict[str, str]], max_jaccard: float) -> list[dict[str, str]]:
    """Rows whose character 4-gram Jaccard similarity to every held-out row is below max_jaccard.

    banking77 has many paraphrases; ingest's leakage gate (near duplicates at J >= 0.7) would
    rightly reject train rows this close to the eval file, so the demo leaves them out."""
    held_grams = [_grams(r["text"]) for r in held]
    postings: dict[str, list[int]] = defaultdict(list)
    for i, grams in enumerate(held_grams):
        for g in grams:
            postings[g].append(i)
    kept = []
    for row in rows:
        grams = _grams(row["text"])
        shared = Counter(i for g in grams for i in postings.get(g, ()))
        if all(n / (len(grams) + len(held_grams[i]) - n) < max_jaccard for i, n in shared.items()):
            kept.append(row)
    return kept


def _by_label(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[row["label"]].append(row)
    return groups


def exports(folder: Path, seed: int = 17) -> Exports:
    """Write the versions: a stratified 10 % held out for eval; the initial export keeps 60 % of the
    remaining rows, the partial export 8 rows per intent, the complete export all of them. One eval
    file for all keeps the candidate-vs-champion comparison on rows neither model trained on."""
    rng = random.Random(seed)
    held, rest = [], []
    for _label, rows in sorted(_by_label(read_rows(DATASETS / "banking77" / "train.csv")).items()):
        rng.shuffle(rows)
        k = max(1, round(len(rows) * 0.1))
        held += rows[:k]
        rest += rows[k:]
    rest = _far_from(rest, held, max_jaccard=0.5)
    initial = [r for r in rest if rng.random() < 0.6]
    partial = [r for _, rows in sorted(_by_label(rest).items()) for r in rows[:8]]
    return Exports(_write(folder / "banking77-eval.csv", held), _write(folder / "banking77-initial-export.csv", initial),
                   _write(folder / "banking77-partial-export.csv", partial), _write(folder / "banking77-complete-export.csv", rest))


def labelled_utterances(name: str, limit: int, seed: int = 3) -> list[tuple[str, str]]:
    """Test-split (utterance, label) pairs of a bundled dataset, shuffled deterministically."""
    pairs = [(r["text"], r["label"]) for r in read_rows(DATASETS / name / "test.csv")]
    random.Random(seed).shuffle(pairs)
    return pairs[:limit]


def utterances(name: str, limit: int, seed: int = 3) -> list[str]:
    """Test-split utterances of a bundled dataset, shuffled deterministically."""
    return [text for text, _ in labelled_utterances(name, limit, seed)]
