"""Ingest's instruments (docs/metrics.md): rows entering and leaving each gate, and datasets rejected by gate."""

from __future__ import annotations

from services.ingest.domain.certificate import GateOutcome
from services.kernel.metrics import meter

GATE_ROWS = meter().create_counter("tuneline.ingest.gate.rows", unit="{row}",
                                   description="Rows entering (direction=in) and leaving (out) a certification gate")
REJECTIONS = meter().create_counter("tuneline.ingest.rejections", unit="{dataset}",
                                    description="Dataset versions rejected, by the gate that refused them")
GATES = ("source", "schema", "pii", "minimisation", "dedup", "leakage", "labels")


def gate_rows(g: GateOutcome) -> tuple[int, int] | None:
    """(rows in, rows out) of a gate that changes or judges rows: schema drops malformed rows, dedup
    duplicates, and leakage passes the split through or, failing, nothing. None for the rest."""
    c = g.counts
    if g.gate == "schema":
        # One file: rows, bad_rows; a train and an eval file: the same with train_ and eval_ prefixes.
        rows = sum(c.get(f"{p}rows", 0) for p in ("", "train_", "eval_"))
        bad = sum(c.get(f"{p}bad_rows", 0) for p in ("", "train_", "eval_"))
        return rows, rows - bad if g.passed else 0
    if g.gate == "dedup" and "rows_in" in c:
        return c["rows_in"], c["rows_out"]
    if g.gate == "leakage":
        rows = c.get("train_rows", 0) + c.get("eval_rows", 0)
        return rows, rows if g.passed else 0
    return None


def certified(certificate: list[GateOutcome]) -> None:
    """Count one certificate: every gate's rows, and the gates that refused it (each once)."""
    for gate in GATES:  # every series from the first dataset on, at zero until it happens
        REJECTIONS.add(0, {"gate": gate})
    for g in certificate:
        rows = gate_rows(g)
        if rows is not None:
            GATE_ROWS.add(rows[0], {"gate": g.gate, "direction": "in"})
            GATE_ROWS.add(rows[1], {"gate": g.gate, "direction": "out"})
        if not g.passed:
            REJECTIONS.add(1, {"gate": g.gate})
