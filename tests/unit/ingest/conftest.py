"""Ingest unit-test helpers: seeded PII, CSV writers, a certify runner over tmp files."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from services.ingest.certify import certify
from services.ingest.domain.uri import check_uri
from services.ingest.plan import Certified, Plan, Policy

LABELS = ["balance", "card_lost", "transfer", "refund", "pin"]


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, ...] = ("text", "label")) -> Path:
    """A CSV with a header and the given rows."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def sentences(n: int, seed: int = 3) -> list[tuple[str, str]]:
    """n distinct seeded sentences (no near duplicates between them) with balanced labels."""
    rng = random.Random(seed)
    words = [f"{w}{i}" for i, w in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "fox", "golf", "hotel"] * 40)]
    return [(" ".join(rng.sample(words, 9)), LABELS[i % len(LABELS)]) for i in range(n)]


def run_certify(tmp_path: Path, source: Path, eval_source: Path | None = None, **plan: object) -> Certified:
    """Certify files under tmp_path with the default policy."""
    roots = [tmp_path]
    loc = check_uri(str(source), roots, [])
    ev_loc = check_uri(str(eval_source), roots, []) if eval_source else None
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return certify(Plan("t", loc, ev_loc, **plan), Policy(), work)  # type: ignore[arg-type]


@pytest.fixture
def gate():
    """Look a gate up by name in a certificate."""
    return lambda result, name: next(g for g in result.certificate if g.gate == name)


@pytest.fixture
def kit():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    import types

    return types.SimpleNamespace(run_certify=run_certify, sentences=sentences, write_csv=write_csv)
