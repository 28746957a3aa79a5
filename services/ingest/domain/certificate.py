"""Gate outcomes and the quality certificate they make up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GateOutcome:
    """One gate's verdict: a reason a publisher can act on, counts, and redacted examples."""

    gate: str
    passed: bool
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    examples: tuple[str, ...] = ()


@dataclass
class Tally:
    """Counts and a bounded list of examples, gathered while rows stream past."""

    max_examples: int = 5
    counts: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, kind: str, example: str = "", n: int = 1) -> None:
        """Count `n` findings of a kind, keeping the example while there is room."""
        self.counts[kind] += n
        if example and len(self.examples) < self.max_examples:
            self.examples.append(example)

    def outcome(self, gate: str, passed: bool, reason: str, **extra: int) -> GateOutcome:
        """Freeze into a gate outcome, with extra counts (totals) added."""
        counts = {k: int(v) for k, v in sorted({**self.counts, **extra}.items())}
        return GateOutcome(gate, passed, reason, counts, tuple(self.examples))


def failed(certificate: list[GateOutcome]) -> list[GateOutcome]:
    """The gates that did not pass."""
    return [g for g in certificate if not g.passed]


def summary(certificate: list[GateOutcome]) -> str:
    """One line naming every failed gate and its reason."""
    bad = failed(certificate)
    if not bad:
        return "all gates passed"
    return "; ".join(f"{g.gate}: {g.reason}" for g in bad)
