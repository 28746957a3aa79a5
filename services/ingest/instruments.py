"""Ingest's instruments (docs/metrics.md): rows entering and leaving each gate, and datasets rejected by gate."""

from __future__ import annotations

from services.ingest.domain.certificate import GateOutcome
from services.kernel.metrics import meter

GATE_ROWS = meter().create_counter("tuneline.ingest.gate.rows", unit="{row}",
                                   description="Rows entering (direction=in) and leaving (out) a certification gate")
REJECTIONS = meter().create_counter("tuneline.ingest.rejections", unit="{dataset}",
                                    description="Dataset versions rejected, by the gate that refused them")
GATES = ("source", "schema", "pii", "minimisation", "dedup", "leakage", "labels")
# Gates that judge the rows reaching them without removing any: PII is scrubbed in place, minimisation drops
# columns, the label gate counts per label. What enters them is what the gate before let out.
_PASS_THROUGH = ("pii", "minimisation", "labels")


def gate_rows(certificate: list[GateOutcome]) -> list[tuple[str, int, int]]:
    """(gate, rows in, rows out) of every gate rows pass through, in the certificate's order: schema drops
    malformed rows, dedup duplicates, the rest pass their rows on; a gate that refused lets none out.
    The source gate (and a failed job's "ingest") sees no rows."""
    flows: list[tuple[str, int, int]] = []
    flowing = 0  # rows the previous gate let out
    for g in certificate:
        c = g.counts
        if g.gate == "schema":
            # One file: rows, bad_rows; a train and an eval file: the same with train_ and eval_ prefixes.
            rows_in = sum(c.get(f"{p}rows", 0) for p in ("", "train_", "eval_"))
            rows_out = rows_in - sum(c.get(f"{p}bad_rows", 0) for p in ("", "train_", "eval_"))
        elif g.gate == "dedup" and "rows_in" in c:
            rows_in, rows_out = c["rows_in"], c["rows_out"]
        elif g.gate == "leakage":
            rows_in = rows_out = c.get("train_rows", 0) + c.get("eval_rows", 0)
        elif g.gate in _PASS_THROUGH:
            rows_in = rows_out = flowing
        else:
            continue
        flowing = rows_out if g.passed else 0
        flows.append((g.gate, rows_in, flowing))
    return flows


def certified(certificate: list[GateOutcome]) -> None:
    """Count one certificate: every gate's rows, and the gates that refused it (each once)."""
    for gate in GATES:  # every series from the first dataset on, at zero until it happens
        REJECTIONS.add(0, {"gate": gate})
    for gate, rows_in, rows_out in gate_rows(certificate):
        GATE_ROWS.add(rows_in, {"gate": gate, "direction": "in"})
        GATE_ROWS.add(rows_out, {"gate": gate, "direction": "out"})
    for g in certificate:
        if not g.passed:
            REJECTIONS.add(1, {"gate": g.gate})
