"""Reading a source through the row gates (schema, PII) into a staging area."""

from __future__ import annotations

from collections.abc import Callable

from services.ingest.adapters.parquet_files import Staging
from services.ingest.adapters.reader import Chunk, detect_format, read_chunks
from services.ingest.domain import similarity
from services.ingest.domain.certificate import GateOutcome, Tally
from services.ingest.domain.minimise import pseudonym
from services.ingest.domain.rows import RowProblem, parse_row
from services.ingest.domain.uri import DatasetLocation
from services.ingest.plan import Plan, Policy
from services.kernel.errors import InvalidInput
from services.kernel.pii import redact, scrub

Progress = Callable[[float, str], None]
_REPORT_EVERY = 16  # chunks between progress reports


def scan(loc: DatasetLocation, plan: Plan, policy: Policy, staging: Staging, pii: Tally, progress: Progress,
         columns: set[str] | None = None) -> GateOutcome:
    """Read, check and scrub every row into staging (slice values hashed when the goal asks); returns the
    schema gate. `columns` collects the source's column names."""
    schema, total = Tally(policy.max_examples), 0
    fmt = ""
    try:
        fmt = detect_format(loc.uri, plan.fmt)
        for i, chunk in enumerate(read_chunks(loc, fmt, plan.fields, policy.chunk_rows, policy.max_row_bytes, columns)):
            total += len(chunk)
            _stage_chunk(chunk, policy, staging, schema, pii, plan.pseudonym_key)
            if i % _REPORT_EVERY == 0:
                progress(0.1, f"read {total} rows")
    except InvalidInput as err:
        return schema.outcome("schema", False, f"{err} ({err.hint})" if err.hint else str(err), rows=total)
    return _schema_verdict(schema, total, staging.rows, policy, fmt)


def _stage_chunk(chunk: Chunk, policy: Policy, staging: Staging, schema: Tally, pii: Tally, slice_key: bytes) -> None:
    texts: list[str] = []
    labels: list[str] = []
    slices: list[str] = []
    for item in chunk:
        row = item if isinstance(item, RowProblem) else parse_row(item, policy.limits)
        if isinstance(row, RowProblem):
            schema.add(row.kind, row.describe())
            continue
        s = scrub(row.text)
        for kind, n in s.counts.items():
            pii.add(kind, f"row {item.number}: {redact(s.text)}", n)
        texts.append(s.text)
        labels.append(row.label)
        slices.append(pseudonym(slice_key, row.slice) if slice_key else row.slice)
    keys, sigs = similarity.keys_and_signatures(texts)
    staging.add(keys, texts, labels, slices, sigs)


def _schema_verdict(schema: Tally, total: int, good: int, policy: Policy, fmt: str) -> GateOutcome:
    bad = total - good
    if good == 0:
        reason = "the file has no valid rows" if total else "the file has a header but no rows"
        return schema.outcome("schema", False, reason, rows=total, bad_rows=bad)
    if bad > policy.max_bad_row_fraction * total:
        kinds = ", ".join(f"{k}={v}" for k, v in sorted(schema.counts.items()))
        reason = f"{bad} of {total} rows are malformed ({kinds}); fix or remove them and publish again"
        return schema.outcome("schema", False, reason, rows=total, bad_rows=bad)
    return schema.outcome("schema", True, f"{good} {fmt} rows have the required fields", rows=total, bad_rows=bad)


def pii_verdict(pii: Tally, action: str) -> GateOutcome:
    found = sum(pii.counts.values())
    if not found:
        return pii.outcome("pii", True, "no PII found")
    if action == "reject":
        reason = f"{found} PII values found and the policy is reject; remove them at the source"
        return pii.outcome("pii", False, reason, found=found)
    return pii.outcome("pii", True, f"{found} PII values replaced by typed placeholders", found=found)


def merge_schema(gates: list[GateOutcome]) -> GateOutcome:
    if len(gates) == 1:
        return gates[0]
    names = ("train", "eval")
    counts = {f"{n}_{k}": v for n, g in zip(names, gates, strict=False) for k, v in g.counts.items()}
    bad = [f"{n} file: {g.reason}" for n, g in zip(names, gates, strict=False) if not g.passed]
    reason = "; ".join(bad) or "; ".join(f"{n} file: {g.reason}" for n, g in zip(names, gates, strict=False))
    return GateOutcome("schema", not bad, reason, counts, tuple(e for g in gates for e in g.examples))
