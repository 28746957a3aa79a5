"""Label sanity: enough examples per label; labels never seen before for this dataset are reported."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.ingest.domain.certificate import GateOutcome


def label_gate(sizes: Mapping[str, int], known: Iterable[str], min_examples: int, max_examples: int = 5) -> GateOutcome:
    """Fail when a label has fewer than `min_examples` rows; count (but allow) labels new to this name."""
    known_set = set(known)
    few = sorted(label for label, n in sizes.items() if n < min_examples)
    new = sorted(set(sizes) - known_set) if known_set else []
    counts = {"labels": len(sizes), "labels_below_min": len(few), "new_labels": len(new)}
    examples = [f"label {label!r} has {sizes[label]} rows" for label in few[:max_examples]]
    examples += [f"new label {label!r}" for label in new[: max(0, max_examples - len(examples))]]
    if not sizes:
        return GateOutcome("labels", False, "no labelled rows remain after the other gates", counts, ())
    if few:
        reason = f"{len(few)} label(s) have fewer than {min_examples} rows; add examples or drop those labels"
        return GateOutcome("labels", False, reason, counts, tuple(examples))
    reason = f"{len(sizes)} labels, each with at least {min_examples} rows"
    if new:
        reason += f"; {len(new)} label(s) not seen in earlier versions of this dataset"
    return GateOutcome("labels", True, reason, counts, tuple(examples))
